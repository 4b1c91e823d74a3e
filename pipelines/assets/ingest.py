"""Validated inputs; invalid rows go to quarantine with a reason.

`customers` is small and read whole on every run. Each event table (clickstream, support, surveys)
comes in two steps:

- `<table>_files`, partitioned by landing file (see `pipelines/partitions.py`): one file validated
  on its own, exactly once per distinct content; its bad rows go to
  quarantine/<table>/<key>.parquet.
- `<table>`: the union of the current partitions, where an id already seen in an earlier file is
  quarantined as a duplicate and events of unknown customers are quarantined; the table's whole
  quarantine is rewritten to quarantine/<table>.parquet. Rows in = accepted + quarantined holds for
  every file and for the table.
"""

import time
from pathlib import Path

import dagster as dg
import polars as pl

from features.ingest.contract import CLICKSTREAM, CUSTOMERS, SUPPORT, SURVEYS, TableContract
from features.ingest.file_quarantine import set_aside, set_aside_reason, write_table_log
from features.ingest.landing import resolve
from features.ingest.read import (
    Ingested,
    combine,
    ingest_file,
    ingest_table,
    skipped_files_warning,
    summary_line,
)
from pipelines.metadata import preview
from pipelines.partitions import FILE_PARTITIONS
from pipelines.resources import DataRoot

OWNERS = ["team:data-platform"]


def _metadata(result: Ingested, accepted: pl.DataFrame, quarantine: Path, seconds: float) -> dict:
    return {
        "dagster/row_count": accepted.height,
        "rows_in": result.rows_in,
        "rows_quarantined": result.rows_quarantined,
        "files_set_aside": dg.MetadataValue.json(
            [{"file": f.file, "rows": f.rows, "reason": f.reason} for f in result.files_quarantined]
        ),
        "quarantine_reasons": dg.MetadataValue.json(result.reason_counts()),
        "quarantine_file": dg.MetadataValue.path(str(quarantine)),
        "files": len(result.files),
        "seconds": round(seconds, 2),
        "preview": preview(accepted),
    }


def _log(context: dg.AssetExecutionContext, what: str, result: Ingested, seconds: float) -> None:
    line = summary_line(what, result, seconds)
    (context.log.warning if result.files_quarantined else context.log.info)(line)
    for warning in result.warnings:
        context.log.warning(warning)


def _warn_skipped(context: dg.AssetExecutionContext, data_root: DataRoot, table: str) -> None:
    if warning := skipped_files_warning(data_root.landing, table):
        context.log.warning(warning)


@dg.asset(
    group_name="ingest",
    kinds={"polars"},
    owners=OWNERS,
    code_version="1",
    description=(
        "Customers from landing/customers, typed; "
        "name, email, phone and address never pass this point."
    ),
)
def customers(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.Output[pl.DataFrame]:
    started = time.perf_counter()
    result = ingest_table(data_root.landing, CUSTOMERS, None, data_root.pseudonym_key)
    quarantine = data_root.folder("quarantine") / "customers.parquet"
    result.quarantined.write_parquet(quarantine)  # rewritten each run, so re-running never piles up
    seconds = time.perf_counter() - started
    _log(context, f"customers ({len(result.files)} files)", result, seconds)
    _warn_skipped(context, data_root, "customers")
    return dg.Output(
        result.accepted, metadata=_metadata(result, result.accepted, quarantine, seconds)
    )


def _file_asset(contract: TableContract) -> dg.AssetsDefinition:
    table = contract.name

    @dg.asset(
        name=f"{table}_files",
        partitions_def=FILE_PARTITIONS[table],
        group_name="ingest",
        kinds={"polars"},
        owners=OWNERS,
        code_version="1",
        description=(
            f"One landing/{table} file validated on its own "
            "(row checks, ids repeated within the file); one partition per distinct file content."
        ),
    )
    def _validated_file(
        context: dg.AssetExecutionContext, data_root: DataRoot
    ) -> dg.Output[pl.DataFrame]:
        started = time.perf_counter()
        path = resolve(data_root.landing, table, context.partition_key)
        result = ingest_file(
            path,
            contract,
            path.relative_to(data_root.landing / table).as_posix(),
            data_root.pseudonym_key,
        )
        quarantine = data_root.file_quarantine(table, context.partition_key)
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        result.quarantined.write_parquet(quarantine)
        for whole in result.files_quarantined:
            set_aside(path, data_root.set_aside_folder(table, context.partition_key), whole)
        seconds = time.perf_counter() - started
        _log(context, f"{table} file {path.name}", result, seconds)
        return dg.Output(
            result.accepted,
            metadata={
                **_metadata(result, result.accepted, quarantine, seconds),
                "landing_file": dg.MetadataValue.path(str(path)),
            },
        )

    return _validated_file


def _table_asset(contract: TableContract, description: str) -> dg.AssetsDefinition:
    table = contract.name

    @dg.asset(
        name=table,
        ins={"files": dg.AssetIn(f"{table}_files")},
        group_name="ingest",
        kinds={"polars"},
        owners=OWNERS,
        code_version="1",
        description=description,
    )
    def _union(
        context: dg.AssetExecutionContext,
        data_root: DataRoot,
        customers: pl.DataFrame,
        files: dict[str, pl.DataFrame],
    ) -> dg.Output[pl.DataFrame]:
        started = time.perf_counter()
        parts = [
            Ingested(
                accepted,
                pl.read_parquet(data_root.file_quarantine(table, key)),
                (key,),
                tuple(filter(None, [set_aside_reason(data_root.set_aside_folder(table, key))])),
            )
            for key, accepted in files.items()
        ]
        result = combine(parts, contract, customers["customer_id"])
        quarantine = data_root.folder("quarantine") / f"{table}.parquet"
        result.quarantined.write_parquet(quarantine)
        write_table_log(data_root.set_aside_log(table), len(parts), result.files_quarantined)
        seconds = time.perf_counter() - started
        _log(context, f"{table} ({len(parts)} files)", result, seconds)
        _warn_skipped(context, data_root, table)
        return dg.Output(
            result.accepted,
            metadata={
                **_metadata(result, result.accepted, quarantine, seconds),
                "partitions": dg.MetadataValue.json(list(files)),
            },
        )

    return _union


clickstream_files = _file_asset(CLICKSTREAM)
support_files = _file_asset(SUPPORT)
surveys_files = _file_asset(SURVEYS)
clickstream = _table_asset(
    CLICKSTREAM,
    (
        "Web and app events from landing/clickstream: every file's accepted rows, "
        "an event id counted once."
    ),
)
support = _table_asset(
    SUPPORT,
    "Support tickets from landing/support: every file's accepted rows, a ticket id counted once.",
)
surveys = _table_asset(
    SURVEYS,
    (
        "Survey answers (NPS, CSAT, CES, would-buy-again) from landing/surveys, "
        "a response id counted once."
    ),
)
