"""What the simulator plants in comments, ticket text and referrals, checked against its own truth,
without the pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from demo import voice
from demo.landing import write_world
from demo.simulator import PLANTED_DRIVERS, WorldConfig, simulate

CONFIG = WorldConfig(
    customers=1_500,
    weeks=30,
    seed=11,
    dirty_rows=False,
    truth_replicates=0,
    end=datetime(2026, 6, 1, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def world():
    return simulate(CONFIG)


def test_the_voice_leaves_the_world_as_it_was(monkeypatch, world):
    """The voice has its own stream: drawing it differently changes what is written, and no
    click, ticket, answer, signup or label."""
    monkeypatch.setattr(voice, "voice_rng", lambda seed: np.random.default_rng(seed + 99))
    other = simulate(CONFIG)
    assert other.clickstream.equals(world.clickstream)
    assert other.truth.equals(world.truth)
    planted = ("acquisition_channel", "referred_by")
    assert other.customers.drop(planted).equals(world.customers.drop(planted))
    assert other.support.drop("text").equals(world.support.drop("text"))
    # the world's own answers (CES after tickets, NPS) are the same; the voice's added ones differ
    own = pl.col("survey_type").is_in(["ces", "nps"])
    assert (
        other.surveys.filter(own)
        .drop("response_id", "comment")
        .equals(world.surveys.filter(own).drop("response_id", "comment"))
    )
    assert not other.surveys["comment"].equals(world.surveys["comment"])


def test_every_comment_and_ticket_text_has_its_truth(world):
    commented = world.surveys.filter(pl.col("comment").is_not_null())
    texted = world.support.filter(pl.col("text").is_not_null())
    truth = world.voice
    assert sorted(truth.filter(pl.col("source") == "surveys")["id"]) == sorted(
        commented["response_id"]
    )
    assert sorted(truth.filter(pl.col("source") == "support")["id"]) == sorted(texted["ticket_id"])
    # many answers are left without a comment, as in real surveys
    assert 0.2 < commented.height / world.surveys.height < 0.7


def test_each_driver_is_disappointed_about_its_planted_complaint(world):
    disappointed = world.voice.filter(pl.col("band") == "disappointment")
    for driver in PLANTED_DRIVERS:
        mine = disappointed.filter(pl.col("touchpoint") == driver)["theme"].drop_nulls()
        assert mine.mode().to_list() == [voice.PLANTED_COMPLAINTS[driver].name], driver
    # the planted complaints are written only at their own touchpoint (or as a second topic)
    for driver, complaint in voice.PLANTED_COMPLAINTS.items():
        elsewhere = world.voice.filter(
            (pl.col("theme") == complaint.name) & (pl.col("touchpoint") != driver)
        )
        assert elsewhere.is_empty(), driver
    # a checkout CSAT is low after a failed payment: a friction the hazard counts
    checkout = world.surveys.filter(pl.col("touchpoint") == "checkout")
    assert checkout.height > 0 and set(checkout["survey_type"]) == {"csat"}


def test_referrers_signed_up_before_the_customers_they_brought_and_are_promoters(tmp_path, world):
    customers = world.customers
    referred = customers.filter(pl.col("acquisition_channel") == "referral")
    assert 0.1 < referred.height / customers.height < 0.3
    named = referred.filter(pl.col("referred_by").is_not_null()).join(
        customers.select(referred_by="customer_id", referrer_signup="signup_at"), on="referred_by"
    )
    assert named.height >= 0.9 * referred.height
    assert (named["referrer_signup"] <= named["signup_at"]).all()
    assert (
        customers.filter(pl.col("acquisition_channel") != "referral")["referred_by"].is_null().all()
    )
    # promoters recommend: referrers gave more delighted answers than the other customers
    delights = voice.delighted_answers(world.surveys, customers["customer_id"].to_numpy())
    referrer = customers["customer_id"].is_in(named["referred_by"].implode()).to_numpy()
    assert delights[referrer].mean() > 1.5 * delights[~referrer].mean()

    write_world(world, tmp_path, CONFIG)
    truth = json.loads((tmp_path / "truth" / "referrals.json").read_text())
    assert truth["referral_rate"] == pytest.approx(referred.height / customers.height)
    assert pl.read_parquet(tmp_path / "truth" / "voice.parquet").equals(world.voice)
    world_json = json.loads((tmp_path / "truth" / "world.json").read_text())
    assert world_json["planted_complaints"]["checkout"]["name"] == "card declined"
