"""Event tables are partitioned by landing file: one dynamic partition per distinct file content.

The keys and the decision of what is new live in `features/ingest/landing.py`; this module applies
them to a Dagster instance, for the landing sensor and for `pipelines.cli.run_all` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from features.ingest.contract import EVENT_TABLES
from features.ingest.landing import PartitionChanges, partition_changes, scan
from pipelines.resources import DataRoot, FrameStore

FILE_PARTITIONS: dict[str, dg.DynamicPartitionsDefinition] = {
    table: dg.DynamicPartitionsDefinition(name=f"{table}_files") for table in EVENT_TABLES
}


def file_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(f"{table}_files")


def ingest_job_name(table: str) -> str:
    return f"ingest_{table}_files"


@dataclass(frozen=True)
class TableChanges:
    table: str
    changes: PartitionChanges
    # current keys whose validated file is not stored: new ones, and lost ones
    unprocessed: tuple[str, ...]
    # keys materialized before whose stored value is gone -> storage id of that materialization
    lost: Mapping[str, int]

    def requests(self) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
        partitions = FILE_PARTITIONS[self.table]
        out: list = []
        if self.changes.add:
            out.append(partitions.build_add_request(list(self.changes.add)))
        if self.changes.retire:
            out.append(partitions.build_delete_request(list(self.changes.retire)))
        return out

    def run_key(self, key: str) -> str:
        """The sensor's run key for processing `key`: Dagster skips a run key it has seen, so
        re-storing a lost partition needs a key of its own, one per materialization it replaces."""
        return f"{self.table}/{key}" + (f"/after/{self.lost[key]}" if key in self.lost else "")


def is_stored(data_root: DataRoot, store: FrameStore, table: str, key: str) -> bool:
    """Whether a file partition's output and quarantine are both on disk, as the union asset reads
    them."""
    return (
        store.holds(file_asset_key(table), key) and data_root.file_quarantine(table, key).is_file()
    )


def _last_materialization(instance: dg.DagsterInstance, table: str, key: str) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=file_asset_key(table), asset_partitions=[key]), limit=1
    ).records
    return records[0].storage_id


def landing_changes(
    instance: dg.DagsterInstance,
    data_root: DataRoot,
    store: FrameStore,
    cache: Mapping[str, dict] | None = None,
) -> tuple[list[TableChanges], dict[str, dict]]:
    """For each event table: which files are new, which partitions to retire, and which current
    partitions still need processing. Returns the changes and the hash cache for the next scan.

    A partition the instance has materialized is processed again when its stored value is missing:
    the instance outlives a change of data root (TOUCHPOINT_CHURN_DATA) or a deleted assets/
    folder."""
    cache = cache or {}
    tables, new_cache = [], {}
    for table in EVENT_TABLES:
        files, new_cache[table] = scan(data_root.landing, table, cache.get(table))
        name = FILE_PARTITIONS[table].name
        assert name is not None  # FILE_PARTITIONS names every definition
        changes = partition_changes(files, instance.get_dynamic_partitions(name))
        done = instance.get_materialized_partitions(file_asset_key(table))
        missing = [
            k for k in changes.current if k not in done or not is_stored(data_root, store, table, k)
        ]
        lost = {k: _last_materialization(instance, table, k) for k in missing if k in done}
        tables.append(TableChanges(table, changes, tuple(missing), lost))
    return tables, new_cache


def apply(instance: dg.DagsterInstance, changes: list[TableChanges]) -> None:
    """Register new partitions and retire stale ones directly (the sensor returns requests
    instead)."""
    for table in changes:
        name = FILE_PARTITIONS[table.table].name
        assert name is not None  # FILE_PARTITIONS names every definition
        if table.changes.add:
            instance.add_dynamic_partitions(name, list(table.changes.add))
        for key in table.changes.retire:
            instance.delete_dynamic_partition(name, key)
