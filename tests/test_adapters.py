"""The mapping layer and the two adapters, on small slices of the real files in ../shared/datasets
(skipped, saying so, only where that folder is absent)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from features.catalogue import load_catalogue
from features.feature_plan import feature_set
from features.ingest.adapters import cdnow, olist
from features.ingest.contract import CONTRACTS
from features.ingest.mapping import TableMap, apply_map, write_landing
from features.ingest.read import ingest_table
from features.touchpoint_days import fold_touchpoint_days
from pipelines.cli import forward_check, run_all
from pipelines.definitions import build_definitions

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_datasets = pytest.mark.skipif(
    not DATASETS.is_dir(), reason=f"the shared datasets are not at {DATASETS}"
)


def test_a_map_renames_parses_maps_event_names_and_quarantines_what_it_cannot_place():
    source = pl.DataFrame(
        {
            "who": ["A", "B", "C", "D"],
            "when": ["20260105", "2026-01-06", "20260107", "20260108"],
            "what": ["buy", "buy", "teleport", "refund"],
            "promised": ["20260110", "20260110", "20260110", "20260101"],
        }
    )
    late_or_not = TableMap(
        name="orders",
        table="clickstream",
        columns={
            "event_id": pl.format("O{}", "who"),
            "customer_id": "who",
            "ts": "when",
            "event_type": "what",
        },
        timestamps={"ts": "%Y%m%d"},
        event_types={"buy": "purchase", "refund": "return_request"},
    )
    mapped = apply_map(source, late_or_not)
    assert mapped.rows_in == source.height == mapped.accepted.height + mapped.quarantined.height
    assert mapped.accepted.columns == CONTRACTS["clickstream"].schema.names()
    assert mapped.accepted.select("customer_id", "event_type").rows() == [
        ("A", "purchase"),
        ("D", "return_request"),
    ]
    reasons = dict(mapped.quarantined.select("who", "_reason").iter_rows())
    assert reasons == {
        "B": "ts '2026-01-06' does not parse as %Y%m%d",
        "C": "event 'teleport' has no mapping to a contract event type",
    }
    # a composite event: the rows where one column is later than another
    late = TableMap(
        name="late",
        table="clickstream",
        columns={
            "event_id": "who",
            "customer_id": "who",
            "ts": "when",
            "event_type": pl.lit("late"),
        },
        timestamps={"ts": "%Y%m%d"},
        where=pl.col("when") > pl.col("promised"),
    )
    assert apply_map(source, late).accepted["customer_id"].to_list() == ["D"]
    with pytest.raises(ValueError, match="the customers contract needs \\['signup_at'\\]"):
        TableMap(name="x", table="customers", columns={"customer_id": "who"})


@needs_datasets
def test_cdnow_maps_every_line_and_the_history_stops_where_it_is_told(tmp_path):
    log = cdnow.read(DATASETS).head(3_000)
    until = datetime(1997, 3, 1, tzinfo=UTC)
    counts = write_landing(cdnow.map_history(log, until), tmp_path)
    before = log.filter(pl.col("date") < "19970301")
    assert counts["cdnow_purchases"] == {
        "rows_in": before.height,
        "mapped": before.height,
        "quarantined": 0,
    }
    customers = ingest_table(tmp_path / "landing", CONTRACTS["customers"])
    clicks = ingest_table(
        tmp_path / "landing", CONTRACTS["clickstream"], customers.accepted["customer_id"]
    )
    assert clicks.rows_in == before.height and clicks.quarantined.is_empty()
    assert (clicks.accepted["ts"] < until).all() and customers.accepted["customer_id"][0] == "00001"
    truth = cdnow.truth(log, until, 180)
    assert truth.height == customers.accepted.height and set(truth["churns_in_horizon"]) <= {0, 1}


@needs_datasets
def test_olist_maps_deliveries_and_reviews_onto_their_touchpoints(tmp_path):
    tables = {name: frame.head(1_500) for name, frame in olist.read(DATASETS).items()}
    results = olist.map_history(tables, olist.UNTIL)
    counts = write_landing(results, tmp_path)
    for result in results:
        assert counts[result.table_map.name]["rows_in"] == result.rows_in
    deliveries = next(r for r in results if r.table_map.name == "olist_deliveries").accepted
    assert set(deliveries["event_type"]) <= {
        "delivery_late",
        "delivery_on_time",
        "order_cancelled",
        "order_unavailable",
    } and {"delivery_late", "delivery_on_time"} <= set(deliveries["event_type"])
    catalogue_path = tmp_path / "touchpoints.toml"
    catalogue_path.write_text(olist.catalogue_text())
    catalogue = load_catalogue(catalogue_path)
    landing = tmp_path / "landing"
    customers = ingest_table(landing, CONTRACTS["customers"]).accepted
    known = customers["customer_id"]
    clicks = ingest_table(landing, CONTRACTS["clickstream"], known)
    surveys = ingest_table(landing, CONTRACTS["surveys"], known)
    assert clicks.rows_in == clicks.accepted.height + clicks.quarantined.height
    assert set(surveys.accepted["survey_type"]) == {"csat"}
    assert surveys.accepted["comment"].drop_nulls().len() > 0  # the customers' own words
    support = CONTRACTS["support"].empty()
    days = fold_touchpoint_days(clicks.accepted, support, surveys.accepted, catalogue)
    supported = feature_set(customers, days, support, surveys.accepted, catalogue)
    assert {"delivery", "feedback_survey", "checkout"} <= set(supported.touched)
    names = {d.name for d in supported.registry(catalogue, 180)}
    assert {"delivery_late_deliveries_90d", "feedback_survey_csat_last"} <= names


@needs_datasets
@pytest.mark.e2e
@pytest.mark.slow
def test_a_slice_of_cdnow_runs_end_to_end_and_every_buyer_is_scored(tmp_path):
    """A purchase-only business through the whole pipeline: its non-contractual population, the
    customer-value features, the backtest with overlapping labels, and a forward check."""
    data_root = tmp_path / "data"
    log = cdnow.read(DATASETS)
    some = log.filter(pl.col("customer_id") < "04000")
    until = cdnow.UNTIL
    write_landing(cdnow.map_history(some, until), data_root)
    (data_root / "truth").mkdir()
    cdnow.truth(some, until, 180).write_parquet(data_root / "truth" / "customers.parquet")
    (data_root / "touchpoint_churn.toml").write_text("horizon_days = 180\n")
    defs = build_definitions(data_root, f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = run_all(defs, instance)
        assert result.success
        scored = result.output_for_node("scored_customers")
        model = result.output_for_node("churn_model")
        report = forward_check(data_root, result)
    buyers = some.filter(pl.col("date") < "19980101")["customer_id"].n_unique()
    assert scored.height == buyers  # lapsed buyers included: the win-back list
    assert model.backtest[-1]["label_overlap_days"] > 0  # a year is too short for a strict one
    assert report is not None and "forward" in report
    lapsed = scored.filter(pl.col("touchpoint_1") == "customer_value")
    assert (
        lapsed.height > 0 and lapsed["suggested_action"].drop_nulls().str.contains("win-back").all()
    )
