"""The report renders in a real browser and shows the driver chart."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

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
            "--window-size=1200,1400",
            f"--screenshot={screenshot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1200, 1400)
    close_to_red = np.abs(np.asarray(image, dtype=np.int32) - np.array(FLAGGED_RED)) <= 12
    red = int(close_to_red.all(axis=2).sum())
    # three flagged bars of roughly 100-300 x 16 pixels each: thousands of red pixels, none without
    # the chart
    assert red > 2000, f"only {red} pixels of the flagged-bar colour in {screenshot}"
