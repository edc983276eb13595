"""Node maintenance: workers to cordon (and drain) as a config change; remove them to uncordon."""

from __future__ import annotations

from dataclasses import dataclass

from .core import Reader
from .fields import Bool, Names, setting


@dataclass(frozen=True)
class MaintenanceSettings:
    """Workers taken out of scheduling; at least one must stay schedulable (checks.py)."""

    nodes: tuple[str, ...] = setting(Names(None, "a list", shape="list of worker names"), (), "workers to cordon (and drain)")
    drain: bool = setting(Bool(), True, "also evict the pods of cordoned workers")


def parse_maintenance(r: Reader) -> MaintenanceSettings:
    return MaintenanceSettings(**r.section(MaintenanceSettings, "maintenance"))
