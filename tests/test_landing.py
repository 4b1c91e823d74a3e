"""Incremental ingestion: each distinct landing file is one partition, processed once; the sensor
finds new ones."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from features.ingest.landing import LandedFile, partition_changes, resolve, scan
from pipelines.config import QualityBounds
from pipelines.definitions import build_definitions
from pipelines.partitions import bucketed_table, every_bucket_tags, landing_changes

SENSOR = "landing_files_sensor"


def _events(ids: list[str], day: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": ids,
            "customer_id": [f"C{i % 3 + 1}" for i in range(len(ids))],
            "ts": [datetime(2026, 3, day, 9, i, tzinfo=UTC) for i in range(len(ids))],
            "event_type": ["page_view"] * len(ids),
        }
    )


def _landing(data_root: Path) -> Path:
    """A landing folder with three customers and one day of clickstream."""
    landing = data_root / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "customers" / "customers.csv").write_text(
        "customer_id,signup_at\nC1,2026-01-01\nC2,2026-01-01\nC3,2026-01-01\n"
    )
    (landing / "clickstream").mkdir()
    _events(["E1", "E2", "E3", "E4", "E5"], 1).write_parquet(
        landing / "clickstream" / "day1.parquet"
    )
    return landing


@dataclass(frozen=True)
class Tick:
    """What one sensor evaluation asked for."""

    run_requests: list[dg.RunRequest]
    dynamic_partitions_requests: list[
        dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest
    ]
    cursor: str | None

    def partition_keys(self) -> list[str]:
        keys = [r.partition_key for r in self.run_requests]
        assert all(keys), keys
        return [k for k in keys if k]


def _resource(defs: dg.Definitions, name: str):
    assert defs.resources is not None
    return defs.resources[name]


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> Tick:
    """One sensor evaluation, then what the daemon would do with it: partitions, then runs."""
    resources = {name: _resource(defs, name) for name in ("data_root", "settings")}
    result = defs.resolve_sensor_def(SENSOR)(
        dg.build_sensor_context(
            instance=instance, definitions=defs, cursor=cursor, resources=resources
        )
    )
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests is not None and result.dynamic_partitions_requests is not None
    tick = Tick(list(result.run_requests), list(result.dynamic_partitions_requests), result.cursor)
    for request in tick.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    for run in tick.run_requests:
        assert run.job_name is not None
        assert (
            defs.resolve_job_def(run.job_name)
            .execute_in_process(instance=instance, partition_key=run.partition_key)
            .success
        )
    return tick


def test_partition_changes_add_new_content_once_and_retire_what_left():
    a, b = LandedFile("day1.parquet", "a" * 64), LandedFile("day2.parquet", "b" * 64)
    copy_of_a = LandedFile("day1_again.parquet", "a" * 64)
    first = partition_changes([a], [])
    assert first.add == (a.key,) and first.retire == ()
    second = partition_changes([a, copy_of_a, b], first.current)
    # the copy maps to the content already held
    assert second.add == (b.key,) and second.keep == (a.key,)
    changed = LandedFile("day2.parquet", "c" * 64)
    third = partition_changes([a, changed], second.current)
    assert third.add == (changed.key,) and third.retire == (b.key,)
    assert partition_changes([], third.current).retire == third.current


def test_scan_hashes_content_and_resolve_refuses_a_changed_file(tmp_path):
    folder = tmp_path / "clickstream"
    folder.mkdir()
    _events(["E1"], 1).write_parquet(folder / "day1.parquet")
    files, cache = scan(tmp_path, "clickstream")
    assert [f.relpath for f in files] == ["day1.parquet"] and cache["day1.parquet"][2] == files[
        0
    ].digest
    assert resolve(tmp_path, "clickstream", files[0].key) == folder / "day1.parquet"
    _events(["E1", "E2"], 1).write_parquet(folder / "day1.parquet")
    with pytest.raises(ValueError, match="changed since it was registered"):
        resolve(tmp_path, "clickstream", files[0].key)
    with pytest.raises(ValueError, match="not a landing partition key"):
        resolve(tmp_path, "clickstream", "day1.parquet")


@pytest.mark.e2e
def test_sensor_processes_a_new_day_only_and_counts_no_event_twice(tmp_path):
    data_root = tmp_path / "data"
    landing = _landing(data_root)
    # a tiny table where one repeated event is 11% of the rows: lift the quarantine bound meant for
    # real volumes
    defs = build_definitions(
        data_root,
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        quality=QualityBounds(max_quarantine_share=0.5),
    )
    files_key, table_key = dg.AssetKey("clickstream_files"), dg.AssetKey("clickstream")

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:

        def tick(cursor: str | None) -> Tick:
            return _tick(defs, instance, cursor)

        def union() -> tuple[pl.DataFrame, dict]:
            events = _union(defs, instance)
            event = instance.get_latest_materialization_event(table_key)
            assert event is not None and event.asset_materialization is not None
            meta = event.asset_materialization.metadata
            return events, {
                k: meta[k].value for k in ("rows_in", "dagster/row_count", "rows_quarantined")
            }

        def materializations(key: str) -> int:
            return len(
                instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=files_key, asset_partitions=[key]), limit=10
                ).records
            )

        first = tick(None)
        (day1,) = first.partition_keys()
        assert day1.startswith("day1.parquet@")
        events, counts = union()
        assert sorted(events["event_id"]) == ["E1", "E2", "E3", "E4", "E5"]

        # day 2 arrives (repeating one event of day 1), and day 1 is dropped again under another
        # name
        _events(["E3", "E6", "E7", "E8"], 2).write_parquet(landing / "clickstream" / "day2.parquet")
        shutil.copy(
            landing / "clickstream" / "day1.parquet", landing / "clickstream" / "day1_again.parquet"
        )
        second = tick(first.cursor)
        (day2,) = second.partition_keys()
        assert day2.startswith("day2.parquet@")
        assert [list(r.partition_keys) for r in second.dynamic_partitions_requests] == [[day2]]
        assert sorted(instance.get_dynamic_partitions("clickstream_files")) == sorted([day1, day2])
        assert materializations(day1) == 1 and materializations(day2) == 1

        events, counts = union()
        assert sorted(events["event_id"]) == ["E1", "E2", "E3", "E4", "E5", "E6", "E7", "E8"]
        assert events["event_id"].is_unique().all()
        # E3's second copy is quarantined, not lost: rows in = accepted + quarantined
        assert counts == {"rows_in": 9, "dagster/row_count": 8, "rows_quarantined": 1}
        quarantine = pl.read_parquet(data_root / "quarantine" / "clickstream.parquet")
        assert quarantine.select("event_id", "_source_file", "_reason").rows() == [
            ("E3", "day2.parquet", "duplicate event_id 'E3' (first kept)")
        ]

        # nothing new: nothing to do
        third = tick(second.cursor)
        assert third.run_requests == [] and third.dynamic_partitions_requests == []
        assert materializations(day1) == 1 and materializations(day2) == 1


def _union(defs: dg.Definitions, instance: dg.DagsterInstance) -> pl.DataFrame:
    """The validated clickstream, every bucket's."""
    run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("customers"), dg.AssetKey("clickstream")],
        tags=every_bucket_tags(_resource(defs, "settings").buckets),
    )
    assert run.success
    settings = _resource(defs, "settings")
    return bucketed_table(_resource(defs, "data_root"), "clickstream", settings.buckets).collect()


def _ids(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    return sorted(_union(defs, instance)["event_id"])


@pytest.mark.e2e
def test_a_partition_whose_stored_file_is_gone_is_ingested_again(tmp_path):
    """The instance outlives the data root: after a change of TOUCHPOINT_CHURN_DATA or a deleted
    assets/ folder it still lists the partition as materialized, but there is nothing to read."""
    old_root, new_root = tmp_path / "data", tmp_path / "own"
    _landing(old_root)
    shutil.copytree(old_root / "landing", new_root / "landing")

    def build(root: Path) -> dg.Definitions:
        return build_definitions(root, f"sqlite:///{tmp_path / 'mlflow.db'}")

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        old = build(old_root)
        (first,) = _tick(old, instance, None).run_requests
        assert _ids(old, instance) == ["E1", "E2", "E3", "E4", "E5"]

        # the same files under another data root: the instance has the partition, the new root has
        # no stored file
        new = build(new_root)
        (changes, *_), _ = landing_changes(
            instance, _resource(new, "data_root"), _resource(new, "settings").buckets
        )
        assert changes.unprocessed == (first.partition_key,)
        (again,) = _tick(new, instance, None).run_requests
        # a reused run key would be skipped
        assert again.partition_key == first.partition_key and again.run_key != first.run_key
        assert _ids(new, instance) == ["E1", "E2", "E3", "E4", "E5"]
        assert _tick(new, instance, None).run_requests == []  # stored now: nothing to do

        # the old root's assets/ deleted: ingested again there too, under yet another run key
        shutil.rmtree(old_root / "assets")
        (third,) = _tick(old, instance, None).run_requests
        assert third.run_key not in (first.run_key, again.run_key)
        assert _ids(old, instance) == ["E1", "E2", "E3", "E4", "E5"]
