"""EC2 calls of `archami fleet --backend ec2`: a throwaway key pair and security group, N instances, and
their removal, all found again by the run's tag (`archami:fleet-run`) after a crash.

Idempotency: RunInstances takes a ClientToken (one per run and arm), so a retried launch never starts a
second fleet. ImportKeyPair and CreateSecurityGroup take none; their names carry the run id, so a retry
finds the one it made (and adopts it only if it carries this run's tag).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from archami.aws.images import tag_filters, tag_specifications, tags_of
from archami.aws.state import boundary
from archami.errors import ArchamiError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

FLEET_RUN_TAG = "archami:fleet-run"
GONE_STATES = ("shutting-down", "terminated")
POLL_SECONDS = 2.0


def fleet_tags(run_id: str) -> dict[str, str]:
    return {FLEET_RUN_TAG: run_id, "Name": f"archami-fleet-{run_id}"}


def resource_name(run_id: str) -> str:
    return f"archami-fleet-{run_id}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def ensure_key_pair(ec2: EC2Client, run_id: str, public_key_line: str) -> str:
    """Import the run's public key as a key pair; its name."""
    name = resource_name(run_id)
    try:
        ec2.import_key_pair(
            KeyName=name, PublicKeyMaterial=public_key_line.encode(),
            TagSpecifications=tag_specifications(["key-pair"], fleet_tags(run_id)),
        )
    except ClientError as exc:
        if _code(exc) != "InvalidKeyPair.Duplicate":
            raise
        found = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
        if not found or tags_of(found[0]).get(FLEET_RUN_TAG) != run_id:
            raise ArchamiError(f"key pair {name} exists and is not this run's") from None
    boundary("fleet-key-pair")
    return name


def ensure_security_group(ec2: EC2Client, run_id: str, ssh_cidr: str, vpc_id: str | None = None) -> str:
    """A security group letting SSH in from `ssh_cidr`; its id."""
    name = resource_name(run_id)
    args: dict[str, Any] = {
        "GroupName": name, "Description": f"archami fleet run {run_id}: SSH only, deleted after the run",
        "TagSpecifications": tag_specifications(["security-group"], fleet_tags(run_id)),
    }
    if vpc_id:
        args["VpcId"] = vpc_id
    try:
        group_id: str = ec2.create_security_group(**args)["GroupId"]
    except ClientError as exc:
        if _code(exc) != "InvalidGroup.Duplicate":
            raise
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                        *tag_filters({FLEET_RUN_TAG: run_id})])["SecurityGroups"]
        if not groups:
            raise ArchamiError(f"security group {name} exists and is not this run's") from None
        group_id = groups[0]["GroupId"]
    try:
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                            "IpRanges": [{"CidrIp": ssh_cidr, "Description": "archami fleet SSH"}]}],
        )
    except ClientError as exc:
        if _code(exc) != "InvalidPermission.Duplicate":
            raise
    boundary("fleet-security-group")
    return group_id


@dataclass(frozen=True)
class LaunchRequest:
    run_id: str
    arm: str
    image_id: str
    instance_type: str
    count: int
    key_name: str
    security_group_id: str
    spot: bool = False
    subnet_id: str | None = None
    availability_zone: str | None = None


def launch(ec2: EC2Client, request: LaunchRequest) -> list[str]:
    """RunInstances for one arm, idempotent by ClientToken; instance ids in launch-index order."""
    tags = {**fleet_tags(request.run_id), "archami:fleet-arm": request.arm}
    args: dict[str, Any] = {
        "ImageId": request.image_id, "InstanceType": request.instance_type,
        "MinCount": request.count, "MaxCount": request.count,
        "KeyName": request.key_name, "SecurityGroupIds": [request.security_group_id],
        "ClientToken": f"{request.run_id}-{request.arm}"[:64],
        "TagSpecifications": tag_specifications(["instance", "volume"], tags),
        "InstanceInitiatedShutdownBehavior": "terminate",
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
    }
    if request.subnet_id:
        args["SubnetId"] = request.subnet_id
    if request.availability_zone:
        args["Placement"] = {"AvailabilityZone": request.availability_zone}
    if request.spot:
        args["InstanceMarketOptions"] = {
            "MarketType": "spot",
            "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
        }
    reservation = ec2.run_instances(**args)
    boundary("fleet-launched")
    ordered = sorted(reservation["Instances"], key=lambda i: i.get("AmiLaunchIndex", 0))
    return [i["InstanceId"] for i in ordered]


@dataclass(frozen=True)
class InstanceState:
    instance_id: str
    state: str
    public_ip: str | None
    private_ip: str | None
    instance_type: str


def describe(ec2: EC2Client, instance_ids: list[str]) -> dict[str, InstanceState]:
    states: dict[str, InstanceState] = {}
    for reservation in ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]:
        for i in reservation["Instances"]:
            states[i["InstanceId"]] = InstanceState(
                i["InstanceId"], i["State"]["Name"], i.get("PublicIpAddress"), i.get("PrivateIpAddress"),
                i["InstanceType"],
            )
    return states


def wait_running(ec2: EC2Client, instance_id: str, deadline: float) -> InstanceState:
    while True:
        state = describe(ec2, [instance_id]).get(instance_id)
        if state is not None and state.state == "running":
            return state
        if state is not None and state.state in GONE_STATES:
            raise ArchamiError(f"{instance_id} is {state.state} before it ran")
        if time.monotonic() > deadline:
            raise ArchamiError(f"{instance_id} not running within the timeout")
        time.sleep(POLL_SECONDS)


@dataclass
class Leftovers:
    instances: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    key_pairs: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.instances or self.security_groups or self.key_pairs)


def find_leftovers(ec2: EC2Client, run_id: str) -> Leftovers:
    """Everything tagged with this run that still exists (terminated instances do not count)."""
    run_filter = tag_filters({FLEET_RUN_TAG: run_id})
    found = Leftovers()
    for reservation in ec2.describe_instances(Filters=run_filter)["Reservations"]:
        found.instances += [i["InstanceId"] for i in reservation["Instances"] if i["State"]["Name"] != "terminated"]
    found.security_groups = [g["GroupId"] for g in ec2.describe_security_groups(Filters=run_filter)["SecurityGroups"]]
    # Tag filters on key pairs are not honoured everywhere: select by tag here.
    found.key_pairs = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]
                       if tags_of(k).get(FLEET_RUN_TAG) == run_id]
    return found


def remove(ec2: EC2Client, leftovers: Leftovers, timeout: float = 600.0) -> None:
    """Terminate, wait until terminated (a group in use cannot go), then delete the groups and key pairs."""
    deadline = time.monotonic() + timeout
    if leftovers.instances:
        ec2.terminate_instances(InstanceIds=leftovers.instances)
        while True:
            states = describe(ec2, leftovers.instances)
            if all(s.state == "terminated" for s in states.values()):
                break
            if time.monotonic() > deadline:
                raise ArchamiError(f"instances not terminated in time: {', '.join(leftovers.instances)}")
            time.sleep(POLL_SECONDS)
    for group_id in leftovers.security_groups:
        while True:
            try:
                ec2.delete_security_group(GroupId=group_id)
                break
            except ClientError as exc:
                if _code(exc) == "InvalidGroup.NotFound":
                    break
                if _code(exc) != "DependencyViolation" or time.monotonic() > deadline:
                    raise
                time.sleep(POLL_SECONDS)  # network interfaces of terminated instances linger a little
    for name in leftovers.key_pairs:
        ec2.delete_key_pair(KeyName=name)


def cleanup(ec2: EC2Client, run_id: str) -> Leftovers:
    """Find what the run left (by tag) and remove it; what was removed."""
    leftovers = find_leftovers(ec2, run_id)
    remove(ec2, leftovers)
    return leftovers
