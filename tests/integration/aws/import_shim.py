"""ImportSnapshot for moto, which lacks it: answers ImportSnapshot / DescribeImportSnapshotTasks the way
EC2 does (same XML shapes), making the snapshot in moto from the S3 object's size, so the S3 + import
fallback path can run end to end. The first describe answers 'active', later ones 'completed'."""

from __future__ import annotations

import itertools
import threading
from typing import Any
from urllib.parse import parse_qs

from archami.aws.clients import Clients

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
GIB = 1024**3


class ImportSnapshotShim:
    def __init__(self, moto_clients: Clients, region: str) -> None:
        self.clients = moto_clients
        self.region = region
        self.tasks: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, str]] = []
        self.by_token: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        if b"Version=2016-11-15" not in body:
            return None
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        action = form.get("Action")
        if action == "ImportSnapshot":
            return self._import(form)
        if action == "DescribeImportSnapshotTasks":
            return self._describe(form)
        return None

    def _import(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.calls.append(form)
            token = form.get("ClientToken", "")
            if token in self.by_token:  # EC2 returns the first task for a repeated ClientToken
                return _xml("ImportSnapshotResponse", f"<importTaskId>{self.by_token[token]}</importTaskId>")
            bucket, key = form["DiskContainer.UserBucket.S3Bucket"], form["DiskContainer.UserBucket.S3Key"]
            size = self.clients.s3(self.region).head_object(Bucket=bucket, Key=key)["ContentLength"]
            task_id = f"import-snap-{next(self._ids):017x}"
            self.tasks[task_id] = {"size": size, "polls": 0, "snapshot": None}
            self.by_token[token] = task_id
        return _xml(
            "ImportSnapshotResponse",
            f"<importTaskId>{task_id}</importTaskId><snapshotTaskDetail><status>active</status></snapshotTaskDetail>",
        )

    def _describe(self, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        task_id = form["ImportTaskId.1"]
        with self._lock:
            task = self.tasks[task_id]
            task["polls"] += 1
            if task["polls"] == 1:
                detail = "<status>active</status><progress>50</progress>"
            else:
                if task["snapshot"] is None:
                    ec2 = self.clients.ec2(self.region)
                    volume = ec2.create_volume(AvailabilityZone=f"{self.region}a", Size=-(-task["size"] // GIB))
                    task["snapshot"] = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
                    ec2.delete_volume(VolumeId=volume["VolumeId"])
                detail = f"<status>completed</status><snapshotId>{task['snapshot']}</snapshotId><format>RAW</format>"
        return _xml(
            "DescribeImportSnapshotTasksResponse",
            "<importSnapshotTaskSet><item>"
            f"<importTaskId>{task_id}</importTaskId><snapshotTaskDetail>{detail}</snapshotTaskDetail>"
            "</item></importSnapshotTaskSet>",
        )


def _xml(root: str, inner: str) -> tuple[int, dict[str, str], bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{NS}"><requestId>shim</requestId>{inner}</{root}>'
    return 200, {"Content-Type": "text/xml"}, body.encode()
