"""The first-boot agent against the local IMDS in every fault mode: right end state, no partial files, and
bounded time. Deadlines are scaled down by the agent's own options (--deadline, --request-timeout)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from agent_support import authorized_keys, host_key_fingerprints, leftovers, make_root, new_key, run_agent

from archami.vm.imds import FaultPlan, ImdsConfig, ImdsServer

pytestmark = pytest.mark.integration

DEADLINE = 4.0
MARGIN = 3.0  # process start-up, ssh-keygen and a loaded 2-core machine


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


# Some containers run without IPv6 even on loopback; the test says so instead of failing for it.
needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path, "alice")


def config(key: str, **changes: object) -> ImdsConfig:
    values: dict[str, object] = {
        "instance_id": "i-0a1b2c3d4e5f60718",
        "region": "eu-west-1",
        "availability_zone": "eu-west-1c",
        "hostname": "ip-10-9-8-7.eu-west-1.compute.internal",
        "public_keys": {"alice": key},
    }
    values.update(changes)
    return ImdsConfig(**values)  # type: ignore[arg-type]


def assert_configured(root: Path, key: str) -> None:
    assert authorized_keys(root) == key + "\n"
    assert (root / "etc/hostname").read_text() == "ip-10-9-8-7\n"
    state = json.loads((root / "var/lib/archami/firstboot/state.json").read_text())
    assert (state["instance_id"], state["region"], state["availability_zone"]) == (
        "i-0a1b2c3d4e5f60718", "eu-west-1", "eu-west-1c")
    assert set(host_key_fingerprints(root)) == {"ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub"}
    assert leftovers(root) == []


def assert_untouched(root: Path) -> None:
    """A failed metadata phase changes nothing per-instance and leaves no partial files."""
    assert authorized_keys(root) is None
    assert not (root / "etc/hostname").exists()
    assert not (root / "var/lib/archami/firstboot/state.json").exists()
    assert leftovers(root) == []


def test_normal_boot_uses_tokens_only(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key, user_data=b"#!/bin/sh\necho configured by user-data\n")) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)
    gets = [r for r in server.requests if r.method == "GET"]
    assert gets and all(r.with_token and r.status in (200, 404) for r in gets)  # never IMDSv1
    assert "configured by user-data" in (root / "var/log/archami/user-data.log").read_text()
    assert run.status["ok"] is True


def test_imdsv1_only_service_is_refused(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(imdsv1_only=True)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 1
    assert "IMDSv2 token refused" in str(run.steps)
    assert run.seconds < 2 + MARGIN  # refused at once, not retried until the deadline
    assert_untouched(root)
    assert (root / "etc/ssh/ssh_host_ed25519_key").exists()  # sshd can still start


def test_imdsv1_fallback_when_configured(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path, imds_v1_fallback=True)
    with ImdsServer(config(key), faults=FaultPlan(imdsv1_only=True)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)


def test_slow_token_endpoint_within_timeout(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(token_delay=0.3)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE, request_timeout=1.0)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)


def test_token_endpoint_slower_than_timeout_gives_up_in_time(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(token_delay=5.0)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE, request_timeout=0.5)
    assert run.returncode == 1
    assert run.seconds < DEADLINE + MARGIN
    assert_untouched(root)


def test_token_revoked_mid_run_is_refreshed(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(invalidate_tokens_after=2)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)
    assert sum(1 for r in server.requests if r.method == "PUT") >= 2
    assert any(r.status == 401 for r in server.requests)


def test_public_keys_404_means_no_keys(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(public_keys_404=True)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert authorized_keys(root) == ""
    assert (root / "etc/hostname").read_text() == "ip-10-9-8-7\n"
    assert leftovers(root) == []


def test_server_errors_are_retried(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(errors_500_first=5)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)
    assert sum(1 for r in server.requests if r.status == 500) == 5


def test_server_that_starts_late(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(refuse_for=1.5)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert run.seconds >= 1.5
    assert_configured(root, key)


def test_truncated_bodies_are_retried(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(truncate_first=3)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)


def test_always_truncated_gives_up_without_partial_files(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(truncate_always=True)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 1
    assert run.seconds < DEADLINE + MARGIN
    assert_untouched(root)


def test_malformed_and_duplicate_keys(tmp_path: Path, key: str) -> None:
    other = new_key(tmp_path, "bob")
    keys = {"alice": key, "junk": "ssh-rsa AAAAnotakey", "alice-again": key, "bob": other,
            "opts": f'command="/bin/sh" {other}', "text": "hello world"}
    root = make_root(tmp_path)
    with ImdsServer(config(key, public_keys=keys)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert authorized_keys(root) == f"{key}\n{other}\n"
    assert run.stderr.count("skipped a malformed public key") == 3
    assert "dropped a duplicate" in run.stderr


def test_huge_user_data_is_refused_unread(tmp_path: Path, key: str) -> None:
    marker = tmp_path / "ran"
    script = f"#!/bin/sh\ntouch {marker}\n".encode() + b"#" * (8 * 2**20)
    root = make_root(tmp_path)
    with ImdsServer(config(key, user_data=script)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    assert "ignored: larger than 16384 bytes" in str(run.steps)
    assert run.seconds < DEADLINE + MARGIN
    assert_configured(root, key)


@needs_ipv6
def test_ipv6_endpoint_when_ipv4_is_dead(tmp_path: Path, key: str) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on: the dead IPv4 endpoint
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    root = make_root(tmp_path)
    with ImdsServer(config(key), host="::1") as server:
        run = run_agent(root, [dead, server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert_configured(root, key)


def test_no_metadata_service_at_all(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    root = make_root(tmp_path)
    run = run_agent(root, [dead], deadline=2.0)
    assert run.returncode == 1
    assert run.seconds < 2.0 + MARGIN
    assert_untouched(root)
    assert (root / "etc/ssh/ssh_host_ed25519_key").exists()


def test_fault_plan_bad_keys(tmp_path: Path, key: str) -> None:
    other = new_key(tmp_path, "bob")
    root = make_root(tmp_path)
    with ImdsServer(config(key, public_keys={"alice": key, "bob": other}), faults=FaultPlan(bad_keys=True)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert authorized_keys(root) == f"{key}\n{other}\n"
    assert run.stderr.count("skipped a malformed public key") == 3
    assert run.stderr.count("dropped a duplicate") == 2
    assert "skipped a malformed public-keys entry 'garbage'" in run.stderr


def test_fault_plan_huge_user_data(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    with ImdsServer(config(key), faults=FaultPlan(huge_user_data=32 * 2**20)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert "ignored: larger than 16384 bytes" in str(run.steps)
    assert not (root / "var/log/archami/user-data.log").exists()
    assert not (root / "var/lib/archami/firstboot/user-data").exists()
    assert run.seconds < DEADLINE + MARGIN


def test_oversized_key_is_skipped_unread(tmp_path: Path, key: str) -> None:
    root = make_root(tmp_path)
    keys = {"huge": "ssh-rsa " + "A" * 200_000, "alice": key}
    with ImdsServer(config(key, public_keys=keys)) as server:
        run = run_agent(root, [server.url], deadline=DEADLINE)
    assert run.returncode == 0, run.stderr
    assert authorized_keys(root) == key + "\n"
    assert "skipped public key 0: larger than 16384 bytes" in run.stderr
