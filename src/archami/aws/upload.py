"""Get the image to AWS: straight into an EBS snapshot (EBS direct APIs), or into S3 (bundles, and the
S3 + ImportSnapshot fallback).

EBS direct: StartSnapshot (with a ClientToken, so a retried call cannot make a second snapshot),
PutSnapshotBlock for each data block from a bounded thread pool, CompleteSnapshot with the LINEAR aggregate
checksum, then wait until EC2 reports the snapshot completed (it can be "not found" for a moment after
creation). Data extents come from lseek(SEEK_DATA/SEEK_HOLE), so the holes of a sparse image are never
read: a 2 GiB image with 400 MB of files costs 400 MB of reads, not 2 GiB.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from archami.aws.errors import call_or_not_implemented
from archami.aws.images import GIB, tag_list, tag_specifications
from archami.errors import ArchamiError
from archami.fsutil import data_extents

if TYPE_CHECKING:
    from mypy_boto3_ebs import EBSClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client

EBS_BLOCK_SIZE = 512 * 1024  # PutSnapshotBlock takes exactly this many bytes per block
ZERO_BLOCK = bytes(EBS_BLOCK_SIZE)


def data_block_indices(path: Path) -> list[int]:
    """Indices of the EBS blocks that overlap an allocated extent of the file."""
    size = path.stat().st_size
    indices: set[int] = set()
    with path.open("rb") as f:
        for start, end in data_extents(f.fileno(), size):
            indices.update(range(start // EBS_BLOCK_SIZE, (end - 1) // EBS_BLOCK_SIZE + 1))
    return sorted(indices)


@dataclass(frozen=True)
class Block:
    index: int
    data: bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    @property
    def checksum(self) -> str:
        """PutSnapshotBlock's Checksum: base64 of the block's SHA-256."""
        return base64.b64encode(self.digest).decode()


def blocks_to_upload(path: Path, *, encrypted: bool, volume_bytes: int | None = None) -> Iterator[Block]:
    """The blocks a snapshot of this image needs, in index order.

    Unencrypted snapshots read unwritten blocks as zeroes, so all-zero blocks (holes, or allocated zeroes)
    are skipped. Encrypted snapshots do not: every block of the volume is sent, holes as zero blocks
    without reading them.
    """
    size = path.stat().st_size
    data_blocks = data_block_indices(path)
    with path.open("rb") as f:
        if not encrypted:
            for index in data_blocks:
                data = _read_block(f.fileno(), index, size)
                if data != ZERO_BLOCK:
                    yield Block(index, data)
            return
        total = -(-(volume_bytes or size) // EBS_BLOCK_SIZE)
        wanted = set(data_blocks)
        for index in range(total):
            yield Block(index, _read_block(f.fileno(), index, size) if index in wanted else ZERO_BLOCK)


def _read_block(fd: int, index: int, size: int) -> bytes:
    data = os.pread(fd, EBS_BLOCK_SIZE, index * EBS_BLOCK_SIZE)
    if len(data) < EBS_BLOCK_SIZE:  # the image's last block, or past its end: the volume reads zeroes
        data += bytes(EBS_BLOCK_SIZE - len(data))
    return data


def linear_checksum(digests_in_index_order: list[bytes]) -> str:
    """CompleteSnapshot's LINEAR aggregate: SHA-256 over the concatenated per-block digests, base64."""
    return base64.b64encode(hashlib.sha256(b"".join(digests_in_index_order)).digest()).decode()


# EBS direct

ProgressFn = Callable[[int], None]  # called with the bytes just sent


@dataclass(frozen=True)
class UploadResult:
    snapshot_id: str
    blocks_sent: int
    bytes_sent: int
    checksum: str  # the LINEAR aggregate sent to CompleteSnapshot


def start_snapshot(
    ebs: EBSClient,
    *,
    volume_gib: int,
    description: str,
    tags: dict[str, str],
    client_token: str,
    encrypted: bool = False,
    kms_key_arn: str | None = None,
) -> str:
    params: dict[str, Any] = {
        "VolumeSize": volume_gib,
        "Description": description,
        "Tags": tag_list(tags),
        "ClientToken": client_token,
        "Timeout": 60,  # minutes without a block before EBS abandons the snapshot (an interrupted upload)
    }
    if encrypted:
        params["Encrypted"] = True
        if kms_key_arn:
            params["KmsKeyArn"] = kms_key_arn
    snapshot_id: str = ebs.start_snapshot(**params)["SnapshotId"]
    return snapshot_id


def put_blocks(
    ebs: EBSClient,
    snapshot_id: str,
    image: Path,
    *,
    encrypted: bool = False,
    workers: int = 8,
    on_progress: ProgressFn | None = None,
) -> tuple[int, int, str]:
    """Send every needed block; returns (blocks, bytes, LINEAR checksum).

    At most 2 x workers blocks are in memory at once: the image is read as the pool drains.
    """
    volume_bytes = -(-image.stat().st_size // GIB) * GIB
    digests: dict[int, bytes] = {}
    lock = threading.Lock()
    sent_bytes = 0

    def send(block: Block) -> None:
        nonlocal sent_bytes
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=block.index,
            BlockData=block.data,
            DataLength=len(block.data),
            Checksum=block.checksum,
            ChecksumAlgorithm="SHA256",
        )
        with lock:
            digests[block.index] = block.digest
            sent_bytes += len(block.data)
        if on_progress:
            on_progress(len(block.data))

    pending: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="put-block") as pool:
        for block in blocks_to_upload(image, encrypted=encrypted, volume_bytes=volume_bytes):
            if len(pending) >= 2 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # re-raise the first failure (after botocore's retries)
            pending.add(pool.submit(send, block))
        for future in pending:
            future.result()
    ordered = [digests[i] for i in sorted(digests)]
    return len(ordered), sent_bytes, linear_checksum(ordered)


def complete_snapshot(ebs: EBSClient, snapshot_id: str, blocks: int, checksum: str) -> None:
    ebs.complete_snapshot(
        SnapshotId=snapshot_id,
        ChangedBlocksCount=blocks,
        Checksum=checksum,
        ChecksumAlgorithm="SHA256",
        ChecksumAggregationMethod="LINEAR",
    )


def snapshot_state(ec2: EC2Client, snapshot_id: str) -> str | None:
    """'pending', 'completed', 'error', ... or None when EC2 does not know the snapshot (yet or any more)."""
    try:
        snapshots = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "InvalidSnapshot.NotFound":
            return None
        raise
    return snapshots[0]["State"] if snapshots else None


def wait_snapshot_completed(ec2: EC2Client, snapshot_id: str, timeout: float = 3600, poll: float = 2) -> None:
    """Poll until completed. 'Not found' right after CompleteSnapshot is normal (coldsnap #43) and retried."""
    deadline = time.monotonic() + timeout
    while True:
        state = snapshot_state(ec2, snapshot_id)
        if state == "completed":
            return
        if state == "error":
            raise ArchamiError(f"snapshot {snapshot_id} failed (state 'error')")
        if time.monotonic() > deadline:
            raise ArchamiError(f"snapshot {snapshot_id} not completed after {timeout:.0f}s (state {state})")
        time.sleep(poll)


def upload_image(
    ebs: EBSClient,
    image: Path,
    *,
    snapshot_id: str,
    encrypted: bool = False,
    workers: int = 8,
    on_progress: ProgressFn | None = None,
) -> UploadResult:
    """Fill and complete an already started snapshot (the caller records its id first, for resume)."""
    blocks, sent, checksum = put_blocks(
        ebs, snapshot_id, image, encrypted=encrypted, workers=workers, on_progress=on_progress
    )
    complete_snapshot(ebs, snapshot_id, blocks, checksum)
    return UploadResult(snapshot_id, blocks, sent, checksum)


# S3: bundles and the ImportSnapshot fallback

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


def upload_to_s3(s3: S3Client, path: Path, bucket: str, key: str) -> None:
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
