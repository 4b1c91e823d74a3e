"""Two kinds of partitions.

- Landing files: each event table's `<table>_files` asset has one dynamic partition per distinct
  file content. The keys and the decision of what is new live in `features/ingest/landing.py`;
  this module applies them to a Dagster instance, for the landing sensor and for
  `pipelines.cli.run_all` alike.
- Customer buckets: the tables whose rows are per customer (validated events, customer-days,
  snapshots, scoring features, SHAP values) have one static partition per customer-hash bucket
  (`features.ingest.buckets.customer_bucket`), so a step holds one bucket at a time and a cluster
  can run buckets side by side. Locally one run takes every bucket in turn (a single-run
  backfill); a deployment with a run launcher that starts a process per run fans out one run per
  bucket (a multi-run backfill).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from features.ingest.buckets import bucket_keys
from features.ingest.contract import EVENT_TABLES
from features.ingest.landing import PartitionChanges, partition_changes, scan
from pipelines.resources import DataRoot

FILE_PARTITIONS: dict[str, dg.DynamicPartitionsDefinition] = {
    table: dg.DynamicPartitionsDefinition(name=f"{table}_files") for table in EVENT_TABLES
}


# the assets with one partition per customer bucket, in the order a run builds them
BUCKETED = (
    "clickstream",
    "support",
    "surveys",
    "touchpoint_days",
    "text_themes",
    "training_snapshots",
    "scoring_features",
    "shap_attributions",
)


def bucket_partitions(buckets: int) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(bucket_keys(buckets))


def bucketed_table(data_root: DataRoot, asset: str, buckets: int) -> pl.LazyFrame:
    """Every bucket of a bucketed asset's stored table, as one scan (for notebooks, benchmarks and
    tests; assets read it through their IO manager, `FrameStore`)."""
    files = {key: data_root.bucket_files(asset, key) for key in bucket_keys(buckets)}
    if missing := [key for key, found in files.items() if not found]:
        raise FileNotFoundError(f"{asset} lacks buckets {missing[:3]}: materialize them first")
    return pl.scan_parquet([f for found in files.values() for f in found])


def stored_buckets(data_root: DataRoot, asset: str, buckets: int) -> list[list[Path]]:
    """The files of each bucket of a validated or derived table stored now (a run over some buckets
    sees the others as they were last written; `DataRoot.bucket_files`), or the one file of an
    unpartitioned table."""
    if asset not in BUCKETED:
        return [[data_root.table_file(asset)]]
    stored = [data_root.bucket_files(asset, key) for key in bucket_keys(buckets)]
    return [files for files in stored if files]


def stored_files(data_root: DataRoot, asset: str, buckets: int) -> list[Path]:
    """`stored_buckets`' files, one list."""
    return [f for files in stored_buckets(data_root, asset, buckets) for f in files]


def stored_table(data_root: DataRoot, asset: str, buckets: int) -> pl.LazyFrame:
    """`stored_files` as one scan: what an asset check reads instead of loading its asset."""
    return pl.scan_parquet(stored_files(data_root, asset, buckets))


def stored_parts(data_root: DataRoot, asset: str, buckets: int) -> list[pl.LazyFrame]:
    """`stored_buckets` as one scan per bucket: for a step that reads the buckets one at a time,
    in memory bounded by a bucket."""
    return [pl.scan_parquet(files) for files in stored_buckets(data_root, asset, buckets)]


def every_bucket(buckets: int) -> dg.PartitionKeyRange:
    """The range of all buckets: what one run over every customer (`make run`, the schedules)
    materializes."""
    keys = bucket_keys(buckets)
    return dg.PartitionKeyRange(keys[0], keys[-1])


def every_bucket_tags(buckets: int) -> dict[str, str]:
    """The tags that make one run take every bucket, for runs launched directly (`make run`)
    rather than by a schedule's request."""
    every = every_bucket(buckets)
    return {ASSET_PARTITION_RANGE_START_TAG: every.start, ASSET_PARTITION_RANGE_END_TAG: every.end}


# Dagster 1.13 marks an asset's backfill_policy beta and warns once per asset definition; the two
# policies used here are its documented ones, and the warning would fill every run's log
warnings.filterwarnings(
    "ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning
)


def backfill_policy(deployment: str) -> dg.BackfillPolicy:
    """Locally every bucket in one run, one after another: a process per bucket would only add
    Dagster's start-up to each. Elsewhere a run per bucket, which a run launcher that starts each
    run in its own pod (Kubernetes) spreads over machines."""
    return (
        dg.BackfillPolicy.single_run() if deployment == "local" else dg.BackfillPolicy.multi_run(1)
    )


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


def is_stored(data_root: DataRoot, buckets: int, table: str, key: str) -> bool:
    """Whether a file partition's rows, split into this many buckets, and its quarantine are both
    on disk, as the bucketed table reads them."""
    return (
        data_root.file_pieces(table, key, buckets).is_dir()
        and data_root.file_quarantine(table, key).is_file()
    )


def _last_materialization(instance: dg.DagsterInstance, table: str, key: str) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=file_asset_key(table), asset_partitions=[key]), limit=1
    ).records
    return records[0].storage_id


def landing_changes(
    instance: dg.DagsterInstance,
    data_root: DataRoot,
    buckets: int,
    cache: Mapping[str, dict] | None = None,
) -> tuple[list[TableChanges], dict[str, dict]]:
    """For each event table: which files are new, which partitions to retire, and which current
    partitions still need processing. Returns the changes and the hash cache for the next scan.

    A partition the instance has materialized is processed again when its stored value is missing:
    the instance outlives a change of data root (TOUCHPOINT_CHURN_DATA), a deleted assets/ folder
    or a change of the bucket count."""
    cache = cache or {}
    tables, new_cache = [], {}
    for table in EVENT_TABLES:
        files, new_cache[table] = scan(data_root.landing, table, cache.get(table))
        name = FILE_PARTITIONS[table].name
        assert name is not None  # FILE_PARTITIONS names every definition
        changes = partition_changes(files, instance.get_dynamic_partitions(name))
        done = instance.get_materialized_partitions(file_asset_key(table))
        missing = [
            k
            for k in changes.current
            if k not in done or not is_stored(data_root, buckets, table, k)
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
