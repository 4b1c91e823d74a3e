"""Features see only rows strictly before the cutoff; labels only the horizon after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features.catalogue import load_catalogue
from features.feature_plan import NotEnoughHistory, choose_cutoffs, feature_set
from features.ingest.contract import CLICKSTREAM, CUSTOMERS, SUPPORT, SURVEYS
from features.labels import churn_labels, population
from features.snapshots import build_features, feature_sources
from features.touchpoint_days import fold_touchpoint_days

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def _tables(events: list[tuple[str, datetime, str, str | None]], tickets=(), customers=None):
    customers = (
        customers
        if customers is not None
        else pl.DataFrame(
            {"customer_id": ["A", "B"], "signup_at": [datetime(2025, 1, 1, tzinfo=UTC)] * 2}
        ).with_columns(
            churned_at=pl.lit(None, CUSTOMERS.schema["churned_at"]),
            plan=pl.lit("pro"),
            country=pl.lit("US"),
            monthly_value=pl.lit(50.0),
        )
    )
    clicks = pl.DataFrame(
        [
            {"event_id": f"E{i}", "customer_id": c, "ts": ts, "event_type": et, "page": page}
            for i, (c, ts, et, page) in enumerate(events)
        ],
        schema={
            k: CLICKSTREAM.schema[k]
            for k in ("event_id", "customer_id", "ts", "event_type", "page")
        },
    ).with_columns(
        [pl.lit(None, CLICKSTREAM.schema[c]).alias(c) for c in ("session_id", "channel", "value")]
    )
    # tickets as rows of every column but the free text, which no feature here reads
    written = {k: v for k, v in SUPPORT.schema.items() if k != "text"}
    support = pl.DataFrame(list(tickets), schema=written, orient="row").with_columns(
        text=pl.lit(None, dtype=pl.String)
    )
    surveys = SURVEYS.empty()
    catalogue = load_catalogue()
    days = fold_touchpoint_days(clicks, support, surveys, catalogue)
    registry = feature_set(customers, days, support, surveys, catalogue).registry(catalogue, 90)
    return feature_sources(customers, days, support, surveys, catalogue), registry


def _features(sources, registry, cutoff=CUTOFF):
    members = sources["customers"].select("customer_id")
    return build_features(sources, members, cutoff, registry, 90).sort("customer_id")


def test_cutoff_is_exclusive_at_the_exact_timestamp():
    sources, registry = _tables(
        [("A", CUTOFF - US, "payment_error", None), ("B", CUTOFF, "payment_error", None)]
    )
    features = _features(sources, registry)
    assert features["checkout_payment_errors_30d"].to_list() == [1.0, 0.0]
    assert features["checkout_days_since_last"][0] == 1.0  # its day is the day before the cutoff
    assert features["checkout_days_since_last"][1] is None


def test_events_at_or_after_the_cutoff_change_nothing():
    before = [
        ("A", CUTOFF - timedelta(days=d), et, page)
        for d, et, page in [
            (1, "payment_error", None),
            (5, "page_view", "/pricing"),
            (40, "search", None),
        ]
    ]
    after = [
        ("A", CUTOFF + timedelta(days=d), et, page)
        for d, et, page in [
            (0, "payment_error", None),
            (2, "exit_intent", "/pricing"),
            (9, "purchase", None),
        ]
    ]
    late_ticket = ("T1", "A", CUTOFF, "phone", None, None, None, 0, True)
    sources, registry = _tables(before)
    sources_more, _ = _tables(before + after, tickets=[late_ticket])
    assert _features(sources, registry).equals(_features(sources_more, registry))


def test_a_ticket_answered_after_the_cutoff_is_unanswered_at_the_cutoff():
    opened = CUTOFF - timedelta(hours=10)
    ticket = ("T1", "A", opened, "email", "billing", CUTOFF + timedelta(hours=1), None, 0, False)
    sources, registry = _tables([], tickets=[ticket])
    row = _features(sources, registry).row(0, named=True)
    assert row["customer_service_unanswered_tickets_30d"] == 1.0
    assert row["customer_service_first_response_hours_max_30d"] == pytest.approx(10.0)
    assert row["customer_service_unresolved_tickets"] == 1.0


def test_labels_use_only_the_horizon_window_and_population_excludes_the_already_gone():
    horizon = 90
    end = CUTOFF + timedelta(days=horizon)
    churned = {
        "gone_before": CUTOFF - US,
        "at_cutoff": CUTOFF,
        "just_after": CUTOFF + US,
        "at_end": end,
        "after_end": end + US,
        "active": None,
    }
    customers = pl.DataFrame(
        {
            "customer_id": list(churned),
            "signup_at": [datetime(2025, 1, 1, tzinfo=UTC)] * len(churned),
            "churned_at": list(churned.values()),
        },
        schema_overrides={
            "churned_at": pl.Datetime("us", "UTC"),
            "signup_at": pl.Datetime("us", "UTC"),
        },
    )
    days = pl.DataFrame(
        schema={"customer_id": pl.String, "day": pl.Datetime("us", "UTC"), "purchases": pl.UInt32}
    )
    members = population(customers, days, CUTOFF, horizon)
    assert sorted(members["customer_id"].to_list()) == [
        "active",
        "after_end",
        "at_end",
        "just_after",
    ]
    labels = dict(churn_labels(customers, days, members, CUTOFF, horizon).iter_rows())
    assert labels == {"just_after": 1, "at_end": 1, "after_end": 0, "active": 0}


def test_without_cancellations_everyone_who_bought_stays_in_and_churn_is_no_purchase_after():
    """A purchase-only business: a customer who bought long ago is lapsed, not gone (the win-back
    list), so every buyer is in the population at every cutoff; a customer who signed up long ago
    and never bought is not; one who signed up within the horizon is, until the horizon passes."""
    signed_long_ago, signed_lately = datetime(2025, 1, 1, tzinfo=UTC), CUTOFF - timedelta(days=5)
    customers = pl.DataFrame(
        {
            "customer_id": ["buys", "stops", "lapsed", "never", "new"],
            "signup_at": [signed_long_ago] * 4 + [signed_lately],
            "churned_at": [None] * 5,
        },
        schema_overrides={"churned_at": pl.Datetime("us", "UTC")},
    )
    # a purchase on the cutoff's own day counts for the label (the horizon starts at the cutoff),
    # not for the population
    day = [
        CUTOFF - timedelta(days=10),
        CUTOFF - timedelta(days=20),
        CUTOFF,
        CUTOFF - timedelta(days=400),
    ]
    days = pl.DataFrame(
        {"customer_id": ["buys", "stops", "buys", "lapsed"], "day": day, "purchases": [1, 1, 1, 1]}
    )
    members = population(customers, days, CUTOFF, 90)
    assert dict(churn_labels(customers, days, members, CUTOFF, 90).iter_rows()) == {
        "buys": 0,
        "stops": 1,
        "lapsed": 1,
        "new": 1,
    }
    first_purchase_day_only = days.filter(pl.col("day") < CUTOFF - timedelta(days=15))
    assert sorted(population(customers, first_purchase_day_only, CUTOFF, 90)["customer_id"]) == [
        "lapsed",
        "new",
        "stops",
    ]


def test_labelled_cutoffs_are_month_starts_whose_horizon_is_complete_by_as_of():
    first, as_of = datetime(2025, 11, 3, tzinfo=UTC), datetime(2026, 11, 1, 23, tzinfo=UTC)
    cutoffs = choose_cutoffs(first, as_of, 90, 12)
    assert cutoffs == tuple(datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 9))
    assert all(c + timedelta(days=90) <= as_of for c in cutoffs)
    assert cutoffs[0] - first >= timedelta(days=30)
    assert choose_cutoffs(first, as_of, 90, 4) == cutoffs[-4:]  # the newest
    # a year of history and a half-year horizon is enough: the model trains on every cutoff
    cohort = choose_cutoffs(
        datetime(1997, 1, 1, tzinfo=UTC), datetime(1997, 12, 31, tzinfo=UTC), 180, 12
    )
    assert [c.month for c in cohort] == [2, 3, 4, 5, 6, 7]
    with pytest.raises(NotEnoughHistory, match="span .* give 2 monthly cutoffs .* needs 3"):
        choose_cutoffs(datetime(2026, 6, 1, tzinfo=UTC), as_of, 90, 4)
