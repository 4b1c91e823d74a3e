"""What the journeys notebook shows, on a world small enough to check by hand: two customers, one
who left after an exit at the pricing page and a slow ticket, one who stayed."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from features import journeys
from features.catalogue import load_catalogue
from features.ingest.contract import CLICKSTREAM, SUPPORT, SURVEYS
from features.touchpoint_days import fold_touchpoint_days

CUTOFF = datetime(2026, 6, 1, tzinfo=UTC)


def _ts(days_before: int, hour: int = 12) -> datetime:
    return datetime.fromtimestamp(CUTOFF.timestamp() - days_before * 86400 + hour * 3600, UTC)


def _rows(contract, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=contract.schema, orient="row") if rows else contract.empty()


@pytest.fixture
def world():
    catalogue = load_catalogue()
    clicks = _rows(
        CLICKSTREAM,
        [
            # the leaver: pricing twice, the last visit ending in an exit intent
            {
                "event_id": "e1",
                "customer_id": "A",
                "ts": _ts(5),
                "event_type": "page_view",
                "page": "/pricing",
            },
            {
                "event_id": "e2",
                "customer_id": "A",
                "ts": _ts(2),
                "event_type": "exit_intent",
                "page": "/pricing",
            },
            # after the cutoff: never seen
            {
                "event_id": "e3",
                "customer_id": "A",
                "ts": _ts(-3),
                "event_type": "page_view",
                "page": "/pricing",
            },
            # the stayer: a newsletter, then a purchase
            {"event_id": "e4", "customer_id": "B", "ts": _ts(10), "event_type": "email_open"},
            {
                "event_id": "e5",
                "customer_id": "B",
                "ts": _ts(1),
                "event_type": "purchase",
                "value": 30.0,
            },
        ],
    )
    support = _rows(
        SUPPORT,
        [
            # opened 4 days before the cutoff, answered after 50 hours
            {
                "ticket_id": "t1",
                "customer_id": "A",
                "opened_at": _ts(4),
                "channel": "email",
                "first_response_at": _ts(2, hour=14),
            },
        ],
    )
    surveys = _rows(
        SURVEYS,
        [
            {
                "response_id": "r1",
                "customer_id": "A",
                "ts": _ts(3),
                "survey_type": "ces",
                "score": 2.0,
                "touchpoint": "customer_service",
            },
            {
                "response_id": "r2",
                "customer_id": "B",
                "ts": _ts(3),
                "survey_type": "ces",
                "score": 6.0,
                "touchpoint": "customer_service",
            },
            {
                "response_id": "r3",
                "customer_id": "B",
                "ts": _ts(-1),
                "survey_type": "ces",
                "score": 1.0,
                "touchpoint": "customer_service",
            },
        ],
    )
    days = fold_touchpoint_days(clicks, support, surveys, catalogue)
    snapshots = pl.DataFrame(
        {
            "customer_id": ["A", "B", "A", "B"],
            "cutoff": [datetime(2026, 5, 1, tzinfo=UTC)] * 2 + [CUTOFF] * 2,
            "churned": [0, 0, 1, 0],
        }
    )
    return catalogue, days, journeys.outcomes(snapshots), support, surveys


def test_outcomes_are_the_newest_cutoffs_labels(world):
    _, _, outcome, _, _ = world
    assert outcome.sort("customer_id").rows() == [
        ("A", CUTOFF, "churned"),
        ("B", CUTOFF, "retained"),
    ]


def test_volumes_count_every_touch_and_who_touched(world):
    catalogue, days, _, _, _ = world
    volumes = {
        r["touchpoint"]: r for r in journeys.touch_volumes(days, catalogue).iter_rows(named=True)
    }
    assert volumes["pricing"]["touches"] == 3 and volumes["pricing"]["customers"] == 1
    assert volumes["pricing"]["phase"] == "before purchase"
    assert volumes["customer_service"]["customers"] == 2


def test_timelines_and_last_touches_see_only_before_the_cutoff(world):
    catalogue, days, outcome, _, _ = world
    timeline = journeys.journey_timelines(days, outcome, catalogue)
    pricing = timeline.filter(pl.col("touchpoint") == "pricing")
    assert sorted(pricing["days_before"]) == [2, 5]  # the visit after the cutoff is not there
    assert pricing["touches_per_customer"].to_list() == [1.0, 1.0]
    last = {
        (r["outcome"], r["touchpoint"]): r
        for r in journeys.last_touchpoints(days, outcome, catalogue).iter_rows(named=True)
    }
    assert last[("churned", "pricing")]["exit_intents"] == 1
    assert last[("churned", "pricing")]["share"] == 1.0
    assert last[("retained", "checkout")]["exit_intents"] == 0


def test_survey_scores_and_response_times_split_by_outcome(world):
    catalogue, _, outcome, support, surveys = world
    scores = journeys.survey_scores(surveys, catalogue, outcome)
    assert scores.select("outcome", "answers", "mean_score").sort("outcome").rows() == [
        ("churned", 1, 2.0),
        ("retained", 1, 6.0),  # the answer after the cutoff is left out
    ]
    bands = dict(
        journeys.response_times_vs_churn(support, outcome).select("band", "churn_rate").iter_rows()
    )
    assert bands == {"1-3 days": 1.0, journeys.NO_TICKET: 0.0}
