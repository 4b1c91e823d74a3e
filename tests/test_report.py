"""The report renders in a real browser and shows the driver chart."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import polars as pl
import pytest
from PIL import Image

from models.explain.churn_report import declared_vs_found

FLAGGED_RED = (217, 45, 32)  # the colour of a flagged touchpoint's bar in the driver chart
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_renders_in_headless_chromium_with_the_driver_chart(pipeline_run, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail(
                "chromium is missing in CI: `make test` should have installed Debian's chromium "
                "package"
            )
        pytest.skip(
            "chromium is not installed: `make test` installs Debian's chromium package when it "
            "can (apt-get needs root)"
        )
    screenshot = tmp_path / "report.png"
    report = pipeline_run.data_root / "outputs" / "report.html"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,3000",  # the driver chart follows the banner and three sections
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1200, 3000)
    close_to_red = np.abs(np.asarray(image, dtype=np.int32) - np.array(FLAGGED_RED)) <= 12
    red = int(close_to_red.all(axis=2).sum())
    # three flagged bars of roughly 100-300 x 16 pixels each: thousands of red pixels, none without
    # the chart
    assert red > 2000, f"only {red} pixels of the flagged-bar colour in {screenshot}"


def test_declared_moments_are_set_against_what_the_data_found():
    drivers = pl.DataFrame(
        {
            "touchpoint": ["checkout", "pricing", "newsletter", "search"],
            "label": ["checkout", "pricing page", "newsletter", "site search"],
            "flagged": [True, False, True, False],
            "share_of_total": [0.5, 0.01, 0.3, 0.02],
        }
    )
    table = declared_vs_found(drivers, ["checkout", "pricing"])
    assert dict(zip(table["touchpoint"], table["verdict"], strict=True)) == {
        "checkout": "confirmed by the data",
        "newsletter": "found, not declared: worth adding to the catalogue",
        "pricing page": "declared, not found in this data",
    }


def test_the_report_has_the_model_figures_a_reader_asks_for(pipeline_run):
    html = (pipeline_run.data_root / "outputs" / "report.html").read_text()
    for heading in ("ECE", "lift, riskiest 10%", "churners caught, riskiest 10%"):
        assert f"<th>{heading}</th>" in html
    assert html.count('src="data:image/png;base64,') == 2  # calibration and lift
    assert "Moments that matter: declared against found" in html
    # the session's world ends on a pinned day, a month and more before today: stale
    assert " EUR</b>monthly value at risk" in html  # the currency setting's default
    assert (
        "Data health: read this list with care." in html
        and "Stale data: the latest event is" in html
    )
    model = pipeline_run.output("churn_model")
    assert 1.0 < model.metrics["backtest_lift_top10"] <= 10.0
    assert 0.1 < model.metrics["backtest_capture_top10"] <= 1.0
