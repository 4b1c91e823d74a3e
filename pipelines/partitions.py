"""Event tables are partitioned by landing file: one dynamic partition per distinct file content.

The keys and the decision of what is new live in `features/landing.py`; this module applies them to
a Dagster instance, for the landing sensor and for `pipelines.cli.run_all` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from features.contract import EVENT_TABLES
from features.landing import PartitionPlan, plan_partitions, scan

FILE_PARTITIONS: dict[str, dg.DynamicPartitionsDefinition] = {table: dg.DynamicPartitionsDefinition(name=f"{table}_files") for table in EVENT_TABLES}


def file_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(f"{table}_files")


def ingest_job_name(table: str) -> str:
    return f"ingest_{table}_files"


@dataclass(frozen=True)
class TablePlan:
    table: str
    plan: PartitionPlan
    unprocessed: tuple[str, ...]  # current keys without a materialization yet (new ones included)

    def requests(self) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
        partitions = FILE_PARTITIONS[self.table]
        out: list = []
        if self.plan.add:
            out.append(partitions.build_add_request(list(self.plan.add)))
        if self.plan.retire:
            out.append(partitions.build_delete_request(list(self.plan.retire)))
        return out


def plan_landing(instance: dg.DagsterInstance, landing: Path, cache: Mapping[str, dict] | None = None) -> tuple[list[TablePlan], dict[str, dict]]:
    """For each event table: which files are new, which partitions to retire, and which current
    partitions still need processing. Returns the plans and the hash cache for the next scan."""
    cache = cache or {}
    plans, new_cache = [], {}
    for table in EVENT_TABLES:
        files, new_cache[table] = scan(landing, table, cache.get(table))
        plan = plan_partitions(files, instance.get_dynamic_partitions(FILE_PARTITIONS[table].name))
        done = instance.get_materialized_partitions(file_asset_key(table))
        plans.append(TablePlan(table, plan, tuple(k for k in plan.current if k not in done)))
    return plans, new_cache


def apply(instance: dg.DagsterInstance, plans: list[TablePlan]) -> None:
    """Register new partitions and retire stale ones directly (the sensor returns requests instead)."""
    for p in plans:
        name = FILE_PARTITIONS[p.table].name
        if p.plan.add:
            instance.add_dynamic_partitions(name, list(p.plan.add))
        for key in p.plan.retire:
            instance.delete_dynamic_partition(name, key)
