"""Is this an EC2 instance? Decides how long the agent waits for metadata before sshd may start.

On EC2 the metadata service always answers eventually, so the agent waits its full deadline. Booted
elsewhere (a local VM, the build's own test boots without an IMDS) nothing will ever answer, and waiting
two minutes would only delay sshd: the agent then waits a few seconds. Same signals cloud-init uses.
"""

from __future__ import annotations

import os

from .files import read_text


def on_ec2(sysfs: str = "/sys") -> bool:
    dmi = os.path.join(sysfs, "class/dmi/id")
    vendor = (read_text(os.path.join(dmi, "sys_vendor")) or "").strip()
    if vendor.startswith("Amazon EC2"):  # Nitro instances
        return True
    # Xen instances: the system UUID (DMI or the hypervisor's) starts with "ec2", in either byte order.
    for path in (os.path.join(dmi, "product_uuid"), os.path.join(sysfs, "hypervisor/uuid")):
        uuid = (read_text(path) or "").strip().lower()
        # Little-endian firmware shows the first field byte-swapped: "ec2e1916" reads as "16192eec".
        if uuid.startswith("ec2") or (uuid[6:8] == "ec" and uuid[4:5] == "2"):
            return True
    return False
