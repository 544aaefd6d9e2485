"""S3 for the two paths that need it: the ImportSnapshot fallback and instance-store bundles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from archami.aws.capability import call_or_not_implemented
from archami.aws.tags import tag_specifications
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client

# Multipart in 64 MiB pieces, 8 at once: big enough to keep S3 busy, small enough to retry cheaply.
TRANSFER = TransferConfig(multipart_threshold=64 * 1024**2, multipart_chunksize=64 * 1024**2, max_concurrency=8)


def ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    params: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**params)


def upload_file(s3: S3Client, path: Path, bucket: str, key: str) -> None:
    s3.upload_file(str(path), bucket, key, Config=TRANSFER)


def start_import(ec2: EC2Client, *, bucket: str, key: str, description: str, token: str, tags: dict[str, str]) -> str:
    answer = call_or_not_implemented(
        "ImportSnapshot",
        lambda: ec2.import_snapshot(
            Description=description,
            DiskContainer={
                "Description": description,
                "Format": "RAW",
                "UserBucket": {"S3Bucket": bucket, "S3Key": key},
            },
            ClientToken=token,
            TagSpecifications=tag_specifications(["import-snapshot-task"], tags),
        ),
    )
    task_id: str = answer["ImportTaskId"]
    return task_id


def wait_import(ec2: EC2Client, task_id: str, timeout: float = 7200, poll: float = 10) -> str:
    """Poll the import task; returns the snapshot id."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])["ImportSnapshotTasks"]
        detail: Any = tasks[0]["SnapshotTaskDetail"] if tasks else {}
        status = detail.get("Status")
        if status == "completed":
            return str(detail["SnapshotId"])
        if status in ("deleted", "deleting") or detail.get("StatusMessage", "").startswith("ClientError"):
            raise ArchamiError(f"import task {task_id} failed: {detail.get('StatusMessage', status)}")
        if time.monotonic() > deadline:
            raise ArchamiError(f"import task {task_id} not done after {timeout:.0f}s ({status})")
        time.sleep(poll)
