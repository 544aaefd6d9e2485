"""boto3 clients for every region, pointed at AWS or at one local emulator (--endpoint-url), and the
regions a publish goes to.

Retries are botocore's "standard" mode: jittered exponential backoff on throttling (RequestLimitExceeded,
SlowDown, ...), 5xx answers and dropped connections. It is the well-kept implementation AWS's own SDKs
share, so archami does not write its own retry loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import UnknownRegionError

from archami.aws.errors import as_archami_errors
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ebs import EBSClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class AwsSettings:
    endpoint_url: str | None = None
    profile: str | None = None
    max_attempts: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    pool_size: int = 16  # HTTP connections per client: matches the upload thread pool


class Clients:
    """One boto3 session; clients created once per (service, region) and shared between threads."""

    def __init__(self, settings: AwsSettings | None = None) -> None:
        self.settings = settings or AwsSettings()
        self.session = boto3.session.Session(profile_name=self.settings.profile)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, int], Any] = {}

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler for every client made afterwards (tests record requests)."""
        self.session._session.register(event, handler)

    @property
    def default_region(self) -> str:
        return self.session.region_name or DEFAULT_REGION

    def partition(self, region: str) -> str:
        try:
            return self.session.get_partition_for_region(region)
        except UnknownRegionError:
            raise ArchamiError(f"unknown AWS region {region!r} (e.g. us-east-1, eu-west-1)") from None

    def _client(self, service: str, region: str, max_attempts: int | None = None) -> Any:
        attempts = max_attempts or self.settings.max_attempts
        key = (service, region, attempts)
        with self._lock:  # creating clients is not thread-safe; using them is
            if key not in self._cache:
                config = Config(
                    region_name=region,
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                    retries={"mode": "standard", "max_attempts": attempts},
                    max_pool_connections=self.settings.pool_size,
                )
                self._cache[key] = self.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    endpoint_url=self.settings.endpoint_url,
                    config=config,
                )
            return self._cache[key]

    def ec2(self, region: str, max_attempts: int | None = None) -> EC2Client:
        client: EC2Client = self._client("ec2", region, max_attempts)
        return client

    def ebs(self, region: str) -> EBSClient:
        client: EBSClient = self._client("ebs", region)
        return client

    def s3(self, region: str) -> S3Client:
        client: S3Client = self._client("s3", region)
        return client

    def ssm(self, region: str) -> SSMClient:
        client: SSMClient = self._client("ssm", region)
        return client

    def service_quotas(self, region: str, max_attempts: int | None = None) -> Any:  # no stubs for this one
        return self._client("service-quotas", region, max_attempts)

    def account_id(self, region: str) -> str:
        sts = self._client("sts", region)
        account: str = sts.get_caller_identity()["Account"]
        return account


def enabled_regions(clients: Clients, source_region: str) -> list[str]:
    """Regions enabled for this account, in the source region's partition (aws, aws-cn, aws-us-gov).

    describe_regions without AllRegions lists opted-in regions only; an emulator may list every partition's
    regions, so the partition filter matters there.
    """
    partition = clients.partition(source_region)
    answer = clients.ec2(source_region).describe_regions(AllRegions=False)["Regions"]
    names = sorted(
        r["RegionName"]
        for r in answer
        if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"
        and clients.partition(r["RegionName"]) == partition
    )
    if source_region not in names:
        raise ArchamiError(f"source region {source_region} is not enabled for this account")
    return [source_region, *(n for n in names if n != source_region)]


@as_archami_errors
def resolve_regions(clients: Clients, regions: list[str] | Literal["all"], source_region: str | None) -> list[str]:
    """The ordered region list; its first entry is the source region (upload + register happen there).

    "all": every enabled region of the source region's partition (PublishSettings.regions, one meaning for
    `archami publish`, `release` and `prune`).
    """
    if regions != "all":
        source = source_region or regions[0]
        if source_region and source_region not in regions:
            regions = [source_region, *regions]
        ordered = [source, *(r for r in dict.fromkeys(regions) if r != source)]
        partition = clients.partition(source)
        foreign = [r for r in ordered if clients.partition(r) != partition]
        if foreign:
            raise ArchamiError(f"regions {', '.join(foreign)} are not in the {partition} partition of {source}")
        return ordered
    # No list means the whole partition: a release is published everywhere it can be launched.
    return enabled_regions(clients, source_region or clients.default_region)
