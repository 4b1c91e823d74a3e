"""Validated inputs; invalid rows go to quarantine with a reason.

`customers` is small and read whole on every run. Each event table (clickstream, support, surveys)
comes in two steps:

- `<table>_files`, partitioned by landing file (see `pipelines/partitions.py`): one file validated
  on its own, exactly once per distinct content, its accepted rows split by customer bucket; its
  bad rows go to quarantine/<table>/<key>.parquet.
- `<table>`, partitioned by customer bucket: each bucket's rows of the current files, kept as one
  piece per file (assets/<table>/<bucket>/<key>.parquet, `features.ingest.pieces`), where an id
  already seen in an earlier file is quarantined as a duplicate and events of unknown customers
  are quarantined (quarantine/<table>_buckets/<bucket>/<key>.parquet). A run appends the new
  files' pieces, checked against the stored pieces' ids, and rebuilds a bucket only when a file
  left or the customers changed under it. The table's whole quarantine is rewritten to
  quarantine/<table>.parquet. Rows in = accepted + quarantined holds for every file and for the
  table.
"""

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import polars as pl

from features.ingest.buckets import IngestedBuckets, bucket_keys, by_bucket, customer_bucket
from features.ingest.contract import (
    CLICKSTREAM,
    CONTRACTS,
    CUSTOMERS,
    SUPPORT,
    SURVEYS,
    TableContract,
)
from features.ingest.file_quarantine import set_aside, set_aside_reason, write_table_log
from features.ingest.landing import resolve, split_key
from features.ingest.pieces import (
    NO_FILES,
    appended,
    check_pieces,
    customers_moved,
    known_customers,
    out_of_order,
    piece_key,
    piece_name,
    stored_keys,
)
from features.ingest.read import (
    IngestSummary,
    ingest_file,
    ingest_table,
    skipped_files_warning,
    summary_line,
)
from features.ingest.validate import (
    REASON,
    SOURCE_FILE,
    UNKNOWN_CUSTOMER,
    no_accepted,
    no_quarantine,
    quarantine_schema,
)
from pipelines.metadata import preview
from pipelines.partitions import FILE_PARTITIONS
from pipelines.resources import ChurnSettings, DataRoot, write_replacing

OWNERS = ["team:data-platform"]


def _metadata(result: IngestSummary, accepted: int, quarantine: Path, seconds: float) -> dict:
    return {
        "dagster/row_count": accepted,
        "rows_in": result.rows_in,
        "rows_quarantined": result.rows_quarantined,
        "files_set_aside": dg.MetadataValue.json(
            [{"file": f.file, "rows": f.rows, "reason": f.reason} for f in result.files_quarantined]
        ),
        "quarantine_reasons": dg.MetadataValue.json(result.reason_counts()),
        "quarantine_file": dg.MetadataValue.path(str(quarantine)),
        "files": len(result.files),
        "seconds": round(seconds, 2),
    }


def _log(
    context: dg.AssetExecutionContext, what: str, result: IngestSummary, seconds: float
) -> None:
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
        result.accepted,
        metadata={
            **_metadata(result, result.accepted.height, quarantine, seconds),
            "preview": preview(result.accepted),
        },
    )


def write_pieces(accepted: pl.DataFrame, folder: Path, buckets: int) -> None:
    """A file's accepted rows split by customer bucket, one <bucket>.parquet each (none for a
    bucket without rows), written beside and renamed into place so a killed run leaves no half a
    split behind."""
    keys = bucket_keys(buckets)
    staging = folder.with_name(f".{folder.name}-writing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    split = accepted.with_columns(customer_bucket(pl.col("customer_id"), buckets).alias("_bucket"))
    for (bucket,), rows in split.partition_by("_bucket", as_dict=True).items():
        rows.drop("_bucket").write_parquet(staging / f"{keys[int(bucket)]}.parquet")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _file_asset(contract: TableContract) -> dg.AssetsDefinition:
    table = contract.name

    @dg.asset(
        name=f"{table}_files",
        partitions_def=FILE_PARTITIONS[table],
        group_name="ingest",
        kinds={"polars"},
        owners=OWNERS,
        code_version="2",
        description=(
            f"One landing/{table} file validated on its own "
            "(row checks, ids repeated within the file) and split by customer bucket; one "
            "partition per distinct file content."
        ),
    )
    def _validated_file(
        context: dg.AssetExecutionContext, data_root: DataRoot, settings: ChurnSettings
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        key = context.partition_key
        path = resolve(data_root.landing, table, key)
        result = ingest_file(
            path,
            contract,
            path.relative_to(data_root.landing / table).as_posix(),
            data_root.pseudonym_key,
        )
        quarantine = data_root.file_quarantine(table, key)
        quarantine.parent.mkdir(parents=True, exist_ok=True)
        result.quarantined.write_parquet(quarantine)
        for whole in result.files_quarantined:
            set_aside(path, data_root.set_aside_folder(table, key), whole)
        write_pieces(
            result.accepted, data_root.file_pieces(table, key, settings.buckets), settings.buckets
        )
        seconds = time.perf_counter() - started
        _log(context, f"{table} file {path.name}", result, seconds)
        return dg.MaterializeResult(
            metadata={
                **_metadata(result, result.accepted.height, quarantine, seconds),
                "landing_file": dg.MetadataValue.path(str(path)),
                "preview": preview(result.accepted),
            },
        )

    return _validated_file


def _rows(found: dict[str, Path], keys: Sequence[str], contract: TableContract) -> pl.DataFrame:
    """The validated rows of files `keys` in one bucket, in file order (what decides which copy of
    a repeated id is first): one read of their pieces in parallel, not one after another."""
    pieces = [found[key] for key in keys if key in found]
    return pl.read_parquet(pieces) if pieces else no_accepted(contract)


def _shared_ids(
    folder: Path,
    quarantine: Path,
    stored: Sequence[str],
    new_keys: Sequence[str],
    rows: pl.DataFrame,
    contract: TableContract,
) -> pl.DataFrame:
    """The ids of new `rows` that stored files hold: (id, the stored file's key `stored`, the new
    file's key `new`). A stored file holds its accepted ids and those of its events quarantined
    for an unknown customer: checking every file at once counts those as the first copy too.
    Reads the id columns only, and hashes the few new ids."""
    by_file = {split_key(k)[0]: k for k in new_keys}
    ids = contract.id_column
    paths = {str(folder / piece_name(k)): k for k in stored}
    earlier = [pl.scan_parquet(list(paths), include_file_paths="_piece").select(ids, "_piece")]
    rejected = {str(p): piece_key(p) for p in quarantine.glob("*.parquet")}
    if rejected:
        paths |= rejected
        unknown = pl.col(REASON).str.ends_with(UNKNOWN_CUSTOMER)
        earlier.append(
            pl.scan_parquet(list(rejected), include_file_paths="_piece")
            .filter(unknown)
            .select(ids, "_piece")
        )
    new = rows.lazy().select(ids, pl.col(SOURCE_FILE).replace_strict(by_file).alias("new"))
    shared = pl.concat(earlier).join(new, on=ids, how="semi").collect()
    return shared.join(new.collect(), on=ids).select(
        ids, pl.col("_piece").replace_strict(paths).alias("stored"), "new"
    )


def _update_bucket(
    data_root: DataRoot,
    contract: TableContract,
    keys: list[str],
    bucket: str,
    buckets: int,
    customers: pl.Series,
) -> str:
    """Bring one bucket's pieces (`features.ingest.pieces`) up to the current files: the new files
    appended, checked against the stored pieces' ids and the bucket's known `customers`, or every
    file again when the stored pieces no longer hold. Returns what it did, for the log. The known
    customers are removed first and written last, so a run killed half way leaves a bucket the
    next run rebuilds."""
    table = contract.name
    folder, quarantine = (
        data_root.bucket_folder(table, bucket),
        data_root.bucket_quarantine(table, bucket),
    )
    data_root.asset_file(table, bucket).unlink(missing_ok=True)  # one file a bucket, before pieces
    known_file = folder / known_customers(buckets)
    stored = stored_keys(folder)
    todo = appended(stored, keys) if known_file.is_file() else None
    why = (
        "first build"
        if not stored
        else "a file was removed"
        if known_file.is_file()
        else "the bucket count changed"
        if any(folder.glob("known_customers.*"))
        else "the last build stopped half way"
    )
    if todo is not None:
        rejected = sorted(quarantine.glob("*.parquet"))
        quarantined = (
            pl.read_parquet(rejected, schema=quarantine_schema(contract))
            if rejected
            else no_quarantine(contract)
        )
        moved = customers_moved(pl.read_ipc(known_file)["customer_id"], customers, quarantined)
        if moved is not None:
            todo, why = None, moved
    known_file.unlink(missing_ok=True)
    files = [data_root.file_pieces(table, key, buckets) / f"{bucket}.parquet" for key in keys]
    found = {key: f for key, f in zip(keys, files, strict=True) if f.exists()}
    earlier, rows = None, None
    if todo and stored:
        rows = _rows(found, todo, contract)
        earlier = _shared_ids(folder, quarantine, stored, todo, rows, contract)
        if out_of_order(earlier):
            todo, why = None, "a new file sorts before a stored one that holds some of its ids"
    if todo is None:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(quarantine, ignore_errors=True)
        stored, todo, earlier, rows = [], tuple(keys), None, None
    if rows is None:
        rows = _rows(found, todo, contract)
    shared = None if earlier is None else earlier.lazy().select(contract.id_column)
    for key, (accepted, rejected) in check_pieces(rows, todo, contract, customers, shared).items():
        if rejected.height:
            write_replacing(rejected, quarantine / piece_name(key))
        write_replacing(accepted, folder / piece_name(key))
    if not keys:
        write_replacing(contract.empty(), folder / piece_name(NO_FILES))
    folder.mkdir(parents=True, exist_ok=True)
    customers.to_frame("customer_id").write_ipc(known_file)
    if not todo:
        return "unchanged"
    return f"{len(todo)} files appended" if stored else f"rebuilt ({why})"


def _table_asset(
    contract: TableContract,
    description: str,
    partitions: dg.PartitionsDefinition,
    policy: dg.BackfillPolicy,
) -> dg.AssetsDefinition:
    table = contract.name

    @dg.asset(
        name=table,
        partitions_def=partitions,
        backfill_policy=policy,
        deps=[dg.AssetDep(f"{table}_files", partition_mapping=dg.AllPartitionMapping())],
        group_name="ingest",
        kinds={"polars"},
        owners=OWNERS,
        code_version="2",
        description=description,
    )
    def _union(
        context: dg.AssetExecutionContext,
        data_root: DataRoot,
        settings: ChurnSettings,
        customers: pl.DataFrame,
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        name = FILE_PARTITIONS[table].name
        assert name is not None  # FILE_PARTITIONS names every definition
        registered = sorted(context.instance.get_dynamic_partitions(name))
        # a file registered by the sensor whose run has not stored its split yet joins a later run
        keys = [k for k in registered if data_root.file_pieces(table, k, settings.buckets).is_dir()]
        if waiting := sorted(set(registered) - set(keys)):
            context.log.warning(
                f"{len(waiting)} {table} files are not validated yet and wait for a later run: "
                f"{', '.join(waiting[:5])}"
            )
        known = by_bucket(customers.select("customer_id"), settings.buckets)
        done: dict[str, list[str]] = {}
        for bucket in context.partition_keys:
            what = _update_bucket(
                data_root, contract, keys, bucket, settings.buckets, known[bucket]["customer_id"]
            )
            done.setdefault(what, []).append(bucket)
        accepted = sum(
            pl.scan_parquet(data_root.bucket_files(table, b)).select(pl.len()).collect().item()
            for b in context.partition_keys
        )
        context.log.info("; ".join(f"buckets {', '.join(b)}: {what}" for what, b in done.items()))
        whole = _whole_table(data_root, table, keys, settings.buckets, accepted)
        seconds = time.perf_counter() - started
        _log(
            context,
            f"{table} ({len(keys)} files, {len(context.partition_keys)} buckets)",
            whole,
            seconds,
        )
        _warn_skipped(context, data_root, table)
        return dg.MaterializeResult(
            metadata={
                **_metadata(
                    whole, accepted, data_root.folder("quarantine") / f"{table}.parquet", seconds
                ),
                "buckets": len(context.partition_keys),
                "partitions": dg.MetadataValue.json(keys),
            },
        )

    return _union


def _whole_table(
    data_root: DataRoot, table: str, keys: list[str], buckets: int, accepted: int
) -> IngestedBuckets:
    """The table's counts, its quarantine rewritten to quarantine/<table>.parquet from every current
    file's and every bucket's (those this run did not build too), and its log of files set
    aside."""
    parts = [data_root.file_quarantine(table, key) for key in keys] + [
        piece
        for bucket in bucket_keys(buckets)
        for piece in sorted(data_root.bucket_quarantine(table, bucket).glob("*.parquet"))
    ]
    quarantined = pl.read_parquet([p for p in parts if p.exists()]) if parts else None
    if quarantined is None:
        quarantined = no_quarantine(CONTRACTS[table])
    quarantined.write_parquet(data_root.folder("quarantine") / f"{table}.parquet")
    set_aside = tuple(
        filter(None, [set_aside_reason(data_root.set_aside_folder(table, key)) for key in keys])
    )
    write_table_log(data_root.set_aside_log(table), len(keys), set_aside)
    return IngestedBuckets(accepted, quarantined, tuple(keys), buckets, set_aside)


def bucketed_assets(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> list[dg.AssetsDefinition]:
    """The validated event tables, one partition per customer bucket."""
    return [
        _table_asset(
            CLICKSTREAM,
            "Web and app events from landing/clickstream: every file's accepted rows, "
            "an event id counted once.",
            partitions,
            policy,
        ),
        _table_asset(
            SUPPORT,
            "Support tickets from landing/support: every file's accepted rows, a ticket id "
            "counted once.",
            partitions,
            policy,
        ),
        _table_asset(
            SURVEYS,
            "Survey answers (NPS, CSAT, CES, would-buy-again) from landing/surveys, "
            "a response id counted once.",
            partitions,
            policy,
        ),
    ]


clickstream_files = _file_asset(CLICKSTREAM)
support_files = _file_asset(SUPPORT)
surveys_files = _file_asset(SURVEYS)
