"""The voice of the customer through Dagster, against what the simulator planted: each driver's
biggest disappointment theme is its planted complaint, no decoy's is, the referral rate is the
truth's, and the outputs and report hold them."""

from __future__ import annotations

import json

import polars as pl
import pytest

from demo.simulator import DECOYS, PLANTED_COMPLAINTS, PLANTED_DRIVERS
from features.catalogue import load_catalogue
from features.families import is_theme_feature
from features.voice.referrals import referral_rate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _biggest_disappointment(themes: pl.DataFrame, touchpoint: str) -> str | None:
    mine = themes.filter(
        (pl.col("touchpoint") == touchpoint)
        & (pl.col("band") == "disappointment")
        & ~pl.col("catch_all")
    ).sort("comments", descending=True)
    return mine["label"][0] if mine.height else None


def _names(label: str | None, terms: tuple[str, ...]) -> bool:
    return label is not None and any(t in label.split() or t in label for t in terms)


def test_planted_complaints_are_the_drivers_biggest_disappointment_themes(pipeline_run):
    themes = pipeline_run.output("voice_themes")
    for driver in PLANTED_DRIVERS:
        label = _biggest_disappointment(themes, driver)
        assert _names(label, PLANTED_COMPLAINTS[driver].terms), (driver, label)
    planted_terms = [t for c in PLANTED_COMPLAINTS.values() for t in c.terms]
    for decoy in DECOYS:
        label = _biggest_disappointment(themes, decoy)
        assert not _names(label, tuple(planted_terms)), (decoy, label)


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
    # theme features reached the model's registry and the reasons' wording
    # the disappointment themes are features of the model
    names = pipeline_run.output("feature_plan").registry(load_catalogue())
    assert any(is_theme_feature(d.name) for d in names)
