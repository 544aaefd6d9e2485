"""How definition files are read: bounded (FIFOs, devices, huge files refused at once), a byte-order mark
accepted, every problem reported with its line in file order, and "did you mean" for misspelled keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from archami.boundedio import InputFileError, read_bounded
from archami.config import load_definition
from archami.config.locate import key_lines, line_of
from archami.config.problems import DefinitionError
from archami.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOOD = (EXAMPLES / "debian.toml").read_text()


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    expected = [v.id for v in load_definition(EXAMPLES / "debian.toml").variants]
    assert [v.id for v in load_definition(path).variants] == expected


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "d.toml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="FIFO"):
        load_definition(fifo)
    assert time.monotonic() - started < 5


def test_devices_and_directories_are_refused(tmp_path: Path) -> None:
    for path, words in ((Path("/dev/zero"), "character device"), (tmp_path, "a directory")):
        with pytest.raises(ConfigError, match=words):
            load_definition(path)


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(10 * 1024**3)  # sparse: reading it would take a while and 10 GiB of memory
    started = time.monotonic()
    with pytest.raises(ConfigError, match="more than the 1,048,576 allowed"):
        load_definition(big)
    assert time.monotonic() - started < 5


def test_a_file_larger_than_it_says_is_cut_off_at_the_limit() -> None:
    """Files of /proc say they are empty and are not: the reader stops at the limit, not at the size."""
    assert os.stat("/proc/self/maps").st_size == 0
    with pytest.raises(InputFileError, match="grew past the 100 bytes"):
        read_bounded("/proc/self/maps", 100)
    assert len(read_bounded("/proc/self/maps", 1 << 20)) > 100


def test_every_problem_is_reported_in_file_order_with_its_line(tmp_path: Path) -> None:
    text = """\
name = "t"
distro = "debian"
release = "bookworm"
hostnme = "x"

[kernel]
stable = "linux-image-cloud-amd64"
cmdline = [
  "quiet",
  "a;b",
]

[[files]]
path = "/etc/motd"

[[files]]
path = "/etc//issue"

[matrix]
exclude = [
  { root_device = "ebs" },
  { flavor = "gpu" },
]
[firstboot]
grow_root = "no"
"""
    path = tmp_path / "many.toml"
    path.write_text(text)
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    found = [(p.line, p.key) for p in caught.value.problems]
    assert found == [(4, "hostnme"), (10, "kernel.cmdline[1]"), (17, "files[1].path"),
                     (22, "matrix.exclude[1].flavor"), (25, "firstboot.grow_root")]
    assert str(caught.value).splitlines()[0] == f"{path}:4: hostnme: unknown key 'hostnme' (did you mean 'hostname'?)"


def test_lines_of_tables_arrays_and_inline_tables() -> None:
    text = '''a = 1
"quoted.key" = 'x # not a comment'
s = """multi
[not] = a table
"""
[t.u]
v = [1, [2, 3], {w = 4}]
[[arr]]
x = 1
[[arr]]
x = 2
[[arr.sub]]
y = 3
'''
    lines = key_lines(text)
    assert lines[("a",)] == 1 and lines[("quoted.key",)] == 2 and lines[("s",)] == 3
    assert ("not",) not in lines
    assert lines[("t", "u")] == 6 and lines[("t", "u", "v", 1, 0)] == 7 and lines[("t", "u", "v", 2, "w")] == 7
    assert lines[("arr", 0, "x")] == 9 and lines[("arr", 1, "x")] == 11 and lines[("arr", 1, "sub", 0, "y")] == 13
    assert line_of(lines, ("t", "u", "missing")) == 6
    assert line_of(lines, ("nothing",)) is None


@pytest.mark.parametrize("key,table,suggestion", [
    ("hostnme", "", "did you mean 'hostname'"),
    ("grow_rot", "[firstboot]\n", "did you mean 'grow_root'"),
    ("size", "", "did you mean 'disk.size'"),
    ("stack", "[ssh]\n", "did you mean 'network.stack'"),
])
def test_unknown_keys_get_the_closest_valid_key(tmp_path: Path, key: str, table: str, suggestion: str) -> None:
    path = tmp_path / "d.toml"
    path.write_text(f'name = "t"\ndistro = "debian"\nrelease = "bookworm"\nkernel = {{ stable = "linux" }}\n'
                    f"{table}{key} = 1\n")
    with pytest.raises(ConfigError, match=suggestion):
        load_definition(path)


def test_parsing_is_time_bounded() -> None:
    """tomllib needs about a minute for a dotted key of 50,000 parts (it is quadratic): the limit stops it."""
    import signal
    import tomllib

    from archami.boundedio import InputTimeout, time_limit

    hostile = "a" + ".a" * 50000 + " = 1\n"  # about a minute of parsing without the limit
    started = time.monotonic()
    with pytest.raises(InputTimeout, match=r"took more than 0\.3 s"), time_limit(0.3, "definition"):
        tomllib.loads(hostile)
    assert time.monotonic() - started < 20  # stopped long before the parse would end, even on a busy machine
    before = signal.getitimer(signal.ITIMER_REAL)[0]  # a test runner's own timer, if it uses one
    with time_limit(5, "definition"):
        assert tomllib.loads("a = 1") == {"a": 1}
    after = signal.getitimer(signal.ITIMER_REAL)[0]
    assert (0 < after <= before) if before else after == 0  # the outer timer is back, ours is gone
