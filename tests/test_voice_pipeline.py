"""The voice of the customer through Dagster, against what the simulator planted: each driver's
biggest disappointment theme is made of its planted complaint, no decoy's is made of a planted
complaint, the referral rate is the truth's, and the outputs and report hold them."""

from __future__ import annotations

import json

import polars as pl

from demo.simulator import DECOYS, PLANTED_DRIVERS
from demo.voice import PLANTED_COMPLAINTS
from features.catalogue import load_catalogue
from features.families import is_theme_feature
from features.voice.referrals import referral_rate
from features.voice.themes import assign_themes, documents


def _biggest_themes(pipeline_run) -> dict[str, str]:
    """Per touchpoint, what the texts of its biggest disappointment theme (catch-all aside) were
    written about, by the simulator's truth: the most common planted theme among them."""
    themes = pipeline_run.output("feature_plan").features.voice
    docs = documents(
        pipeline_run.output("surveys"), pipeline_run.output("support"), load_catalogue()
    ).filter(pl.col("band") == "disappointment")
    truth = pl.read_parquet(pipeline_run.data_root / "truth" / "voice.parquet")
    written = docs.with_columns(assign_themes(docs, themes)).join(
        truth.select("source", "id", planted="theme"), on=["source", "id"]
    )
    table = pipeline_run.output("voice_themes").filter(
        (pl.col("band") == "disappointment") & ~pl.col("catch_all")
    )
    about = {}
    for (touchpoint,), group in table.group_by("touchpoint"):
        biggest = group.sort("comments", descending=True)["theme"][0]
        planted = written.filter(
            (pl.col("touchpoint") == touchpoint) & (pl.col("theme") == biggest)
        )["planted"]
        about[str(touchpoint)] = planted.drop_nulls().mode().sort()[0]
    return about


def test_each_drivers_biggest_disappointment_theme_is_its_planted_complaint(pipeline_run):
    about = _biggest_themes(pipeline_run)
    for driver in PLANTED_DRIVERS:
        assert about.get(driver) == PLANTED_COMPLAINTS[driver].name, (driver, about.get(driver))
    planted = {c.name for c in PLANTED_COMPLAINTS.values()}
    for decoy in DECOYS:
        assert about.get(decoy) not in planted, (decoy, about.get(decoy))


def test_the_referral_rate_is_the_truths_and_the_outputs_hold_the_themes(pipeline_run):
    truth = json.loads((pipeline_run.data_root / "truth" / "referrals.json").read_text())
    found = referral_rate(pipeline_run.output("customers"))
    assert found is not None and abs(found - truth["referral_rate"]) <= 0.01
    outputs = pipeline_run.data_root / "outputs"
    published = pl.read_parquet(outputs / "voice_themes.parquet")
    assert published.height == pipeline_run.output("voice_themes").height > 0
    assert (outputs / "voice_themes.csv").is_file()
    report = (outputs / "report.html").read_text()
    assert "What customers say" in report and "came by referral" in report
    # the disappointment themes are features of the model
    registry = pipeline_run.output("feature_plan").registry(load_catalogue())
    assert any(is_theme_feature(d.name) for d in registry)
