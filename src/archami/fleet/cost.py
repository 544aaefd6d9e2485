"""An up-front cost estimate for an EC2 fleet run, printed before anything is launched.

The prices are APPROXIMATE on-demand Linux prices in us-east-1 (USD per hour, as published by AWS in
2024-2026); other regions cost up to ~30% more, and spot usually 60-70% less (SPOT_FACTOR below is a rough
middle). It is an order of magnitude for a weekly releaser deciding between 4 and 100 instances, not a
quote: the bill is per second with a one-minute minimum, plus the root volumes (gp3, per GB-month).
"""

from __future__ import annotations

from dataclasses import dataclass

ON_DEMAND_USD_PER_HOUR: dict[str, float] = {
    "t2.micro": 0.0116, "t2.small": 0.023,
    "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
    "t3a.micro": 0.0094, "t3a.small": 0.0188,
    "t4g.micro": 0.0084, "t4g.small": 0.0168,
    "m1.small": 0.044,  # the seed's instance type (previous generation)
    "m5.large": 0.096, "m6i.large": 0.096, "m7i.large": 0.1008,
    "c5.large": 0.085, "c6i.large": 0.085, "c7i.large": 0.0893,
}
SPOT_FACTOR = 0.35
GP3_USD_PER_GB_MONTH = 0.08
HOURS_PER_MONTH = 730
# What one launch and one reboot round take on EC2, for the estimate: SSH in ~1 min, a reboot ~1 min.
LAUNCH_MINUTES = 2.0
ROUND_MINUTES = 1.5


@dataclass(frozen=True)
class CostEstimate:
    instances: int
    hours_each: float
    usd: float
    price_known: bool
    detail: str


def estimate(instance_type: str, instances: int, reboots: int, spot: bool = False,
             volume_gb: int = 8) -> CostEstimate:
    hours = (LAUNCH_MINUTES + ROUND_MINUTES * reboots) / 60
    billed = max(hours, 1 / 60)  # one-minute minimum
    price = ON_DEMAND_USD_PER_HOUR.get(instance_type)
    known = price is not None
    hourly = (price or max(ON_DEMAND_USD_PER_HOUR.values())) * (SPOT_FACTOR if spot else 1.0)
    volume = GP3_USD_PER_GB_MONTH * volume_gb * billed / HOURS_PER_MONTH
    usd = instances * (hourly * billed + volume)
    kind = "spot (rough)" if spot else "on-demand"
    detail = (f"{instances} x {instance_type} for ~{hours * 60:.0f} min at ~${hourly:.4f}/h {kind}"
              + ("" if known else " (unknown type: priced as the dearest in the table)")
              + f": ~${usd:.2f} (approximate, us-east-1 prices)")
    return CostEstimate(instances, hours, usd, known, detail)
