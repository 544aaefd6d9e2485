"""Arch mirror status, measurement, ranking and per-AWS-region mirror lists (`archami mirrors`)."""

from archami.mirrors.measure import DEFAULT_PATH, Measurement, Timeouts, measure
from archami.mirrors.rank import MeasurementReport, rank
from archami.mirrors.regions import REGION_COUNTRY, RegionList, region_lists, write_region_lists
from archami.mirrors.status import Mirror, MirrorFilter, filter_mirrors, load_status, parse_status

__all__ = [
    "DEFAULT_PATH", "REGION_COUNTRY", "Measurement", "MeasurementReport", "Mirror", "MirrorFilter", "RegionList",
    "Timeouts", "filter_mirrors", "load_status", "measure", "parse_status", "rank", "region_lists",
    "write_region_lists",
]
