"""Validated inputs: one asset per landing table; invalid rows go to quarantine with a reason."""

import dagster as dg
import polars as pl

from features.contract import CLICKSTREAM, CUSTOMERS, SUPPORT, SURVEYS, TableContract
from features.ingest import ingest_table
from pipelines.metadata import preview
from pipelines.resources import DataRoot


def _validated(context: dg.AssetExecutionContext, data_root: DataRoot, contract: TableContract, known: pl.Series | None) -> dg.Output:
    result = ingest_table(data_root.landing, contract, known)
    quarantine = data_root.folder("quarantine") / f"{contract.name}.parquet"
    result.quarantined.write_parquet(quarantine)  # rewritten each run, so re-running never piles up
    reasons = result.reason_counts()
    context.log.info(
        f"{contract.name}: {result.rows_in:,} rows in {len(result.files)} files -> {result.accepted.height:,} accepted, "
        f"{result.quarantined.height:,} quarantined {reasons or ''}"
    )
    return dg.Output(
        result.accepted,
        metadata={
            "dagster/row_count": result.accepted.height,
            "rows_in": result.rows_in,
            "rows_quarantined": result.quarantined.height,
            "quarantine_reasons": dg.MetadataValue.json(reasons),
            "quarantine_file": dg.MetadataValue.path(str(quarantine)),
            "files": len(result.files),
            "preview": preview(result.accepted),
        },
    )


@dg.asset(group_name="ingest", kinds={"polars"})
def customers(context: dg.AssetExecutionContext, data_root: DataRoot) -> dg.Output[pl.DataFrame]:
    """Customers from landing/customers, typed; name, email, phone and address never pass this point."""
    return _validated(context, data_root, CUSTOMERS, None)


@dg.asset(group_name="ingest", kinds={"polars"})
def clickstream(context: dg.AssetExecutionContext, data_root: DataRoot, customers: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Web and app events from landing/clickstream."""
    return _validated(context, data_root, CLICKSTREAM, customers["customer_id"])


@dg.asset(group_name="ingest", kinds={"polars"})
def support(context: dg.AssetExecutionContext, data_root: DataRoot, customers: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Support tickets from landing/support."""
    return _validated(context, data_root, SUPPORT, customers["customer_id"])


@dg.asset(group_name="ingest", kinds={"polars"})
def surveys(context: dg.AssetExecutionContext, data_root: DataRoot, customers: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """Survey answers (NPS, CSAT, CES, would-buy-again) from landing/surveys."""
    return _validated(context, data_root, SURVEYS, customers["customer_id"])
