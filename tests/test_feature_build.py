"""The feature build on a small simulated world: eager, lazy and streaming agree, and nothing at or
after the cutoff can change a feature (property test)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from demo.simulator import WorldConfig, simulate
from features.catalogue import load_catalogue
from features.feature_plan import feature_set
from features.ingest.buckets import customer_bucket
from features.ingest.contract import CLICKSTREAM, SUPPORT, SURVEYS
from features.purchases import (
    EXPECTED,
    FIT_BUYERS,
    P_ALIVE,
    fit_purchase_models,
    fit_sample,
    purchase_table,
)
from features.snapshots import (
    assemble,
    build_features,
    cut,
    cutoff_tables,
    feature_query,
    feature_sources,
    parts,
    support_with_switches,
)
from features.touchpoint_days import DAY as DAY_COLUMN
from features.touchpoint_days import PURCHASES as PURCHASES_COLUMN
from features.touchpoint_days import (
    clickstream_routes,
    fold_touchpoint_days,
    friction_pairs,
    touch_events,
)
from features.windows import CUTOFF as CUTOFF_COLUMN
from features.windows import window_table

CONFIG = WorldConfig(
    customers=150, weeks=26, seed=3, dirty_rows=False, end=datetime(2026, 5, 4, tzinfo=UTC)
)
CUTOFF = CONFIG.start + timedelta(weeks=20)
EVENT_TYPES = [
    "page_view",
    "search",
    "checkout_start",
    "payment_error",
    "purchase",
    "exit_intent",
    "email_open",
    "unsubscribe",
    "teleport",
]


@pytest.fixture(scope="module")
def world():
    world = simulate(CONFIG)
    catalogue = load_catalogue()
    return world, catalogue


def _sources(world, catalogue, clicks=None, tickets=None, answers=None):
    clicks = world.clickstream if clicks is None else pl.concat([world.clickstream, clicks])
    support = world.support if tickets is None else pl.concat([world.support, tickets])
    surveys = world.surveys if answers is None else pl.concat([world.surveys, answers])
    days = fold_touchpoint_days(clicks, support, surveys, catalogue)
    customers = world.customers.drop("name", "email", "phone")
    registry = feature_set(customers, days, support, surveys, catalogue).registry(catalogue, 90)
    return feature_sources(customers, days, support, surveys, catalogue), registry


def test_eager_lazy_and_streaming_builds_agree(world):
    sources, registry = _sources(*world)
    members = sources["customers"].filter(pl.col("signup_at") < CUTOFF).select("customer_id")
    before = {
        name: frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        for name, frame in cut(
            sources, CUTOFF, cutoff_tables(sources, [CUTOFF], 90, registry)
        ).items()
    }
    eager = assemble(members, parts(before, CUTOFF, registry), registry)
    lazy_sources = {k: v.lazy() for k, v in sources.items()}
    tables = cutoff_tables(lazy_sources, [CUTOFF], 90, registry)
    lazy = feature_query(lazy_sources, members.lazy(), CUTOFF, registry, tables).collect()
    streaming = build_features(sources, members, CUTOFF, registry, 90)
    assert eager.height == members.height and eager.width == len(registry) + 1
    # the same values up to float evaluation order (1e-15 days seen on recency)
    assert_frame_equal(eager, lazy, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)
    assert_frame_equal(lazy, streaming, check_exact=False, rel_tol=1e-12, abs_tol=1e-9)
    assert (
        eager["checkout_payment_errors_90d"].sum() > 0
        and eager["customer_service_tickets_90d"].sum() > 0
    )


def test_a_business_without_surveys_gets_no_features_for_the_survey_touchpoint(world):
    simulated, catalogue = world
    _, registry = _sources(simulated, catalogue)
    _, without = _sources(replace(simulated, surveys=simulated.surveys.clear()), catalogue)
    # answers are the only touches at the feedback touchpoint: with none, its recency would be empty
    # for everyone
    feedback = next(t.name for t in catalogue.touchpoints if t.surveys_without_touchpoint)
    gone = {d.name for d in registry if d.family == "survey_voice" or d.touchpoint == feedback}
    assert any(d.touchpoint == feedback and d.family == "recency" for d in registry)
    assert {d.name for d in registry} - {d.name for d in without} == gone and {
        d.name for d in without
    } < {d.name for d in registry}


def test_with_the_plans_purchase_models_a_buckets_features_are_its_rows_of_the_whole_table(world):
    """BG/NBD is fitted once per cutoff on every customer (`fit_purchase_models`, by the feature
    plan), so a bucket's purchase figures are its customers' rows of one whole table's."""
    sources, registry = _sources(*world)
    models = fit_purchase_models(sources["days"], [CUTOFF])
    members = sources["customers"].filter(pl.col("signup_at") < CUTOFF).select("customer_id")
    whole = build_features(sources, members, CUTOFF, registry, 90, models)
    first = customer_bucket(pl.col("customer_id"), 2) == 0
    bucket = {name: frame.filter(first) for name, frame in sources.items()}
    part = build_features(bucket, members.filter(first), CUTOFF, registry, 90, models)
    assert models[CUTOFF] is not None and 0 < part.height < whole.height
    mine = whole.join(part.select("customer_id"), on="customer_id", how="semi")
    assert_frame_equal(part.sort("customer_id"), mine.sort("customer_id"))
    # fitted on the bucket's customers alone, the figures move: what one fit per cutoff avoids
    bgnbd = [d.name for d in registry if "bgnbd" in d.name]
    alone = build_features(bucket, members.filter(first), CUTOFF, registry, 90)
    assert (
        not alone.sort("customer_id").select(bgnbd).equals(part.sort("customer_id").select(bgnbd))
    )


def test_a_bucket_where_nobody_bought_before_the_cutoff_still_has_the_bgnbd_columns(world):
    """A bucket of the training sample can hold no buyer at all; its purchase table must still
    have every column the features read (a 1M-customer bench stopped on one)."""
    sources, _ = _sources(*world)
    no_buyers = sources["days"].with_columns(pl.lit(0).cast(pl.Int64).alias(PURCHASES_COLUMN))
    table = purchase_table(no_buyers, [CUTOFF], 90, {CUTOFF: (1.0, 1.0, 1.0, 1.0)})
    assert table.is_empty() and {P_ALIVE, EXPECTED} <= set(table.columns)


UTC_TS = st.integers(min_value=0, max_value=200 * 86400).map(
    lambda s: CUTOFF + timedelta(seconds=s)
)


@st.composite
def later_rows(draw, customers: list[str]):
    """Arbitrary clicks, tickets and survey answers at or after the cutoff."""
    customer = st.sampled_from(customers)
    clicks = draw(
        st.lists(
            st.tuples(
                customer,
                UTC_TS,
                st.sampled_from(EVENT_TYPES),
                st.sampled_from([None, "/pricing", "/checkout", "/blog/x"]),
                st.sampled_from([None, "S1", "S_new"]),
                st.sampled_from([None, 0.0, 5.0]),
            ),
            max_size=30,
        )
    )
    tickets = draw(
        st.lists(
            st.tuples(
                customer,
                UTC_TS,
                st.sampled_from(["phone", "chat", "chatbot"]),
                st.sampled_from(["billing", "other"]),
            ),
            max_size=5,
        )
    )
    answers = draw(
        st.lists(
            st.tuples(
                customer,
                UTC_TS,
                st.sampled_from(["nps", "ces"]),
                st.integers(1, 7),
                st.sampled_from([None, "checkout", "customer_service"]),
            ),
            max_size=5,
        )
    )
    return (
        pl.DataFrame(
            [
                {
                    "event_id": f"X{i}",
                    "customer_id": c,
                    "ts": ts,
                    "event_type": et,
                    "session_id": sid,
                    "page": page,
                    "channel": "web",
                    "value": v,
                }
                for i, (c, ts, et, page, sid, v) in enumerate(clicks)
            ],
            schema=CLICKSTREAM.schema,
        ),
        pl.DataFrame(
            [
                {
                    "ticket_id": f"XT{i}",
                    "customer_id": c,
                    "opened_at": ts,
                    "channel": ch,
                    "category": cat,
                    "first_response_at": ts,
                    "resolved_at": None,
                    "reopened": 1,
                    "escalated": True,
                }
                for i, (c, ts, ch, cat) in enumerate(tickets)
            ],
            schema=SUPPORT.schema,
        ),
        pl.DataFrame(
            [
                {
                    "response_id": f"XR{i}",
                    "customer_id": c,
                    "ts": ts,
                    "survey_type": st_,
                    "score": float(score),
                    "touchpoint": tp,
                    "comment": None,
                }
                for i, (c, ts, st_, score, tp) in enumerate(answers)
            ],
            schema=SURVEYS.schema,
        ),
    )


@pytest.fixture(scope="module")
def baseline(world):
    sources, registry = _sources(*world)
    members = sources["customers"].filter(pl.col("signup_at") < CUTOFF).select("customer_id")
    return members, registry, build_features(sources, members, CUTOFF, registry, 90)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_rows_at_or_after_the_cutoff_never_change_a_feature(world, baseline, data):
    members, registry, expected = baseline
    clicks, tickets, answers = data.draw(later_rows(members["customer_id"].head(20).to_list()))
    sources, later_registry = _sources(*world, clicks=clicks, tickets=tickets, answers=answers)
    registry_names = {d.name for d in registry}
    assert {
        d.name for d in later_registry
    } >= registry_names  # later rows may add features, never remove
    assert build_features(sources, members, CUTOFF, registry, 90).equals(expected)


def test_day_rows_give_the_windows_raw_events_give(world):
    """Folding touches into days loses nothing a window needs: counts from day rows equal counts
    over the raw events in [cutoff - window, cutoff), for every touchpoint and friction."""
    world_, catalogue = world
    sources, registry = _sources(world_, catalogue)
    members = sources["customers"].filter(pl.col("signup_at") < CUTOFF).select("customer_id")
    features = build_features(sources, members, CUTOFF, registry, 90)
    touches = touch_events(
        world_.clickstream, world_.support, world_.surveys, catalogue, friction_pairs(catalogue)
    ).collect()
    recent = touches.filter((pl.col("ts") >= CUTOFF - timedelta(days=30)) & (pl.col("ts") < CUTOFF))
    expected = recent.group_by("customer_id").agg(
        website=(pl.col("touchpoint") == "website").sum(),
        pricing_exits=(pl.col("friction") == "exit_intents__pricing").sum(),
        payment_errors=(pl.col("friction") == "payment_errors__checkout").sum(),
        failed_searches=(pl.col("friction") == "failed_searches__search").sum(),
    )
    got = features.join(expected, on="customer_id", how="left").fill_null(0)
    assert (
        got["website"].sum() > 0
        and got["payment_errors"].sum() > 0
        and got["failed_searches"].sum() > 0
    )
    assert (got["website_touches_30d"] == got["website"]).all()
    assert (got["pricing_exit_intents_30d"] == got["pricing_exits"]).all()
    assert (got["checkout_payment_errors_30d"] == got["payment_errors"]).all()
    assert (got["search_failed_searches_30d"] == got["failed_searches"]).all()


def test_clicks_are_routed_as_the_catalogue_rules_route_each_event_type_and_page(world):
    """The route lookup by code gives every click the touchpoint and friction the rules give its
    (event type, page), pages no rule claims (product ids, query strings) included."""
    world_, catalogue = world
    odd = world_.clickstream.head(400).with_columns(
        page=pl.Series(
            [None, "/pricing", "/pricing/enterprise?x=1", "/product/42", "/checkout/pay", ""] * 66
            + [None] * 4
        )
    )
    clicks = pl.concat(
        [world_.clickstream, odd.with_columns(event_id=pl.format("odd{}", pl.int_range(pl.len())))]
    )
    friction = friction_pairs(catalogue)
    routed = touch_events(clicks, SUPPORT.empty(), SURVEYS.empty(), catalogue, friction).collect()
    expected = clicks.join(
        clickstream_routes(clicks, catalogue, friction),
        on=["event_type", "page"],
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    assert routed["touchpoint"].cast(pl.String).to_list() == expected["touchpoint"].to_list()
    extra_ok = pl.col("value").fill_null(-1) == 0  # failed searches are searches that found nothing
    expected_friction = expected.select(
        pl.when(pl.col("friction").str.starts_with("failed_searches") & ~extra_ok)
        .then(None)
        .otherwise(pl.col("friction"))
    )
    assert routed["friction"].cast(pl.String).to_list() == expected_friction.to_series().to_list()
    assert routed["touchpoint"].n_unique() > 5 and routed["friction"].drop_nulls().n_unique() > 3


def test_windows_summed_for_many_cutoffs_at_once_equal_each_cutoff_alone(world):
    """The interval sums are exact however the cutoffs' windows interleave (cutoffs 1 to 40 days
    apart)."""
    days = _sources(*world)[0]["days"]
    cutoffs = [CUTOFF - timedelta(days=d) for d in (0, 1, 8, 31, 45, 85)]
    together = window_table(days, cutoffs)
    assert together.select(CUTOFF_COLUMN).n_unique() == len(cutoffs)
    for cutoff in cutoffs:
        alone = window_table(days, [cutoff]).sort("customer_id")
        assert alone.height > 0 and alone["touches__website__90d"].sum() > 0
        assert_frame_equal(
            together.filter(pl.col(CUTOFF_COLUMN) == cutoff).sort("customer_id"),
            alone,
            check_column_order=False,
        )


def test_a_checkout_without_a_purchase_that_day_is_abandoned_and_a_cutoff_must_be_midnight(world):
    _, catalogue = world
    day = datetime(2026, 3, 1, tzinfo=UTC)
    at = [day + timedelta(hours=h) for h in (9, 9.5, 12, 12.2, 30)]
    clicks = pl.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(5)],
            "customer_id": ["A"] * 5,
            "ts": at,
            "event_type": [
                "checkout_start",
                "purchase",
                "checkout_start",
                "exit_intent",
                "purchase",
            ],
            "session_id": ["s1", "s1", "s2", "s2", "s2"],
            "page": [None, None, None, "/pricing", None],
            "channel": ["web"] * 5,
            "value": [None] * 5,
        },
        schema=CLICKSTREAM.schema,
    )
    days = fold_touchpoint_days(clicks, SUPPORT.empty(), SURVEYS.empty(), catalogue).sort("day")
    # day 1: two checkouts, one purchase, last event an exit intent on the pricing page; day 2: a
    # purchase
    assert days.select("abandoned_checkouts", "purchases", "exit_intents__pricing").rows() == [
        (1, 1, 1),
        (0, 1, 0),
    ]
    customers = pl.DataFrame(
        {
            "customer_id": ["A"],
            "signup_at": [day - timedelta(days=9)],
            "churned_at": [None],
            "plan": ["pro"],
            "country": ["FR"],
            "monthly_value": [9.0],
        },
        schema_overrides={"churned_at": pl.Datetime("us", "UTC")},
    )
    sources = feature_sources(customers, days, SUPPORT.empty(), SURVEYS.empty(), catalogue)
    registry = feature_set(customers, days, SUPPORT.empty(), SURVEYS.empty(), catalogue).registry(
        catalogue, 90
    )
    row = build_features(
        sources, sources["customers"].select("customer_id"), day + timedelta(days=1), registry, 90
    ).row(0, named=True)
    assert (
        row["checkout_abandoned_checkouts_30d"] == 1.0
        and row["journey_days_ending_in_exit_30d"] == 1.0
    )
    assert (
        row["pricing_was_last_touch"] == 1.0
        and row["checkout_was_last_touch"] == 0.0
        and row["pricing_days_since_last"] == 1.0
    )
    with pytest.raises(ValueError, match="not midnight UTC"):
        build_features(
            sources,
            sources["customers"].select("customer_id"),
            day + timedelta(hours=13),
            registry,
            90,
        )


def test_switching_channel_for_the_same_issue_within_a_week_is_flagged():
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    tickets = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A"],
            "opened_at": [
                t0,
                t0 + timedelta(days=2),
                t0 + timedelta(days=20),
                t0 + timedelta(days=21),
            ],
            "channel": ["chat", "phone", "phone", "phone"],
            "category": ["billing", "billing", "billing", "delivery"],
        }
    )
    flags = (
        support_with_switches(tickets.lazy())
        .collect()
        .sort("opened_at")["channel_switch"]
        .to_list()
    )
    assert flags == [False, True, False, False]


def test_the_checked_in_feature_dictionary_is_current():
    from demo.dictionary import DOCS_PATH, demo_registry
    from features.dictionary import data_dictionary

    assert DOCS_PATH.read_text() == data_dictionary(demo_registry()), (
        "run `python -m demo.dictionary` and commit docs/feature_dictionary.md"
    )


def test_durations_are_never_negative_even_from_rows_ingest_would_quarantine(world):
    simulated, catalogue = world
    # answered and resolved two days before they were opened: ingest quarantines such tickets,
    # and the features would not turn them into "faster than instant" if one slipped through
    backwards = simulated.support.filter(pl.col("opened_at") < CUTOFF).with_columns(
        (pl.col("opened_at") - timedelta(hours=48)).alias("first_response_at"),
        (pl.col("opened_at") - timedelta(hours=48)).alias("resolved_at"),
    )
    sources, registry = _sources(replace(simulated, support=backwards), catalogue)
    members = sources["customers"].filter(pl.col("signup_at") < CUTOFF).select("customer_id")
    features = build_features(sources, members, CUTOFF, registry, 90)
    durations = [c for c in features.columns if "_hours" in c or "_days_since" in c]
    assert any("response_hours" in c for c in durations)
    lowest = features.select(pl.min_horizontal(pl.col(durations).min())).item()
    assert lowest is not None and lowest >= 0


def test_the_bgnbd_fit_reads_a_hash_sample_of_the_buyers_known_by_its_cutoff():
    """Past FIT_BUYERS buyers before a cutoff, its fit reads about that many of them, every
    purchase day of each before the cutoff; fewer (a young shop's first months), every one."""
    early, late = datetime(2025, 5, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    buyers = 3 * FIT_BUYERS
    ids = [f"C{i:07d}" for i in range(buyers)]
    days = pl.DataFrame(
        {
            "customer_id": ids * 2,
            # 600 customers bought before the early cutoff; everyone bought twice before the late
            DAY_COLUMN: [early - timedelta(days=1 if i < 600 else -30) for i in range(buyers)]
            + [late - timedelta(days=10)] * buyers,
            PURCHASES_COLUMN: [1] * (2 * buyers),
        }
    )
    assert fit_sample(days, early)["customer_id"].n_unique() == 600
    sample = fit_sample(days, late)
    kept = sample["customer_id"].n_unique()
    assert abs(kept - FIT_BUYERS) < 0.03 * FIT_BUYERS
    assert sample.group_by("customer_id").len()["len"].unique().to_list() == [2]
