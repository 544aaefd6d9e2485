"""Upload a raw image straight into an EBS snapshot with the EBS direct APIs.

StartSnapshot (with a ClientToken, so a retried call cannot make a second snapshot), PutSnapshotBlock for
each data block from a bounded thread pool, CompleteSnapshot with the LINEAR aggregate checksum, then wait
until EC2 reports the snapshot completed (it can be "not found" for a moment after creation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.aws.blocks import GIB, Block, blocks_to_upload, linear_checksum
from archami.aws.tags import tag_list
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ebs import EBSClient
    from mypy_boto3_ec2 import EC2Client

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
