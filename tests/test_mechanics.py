"""Worlds whose rules are drawn from their seed: what the draw covers, what such a world writes, and
the hazard's rules one by one."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import polars as pl

from demo import mechanics
from demo.landing import write_world
from demo.mechanics import FRICTIONS, Harm, Mechanics
from demo.simulator import State, WorldConfig, _hazard, pilot_churn_rate, simulate
from demo.worlds import CHURN_RANGE, drawn_world

END = datetime(2026, 3, 23, tzinfo=UTC)
# purchases only, no support table (seed 3's draw)
PURCHASES_ONLY = 3


def test_the_draw_is_the_seed_s_and_covers_what_a_business_could_have():
    draws = [mechanics.draw(seed) for seed in range(200)]
    assert mechanics.draw(7) == mechanics.draw(7) and mechanics.draw(7) != mechanics.draw(8)
    hurts = Counter(h.hurt for m in draws for h in m.harms)
    assert set(hurts) == {"count", "wait", "score", "missing"}
    assert {tp for m in draws for tp in m.drivers} == {tp for tp, _ in FRICTIONS}
    assert {m.contractual for m in draws} == {True, False}
    assert any("support" not in m.tables for m in draws)
    assert any("surveys" not in m.tables for m in draws)
    assert {m.window_weeks for m in draws} == {2, 4, 6, 8}
    assert any(m.tenure for m in draws) and any(m.season for m in draws)
    for m in draws:
        assert 2 <= len(m.drivers) <= 4
        assert not set(m.decoy_troubles) & set(m.drivers)
        # a driver only where the business exports what it is seen in
        for h in m.harms:
            if h.touchpoint == "customer_service" or h.hurt == "wait":
                assert "support" in m.tables
            if h.hurt == "score":
                assert "surveys" in m.tables
        if not m.contractual:
            assert "subscription" not in m.drivers  # no renewals without a contract


def test_the_demo_rules_are_the_demo_world_s():
    rules = mechanics.demo()
    assert rules.drivers == ("checkout", "customer_service", "pricing")
    assert rules.extra_columns == () and rules.contractual and rules.tables == mechanics.TABLES
    assert WorldConfig().mechanics == rules


def test_a_drawn_world_is_sized_to_the_churn_it_drew():
    for seed in (101, 105, 110):
        world = drawn_world(seed, 1_000, END)
        rate = pilot_churn_rate(world)
        assert CHURN_RANGE[0] * 0.8 <= rate <= CHURN_RANGE[1] * 1.2, (seed, rate)
        assert world.mechanics.drivers == mechanics.draw(seed).drivers


def test_a_purchase_only_world_writes_what_such_a_business_has(tmp_path):
    config = drawn_world(PURCHASES_ONLY, 400, END, weeks=30, truth_replicates=4)
    assert not config.mechanics.contractual and "support" not in config.mechanics.tables
    world = simulate(config)
    write_world(world, tmp_path, config)
    landing = tmp_path / "landing"
    assert not any((landing / "support").iterdir())  # not exported, so not written
    assert any((landing / "surveys").iterdir())
    assert world.customers["churned_at"].null_count() == world.customers.height
    assert "subscription_renewal" not in world.clickstream["event_type"].unique().to_list()
    # the truth covers everyone, and those who left buy nothing for sure
    assert world.truth.height == config.customers
    gone = world.truth.filter(~pl.col("active_at_end"))
    assert gone.height > 0
    assert (gone["true_churn_probability"] == 1.0).all() and gone["churns_in_horizon"].all()
    assert world.truth_at_cutoffs.is_empty()  # the oracle at past cutoffs follows cancellations
    recorded = json.loads((tmp_path / "truth" / "world.json").read_text())
    assert recorded["planted_drivers"] == list(config.mechanics.drivers)
    assert recorded["mechanics"]["contractual"] is False
    assert not set(recorded["decoys"]) & set(recorded["planted_drivers"])


def test_a_counted_friction_is_exactly_what_the_clickstream_shows():
    """Where failed searches drive churn, the searches that found nothing come from the counts the
    hazard read alone, not also from the background draw."""
    rules = replace(
        mechanics.demo(),
        harms=(Harm("search", "count", 1.0, 3),),
        troubles=("search",),
    )
    config = WorldConfig(
        customers=300, weeks=20, seed=5, truth_replicates=0, end=END, mechanics=rules
    )
    world = simulate(config)
    searches = world.clickstream.filter(pl.col("event_type") == "search")
    failed = searches.filter(pl.col("value") == 0.0)
    assert 0 < failed.height < searches.height
    # each failed search is in a session of its own customer, as the hazard's count was
    sessions = world.clickstream.filter(pl.col("event_type") != "search").select(
        "session_id", "customer_id"
    )
    placed = failed.join(sessions.unique(), on=["session_id", "customer_id"], how="semi")
    assert placed.height == failed.height


def _state(window: list[dict[str, np.ndarray]], joined: np.ndarray, week: int = 10) -> State:
    return State(np.ones(joined.size, dtype=bool), {}, window, joined, week)


def test_the_hazard_counts_a_friction_less_as_it_ages():
    rules = Mechanics(harms=(Harm("search", "count", 1.0, 5),), troubles=(), decay=0.5)
    old = [{"failed_searches": np.array([1, 0])}, {"failed_searches": np.array([0, 1])}]
    hazard = _hazard(rules, _state(old, np.zeros(2)))
    logit = np.log(hazard / (1 - hazard))
    # the first customer's friction is a week older: it counts half
    np.testing.assert_allclose(logit, [-7.5 + 0.5, -7.5 + 1.0])


def test_a_missing_touch_counts_only_for_a_whole_window_of_activity():
    rules = Mechanics(harms=(Harm("newsletter", "missing", 2.0, 1),), troubles=())
    window = [
        {"newsletter_opens": np.array([0, 0, 1]), "active": np.array([1, 0, 1])},
        {"newsletter_opens": np.array([0, 0, 0]), "active": np.array([1, 1, 1])},
    ]
    hazard = _hazard(rules, _state(window, np.zeros(3)))
    logit = np.log(hazard / (1 - hazard))
    # silent all window: +2; silent but joined within it: not yet missed; opened once: nothing
    np.testing.assert_allclose(logit, [-5.5, -7.5, -7.5])


def test_new_customers_leave_more_and_the_season_moves_everyone():
    rules = Mechanics(harms=(), troubles=(), tenure=1.0, tenure_halving_weeks=4.0, season=0.5)
    hazard = _hazard(rules, _state([], np.array([10.0, 6.0, -100.0]), week=10))
    logit = np.log(hazard / (1 - hazard))
    season = 0.5 * np.sin(2 * np.pi * 10 / 52)
    np.testing.assert_allclose(logit, -7.5 + season + np.array([1.0, 0.5, 0.5**27.5]))


def test_the_oracle_carries_each_week_s_chance_and_agrees_with_drawing_it():
    """The oracle's probability along a path of frictions is what drawing the leaving and the
    purchases over many paths averages to, for a contract and a purchases-only business alike,
    with less noise per customer than counting the draws."""
    from demo.simulator import (
        _advance,
        _churn_probability,
        _latent,
        _new_state,
        _simulate_forward,
    )

    for seed in (5, PURCHASES_ONLY):
        config = drawn_world(seed, 400, END, weeks=30, truth_replicates=0)
        rules, n, reps = config.mechanics, config.customers, 300
        rng = np.random.default_rng(1)
        latent = _latent(rng, n, config)
        state = _new_state(rng, rules, latent, np.full(n, -1.0))
        state.alive[:] = rng.random(n) < 0.9  # a tenth already gone
        for _ in range(12):
            _advance(rng, rules, latent, state)
        drawn = _simulate_forward(rng, rules, latent.tile(reps), state.tile(reps), 90)
        carried = _churn_probability(rng, rules, latent.tile(reps), state.tile(reps), 90)
        drawn, carried = drawn.reshape(reps, n), carried.reshape(reps, n)
        # the same mean churn, to a few standard errors of 120,000 draws
        assert abs(drawn.mean() - carried.mean()) < 0.006, (seed, drawn.mean(), carried.mean())
        assert drawn.mean() > 0.03
        # and customer by customer, with the spread of a chance rather than a coin
        per_customer = np.abs(drawn.mean(axis=0) - carried.mean(axis=0))
        assert np.median(per_customer) < 0.03
        assert np.mean(carried.var(axis=0)) < 0.7 * np.mean(drawn.var(axis=0))


def test_the_observable_oracle_reads_each_episode_from_the_frictions_it_caused():
    """The filter's chance of an episode is calibrated (its mean is the share really in one) and
    ranks those in one above those who are not, for every kind a world can draw: counted per
    session (cart, website), per week (chatbot, subscription), a missing touch (newsletter) and
    the demo's own (checkout, pricing, service)."""
    from sklearn.metrics import roc_auc_score

    from demo.observable import episode_posteriors
    from demo.simulator import _advance, _latent, _new_state

    kinds = set()
    for seed in (105, 106, 104, 102):
        config = drawn_world(seed, 3000, END, truth_replicates=0)
        rules = config.mechanics
        rng = np.random.default_rng(seed)
        latent = _latent(rng, 3000, config)
        state = _new_state(rng, rules, latent, np.full(3000, -1.0))
        state.alive[:] = True
        weeks = [(_advance(rng, rules, latent, state), state.alive.copy()) for _ in range(40)]
        for touchpoint, chance in episode_posteriors(rules, latent, weeks).items():
            truly = state.trouble[touchpoint]
            kinds.add(touchpoint)
            assert abs(chance.mean() - truly.mean()) < 0.02, (seed, touchpoint)
            assert roc_auc_score(truly, chance) > 0.9, (seed, touchpoint)
    assert {"cart", "website", "chatbot", "subscription", "newsletter"} <= kinds
    assert {"checkout", "pricing", "customer_service"} <= kinds


def test_the_oracle_at_a_past_cutoff_is_the_churn_that_followed_it():
    """At each past month start, the oracle's mean over the customers there is the share of them
    who left within the horizon, to about three standard errors."""
    from datetime import timedelta

    config = WorldConfig(
        customers=4000, weeks=40, seed=5, dirty_rows=False, truth_replicates=20, end=END
    )
    world = simulate(config)
    rows = world.truth_at_cutoffs.join(
        world.customers.select("customer_id", "churned_at"), on="customer_id"
    ).with_columns(
        left=pl.col("churned_at")
        .is_between(
            pl.col("cutoff"), pl.col("cutoff") + timedelta(days=config.horizon_days), "right"
        )
        .fill_null(False)  # still there at the end
    )
    by_cutoff = rows.group_by("cutoff").agg(
        pl.col("true_churn_probability").mean(), pl.col("left").mean(), pl.len()
    )
    assert by_cutoff.height == config.oracle_cutoffs
    for oracle, left, n in by_cutoff.select("true_churn_probability", "left", "len").iter_rows():
        assert abs(oracle - left) < 3 * (left * (1 - left) / n) ** 0.5 + 0.003, (oracle, left)
