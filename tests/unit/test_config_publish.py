"""The publish settings model: defaults, the [publish] table, flags over it (definition < CLI), validation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from archami.cli import app
from archami.cli.publish_flags import publish_flags
from archami.config import load_definition, parse_definition
from archami.config.publish import FLAG_OF, PublishSettings, apply_overrides, parse_regions
from archami.errors import ArchamiError, ConfigError
from archami.release.pipeline import ReleaseOptions, run_release
from archami.release.state import ReleaseState

ROOT = Path(__file__).resolve().parents[2]
BASE = """
name = "debian"
distro = "debian"
release = "bookworm"
[kernel]
stable = "linux-image-cloud-amd64"
"""
TABLE = """
[publish]
regions = ["eu-west-1", "us-east-1"]
public = true
deprecate = 2030-06-01
ssm_prefix = "/images/"
bucket = "archami-bundles"
bucket_prefix = "weekly/"
ec2_certificate = "certs/cert-ec2.pem"
tags = { team = "images", "cost:centre" = "42" }
[publish.share]
accounts = ["111122223333"]
organizations = ["arn:aws:organizations::111122223333:organization/o-abcdefghij"]
"""


def settings_of(toml: str) -> PublishSettings:
    return parse_definition(BASE + toml, "def.toml").publish


def test_defaults_without_a_table() -> None:
    for example in ("debian.toml", "arch.toml"):
        assert load_definition(ROOT / "examples" / example).definition.publish == PublishSettings()
    s = PublishSettings()
    assert (s.regions, s.public, s.deprecate, s.ssm_prefix, s.method) == ("all", False, 365, "/archami", "ebs-direct")
    assert s.bucket is None and s.ec2_certificate is None and s.share.launch_permissions() == [] and s.tags == {}


def test_the_table_is_read_and_normalised() -> None:
    s = settings_of(TABLE)
    assert s.regions == ["eu-west-1", "us-east-1"] and s.public
    assert s.deprecate == date(2030, 6, 1)  # a TOML date
    assert s.ssm_prefix == "/images" and s.bucket_prefix == "weekly"  # trailing '/' dropped
    assert s.ec2_certificate == Path("certs/cert-ec2.pem")
    assert s.s3_key("debian-ebs-hvm-x86_64-2026.12.01", "image.part.00") == (
        "weekly/debian-ebs-hvm-x86_64-2026.12.01/image.part.00"
    )
    assert s.share.launch_permissions() == [
        {"UserId": "111122223333"},
        {"OrganizationArn": "arn:aws:organizations::111122223333:organization/o-abcdefghij"},
    ]
    assert s.tags == {"team": "images", "cost:centre": "42"}


def test_flags_override_the_definition_key_by_key() -> None:
    definition = settings_of(TABLE)
    merged = apply_overrides(
        definition,
        {
            "regions": parse_regions("us-west-2, ap-southeast-2"),
            "public": False,
            "share.accounts": ["444455556666"],
            "tags": {"team": "platform", "run": "7"},
            "deprecate": "never",
        },
        origin="def.toml",
    )
    assert merged.regions == ["us-west-2", "ap-southeast-2"] and not merged.public
    assert merged.share.accounts == ["444455556666"]
    assert merged.share.organizations == definition.share.organizations  # the sibling key is kept
    assert merged.tags == {"team": "platform", "cost:centre": "42", "run": "7"}  # merged, the flag wins
    assert merged.deprecate == "never" and merged.deprecation_time(datetime.now(UTC)) is None
    untouched = {"bucket", "bucket_prefix", "ssm_prefix", "ec2_certificate", "method", "source_region"}
    assert {k: getattr(merged, k) for k in untouched} == {k: getattr(definition, k) for k in untouched}
    assert apply_overrides(definition, {}, origin="def.toml") == definition
    assert apply_overrides(definition, {"regions": parse_regions("all")}, origin="x").regions == "all"


def test_the_same_flags_on_publish_and_release_reach_the_settings() -> None:
    cli = get_command(app)
    flags = {name for name in FLAG_OF.values() for name in name.split("/")}

    def options(command: str) -> set[str]:
        import click

        loaded = cli.get_command(click.Context(cli), command)  # type: ignore[attr-defined]  # loads it lazily
        return {o for p in loaded.params for o in (*p.opts, *p.secondary_opts)}

    assert flags <= options("publish") and flags <= options("release")
    seen: list[dict[str, object]] = []
    probe = typer.Typer()

    @probe.command()
    @publish_flags
    def run(*, overrides: dict[str, object]) -> None:
        seen.append(overrides)

    result = CliRunner().invoke(
        probe,
        ["--regions", "eu-west-1,us-east-1", "--private", "--tag", "a=b", "--tag", "c=", "--share-account",
         "111122223333", "--deprecate", "30", "--ec2-cert", "x.pem", "--unencrypted"],
    )
    assert result.exit_code == 0, result.output
    assert seen == [{
        "regions": ["eu-west-1", "us-east-1"], "public": False, "tags": {"a": "b", "c": ""},
        "share.accounts": ["111122223333"], "deprecate": "30", "ec2_certificate": Path("x.pem"), "encrypted": False,
    }]
    assert apply_overrides(PublishSettings(), seen[0], origin="x").deprecate == 30
    assert CliRunner().invoke(probe, []).exit_code == 0 and seen[-1] == {}  # nothing given: nothing overridden


BAD_TABLES = [
    ('regions = ["us-east-one"]', "publish.regions", "not an AWS region name"),
    ('regions = "us-east-1"', "publish.regions", 'or "all"'),
    ("regions = []", "publish.regions", "empty"),
    ('regions = ["all", "us-east-1"]', "publish.regions", "not a region"),
    ('regions = ["eu-west-1", "eu-west-1"]', "publish.regions", "listed twice"),
    ('source_region = "mars-north-1"', "publish.source_region", "not an AWS region name"),
    ('bucket = "My_Bucket"', "publish.bucket", "not an S3 bucket name"),
    ('bucket = "ab"', "publish.bucket", "not an S3 bucket name"),
    ('bucket = "a..b"', "publish.bucket", "two adjacent periods"),
    ('bucket = "192.168.5.4"', "publish.bucket", "IP address"),
    ('bucket = "xn--images"', "publish.bucket", "reserve"),
    ('bucket = "images-s3alias"', "publish.bucket", "reserve"),
    ('bucket_prefix = "a b"', "publish.bucket_prefix", "use letters"),
    ('ssm_prefix = "archami"', "publish.ssm_prefix", "not an SSM parameter path"),
    ('ssm_prefix = "/aws/service"', "publish.ssm_prefix", "reserves"),
    ('ssm_prefix = "/SSM-things"', "publish.ssm_prefix", "reserves"),
    ('ssm_prefix = "/a/b/c/d/e/f/g/h/i/j/k/l/m"', "publish.ssm_prefix", "too deep"),
    ("deprecate = 0", "publish.deprecate", "1 to 3650"),
    ("deprecate = 4000", "publish.deprecate", "1 to 3650"),
    ("deprecate = true", "publish.deprecate", "number of days"),
    ('deprecate = "soon"', "publish.deprecate", "not a number of days"),
    ("deprecate = 2030-06-01T10:00:00Z", "publish.deprecate", "number of days"),
    ('method = "snowball"', "publish.method", "ebs-direct"),
    ('kms_key_arn = "alias/aws/ebs"', "publish.kms_key_arn", "not a KMS key"),
    ('encrypted = false\nkms_key_arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"', "publish",
     "needs --encrypted"),
    ("public = true\nencrypted = true", "publish", "encrypted AMIs cannot be made public"),
    ('tags = { "aws:owner" = "x" }', "publish.tags", "reserved"),
    ('tags = { "archami:release" = "x" }', "publish.tags", "reserved"),
    ('tags = { team = "a;b" }', "publish.tags", "not allowed"),
    ('regoins = ["us-east-1"]', "publish.regoins", "unknown key"),
    ('[publish.share]\naccounts = ["1234"]', "publish.share.accounts[0]", "12-digit"),
    ('[publish.share]\norganizations = ["o-abcdefghij"]', "publish.share.organizations[0]", "organization ARN"),
]


@pytest.mark.parametrize(("table", "key", "reason"), BAD_TABLES, ids=[t[0][:40] for t in BAD_TABLES])
def test_bad_values_name_the_key(table: str, key: str, reason: str) -> None:
    toml = table if table.startswith("[publish.") else f"[publish]\n{table}"
    with pytest.raises(ConfigError) as caught:
        parse_definition(BASE + toml, "def.toml")
    assert (caught.value.key, caught.value.file) == (key, "def.toml")
    assert reason in caught.value.reason


@pytest.mark.parametrize("region", ["us-gov-west-1", "cn-northwest-1", "us-isob-east-1", "eu-isoe-west-1",
                                    "eusc-de-east-1", "il-central-1", "ap-southeast-7"])
def test_every_partition_s_region_names_are_accepted(region: str) -> None:
    assert settings_of(f'[publish]\nregions = ["{region}"]').regions == [region]


def test_a_bad_flag_is_named_as_the_flag_a_bad_key_as_the_key() -> None:
    with pytest.raises(ArchamiError, match=r"^--bucket: 'Bad_Bucket' is not an S3 bucket name"):
        apply_overrides(PublishSettings(), {"bucket": "Bad_Bucket"}, origin="def.toml")
    with pytest.raises(ArchamiError, match=r"^--regions: 'eu-west-9x' is not an AWS region"):
        apply_overrides(PublishSettings(), {"regions": parse_regions("eu-west-1,eu-west-9x")}, origin="def.toml")
    with pytest.raises(ArchamiError, match=r"^--share-account: '12' is not a 12-digit"):
        apply_overrides(PublishSettings(), {"share.accounts": ["12"]}, origin="def.toml")
    with pytest.raises(ConfigError, match=r"^def\.toml: publish: encrypted AMIs cannot be made public.*--private"):
        apply_overrides(settings_of("[publish]\nencrypted = true"), {"public": True}, origin="def.toml")
    with pytest.raises(ValueError, match="not publish settings: colour"):
        apply_overrides(PublishSettings(), {"colour": "blue"}, origin="def.toml")


def test_what_instance_store_and_s3_import_need(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ArchamiError, match=r"publish\.bucket \(--bucket\)"):
        PublishSettings().check_can_publish("instance-store")
    with pytest.raises(ArchamiError, match=r"publish\.ec2_certificate \(--ec2-cert\)"):
        PublishSettings(bucket="b-1").check_can_publish("instance-store")
    with pytest.raises(ArchamiError, match=r"publish\.ec2_certificate \(--ec2-cert\): .*nope\.pem is not a readable"):
        PublishSettings(bucket="b-1", ec2_certificate=tmp_path / "nope.pem").check_can_publish("instance-store")
    with pytest.raises(ArchamiError, match=r"publish\.signing_key \(--signing-key\)"):
        PublishSettings(bucket="b-1", ec2_certificate=cert, signing_key=tmp_path / "k").check_can_publish(
            "instance-store"
        )
    PublishSettings(bucket="b-1", ec2_certificate=cert).check_can_publish("instance-store")
    PublishSettings().check_can_publish("ebs")
    with pytest.raises(ArchamiError, match=r"s3-import needs publish\.bucket"):
        PublishSettings(method="s3-import").check_can_publish("ebs")


def test_deprecation_time() -> None:
    now = datetime(2026, 12, 1, 10, 30, 15, 999, tzinfo=UTC)
    assert PublishSettings().deprecation_time(now) == datetime(2027, 12, 1, 10, 30, 15, tzinfo=UTC)
    assert PublishSettings(deprecate=30).deprecation_time(now) == now.replace(microsecond=0) + timedelta(days=30)
    assert PublishSettings(deprecate=date(2027, 3, 1)).deprecation_time(now) == datetime(2027, 3, 1, tzinfo=UTC)
    with pytest.raises(ArchamiError, match=r"publish\.deprecate \(--deprecate\): 2026-11-30 is not in the future"):
        PublishSettings(deprecate=date(2026, 11, 30)).deprecation_time(now)


def test_release_state_keeps_the_settings_and_reads_older_files() -> None:
    settings = settings_of(TABLE)
    state = ReleaseState(release_id="r", definition_name="d", definition_path="p", definition_sha256="0",
                         publish=settings)
    assert ReleaseState.model_validate_json(state.model_dump_json()).publish == settings  # dates, paths survive
    older = {"release_id": "r", "definition_name": "d", "definition_path": "p", "definition_sha256": "0",
             "regions": ["us-east-1"], "public": True}
    assert ReleaseState.model_validate(json.loads(json.dumps(older))).publish == PublishSettings(
        regions=["us-east-1"], public=True
    )
    for every_region in (None, ["all"]):  # how the older files said "every enabled region"
        older["regions"] = every_region
        assert ReleaseState.model_validate(older).publish.regions == "all"


def test_the_commented_example_table_is_valid() -> None:
    text = (ROOT / "examples" / "arch.toml").read_text()
    block = text[text.index("# [publish]"):]
    uncommented = "\n".join(line.removeprefix("# ") for line in block.splitlines())
    settings = parse_definition(text + "\n" + uncommented, "arch.toml").publish
    assert settings.bucket and settings.ec2_certificate and settings.public


def test_a_release_that_could_not_finish_is_refused_before_building(tmp_path: Path) -> None:
    # The Debian example with an instance-store variant (hvm: publishable) and no [publish] table. (The seed
    # columns' instance-store variants are paravirtual Arch: skipped for their kernel, they need no bucket.)
    definition = tmp_path / "debian-s3.toml"
    example = (ROOT / "examples" / "debian.toml").read_text().split("\n[matrix]")[0]
    definition.write_text(example + '\n[matrix]\nrelease = ["trixie"]\nroot_device = ["ebs", "instance-store"]\n')
    arch = load_definition(definition)
    options = ReleaseOptions(releases_dir=tmp_path / "releases", work_dir=tmp_path / "work")
    with pytest.raises(ArchamiError, match=r"instance-store variants need publish\.bucket \(--bucket\)"):
        run_release(arch, options)
    options.publish_overrides = {"bucket": "archami-bundles", "deprecate": "2020-01-01"}
    with pytest.raises(ArchamiError, match=r"ec2_certificate \(--ec2-cert\)"):
        run_release(arch, options)
    options.variants = ["trixie-ebs-hvm-x86_64"]  # an ebs variant needs neither, but the date has passed
    with pytest.raises(ArchamiError, match="2020-01-01 is not in the future"):
        run_release(arch, options)
    assert not (tmp_path / "work").exists() and list((tmp_path / "releases" / ".state").glob("*.json")) == []
