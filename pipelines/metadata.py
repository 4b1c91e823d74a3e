"""Small helpers that turn frames into Dagster metadata people can read in the UI."""

from __future__ import annotations

import dagster as dg
import polars as pl

# digits a figure keeps in the Dagster UI; MLflow keeps full precision
DISPLAY_DIGITS = 4


def figure(value: float, digits: int = DISPLAY_DIGITS) -> dg.MetadataValue:
    """A float rounded for reading: 0.7797, not 0.7796769916398203."""
    return dg.MetadataValue.float(round(float(value), digits))


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    """The frame's columns and their Polars types, for `dagster/column_schema`."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
    )


def preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows, without the customer id: Dagster's event log keeps metadata for good and
    cannot forget one customer, so no customer id is ever written to it."""
    frame = frame.drop("customer_id", strict=False)
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=rows,
        tbl_cols=12,
        fmt_str_lengths=60,
        tbl_width_chars=10_000,
    ):
        return dg.MetadataValue.md(str(frame.head(rows)))
