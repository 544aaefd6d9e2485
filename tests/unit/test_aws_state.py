"""The publish state file: written at every change, refused when it belongs to another publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archami.aws.clients import Clients, resolve_regions
from archami.aws.state import PublishState, StateStore
from archami.errors import ArchamiError


def fresh(**changes: object) -> PublishState:
    base = dict(
        release_id="r1",
        family="debian",
        variant_id="v",
        ami_name="debian-v-r1",
        image_sha256="abc",
        source_region="us-east-1",
        method="ebs-direct",
    )
    return PublishState.model_validate(base | changes)


def test_every_change_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore.open(path, fresh())
    store.ensure_region("us-east-1", source=True)
    store.update_region("us-east-1", lambda r: setattr(r, "snapshot_id", "snap-1"))
    on_disk = json.loads(path.read_text())
    assert on_disk["regions"]["us-east-1"]["snapshot_id"] == "snap-1"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp files left
    again = StateStore.open(path, fresh())
    assert again.region("us-east-1").snapshot_id == "snap-1"


def test_state_of_another_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateStore.open(path, fresh())
    with pytest.raises(ArchamiError, match="image_sha256"):
        StateStore.open(path, fresh(image_sha256="def"))


def test_regions_source_first_and_one_partition() -> None:
    clients = Clients()
    assert resolve_regions(clients, ["eu-west-1", "us-east-1", "eu-west-1"], None) == ["eu-west-1", "us-east-1"]
    assert resolve_regions(clients, ["eu-west-1", "us-east-1"], "us-east-1") == ["us-east-1", "eu-west-1"]
    with pytest.raises(ArchamiError, match="partition"):
        resolve_regions(clients, ["us-east-1", "cn-north-1"], None)
