"""Find the newest published AMI of a variant in a region: the SSM parameter, else describe_images."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from archami.aws.clients import AwsSettings, Clients
from archami.aws.expose import ssm_parameter_name
from archami.aws.failures import as_archami_errors
from archami.aws.tags import VARIANT_TAG


@as_archami_errors
def latest_ami(
    region: str,
    variant_id: str,
    *,
    family: str | None = None,
    owner: str = "self",
    endpoint_url: str | None = None,
    ssm_prefix: str = "/archami",
    clients: Clients | None = None,
) -> str | None:
    """The AMI id, or None when nothing is published.

    With `family` (the definition name) the SSM parameter /archami/<family>/<variant>/latest answers in one
    call; otherwise, or when it is missing, the owner's images named <family>-<variant>-* (or tagged with
    the variant) are searched and the newest by creation date wins.
    """
    clients = clients or Clients(AwsSettings(endpoint_url=endpoint_url))
    if family:
        try:
            value = clients.ssm(region).get_parameter(Name=ssm_parameter_name(ssm_prefix, family, variant_id))
            return str(value["Parameter"]["Value"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
    filters: list[Any] = (
        [{"Name": "name", "Values": [f"{family}-{variant_id}-*"]}]
        if family
        else [{"Name": f"tag:{VARIANT_TAG}", "Values": [variant_id]}]
    )
    images = clients.ec2(region).describe_images(Owners=[owner], Filters=filters)["Images"]
    images = [i for i in images if i.get("State", "available") == "available"]
    if not images:
        return None
    newest = max(images, key=lambda i: (str(i.get("CreationDate", "")), str(i.get("Name", ""))))
    return str(newest["ImageId"])
