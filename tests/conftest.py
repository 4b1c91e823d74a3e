"""Shared fixtures: one small simulated world run through every asset, reused across tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from demo.landing import write_world
from demo.simulator import WorldConfig, simulate
from pipelines.cli import PipelineResult, run_all
from pipelines.config import SETTINGS_FILE
from pipelines.definitions import build_definitions
from pipelines.partitions import BUCKETED, bucketed_table

# Big enough that the holdout (about 4,000 customers, 10% churn) gives a stable AUC, small enough
# to run in well under a minute.
# The end is pinned (the demo's is today), so the world and the monthly cutoffs over it stay the
# same from day to day.
WORLD = WorldConfig(customers=5_000, seed=11, end=datetime(2026, 11, 2, tzinfo=UTC))


@dataclass(frozen=True)
class PipelineRun:
    root: Path
    data_root: Path
    tracking_uri: str
    defs: dg.Definitions
    result: PipelineResult
    instance: dg.DagsterInstance

    def output(self, asset: str):
        """An asset's value: a bucketed table's buckets read from their files as one frame."""
        if asset in BUCKETED:
            resources = self.defs.resources
            assert resources is not None  # build_definitions always binds the resources
            return bucketed_table(
                resources["data_root"], asset, resources["settings"].buckets
            ).collect()
        return self.result.output_for_node(asset)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineRun]:
    root = tmp_path_factory.mktemp("world")
    data_root = root / "data"
    write_world(simulate(WORLD), data_root, WORLD)
    # two customer buckets, so every end-to-end test goes through the bucketed path; a settings
    # file, so definitions other tests build on this data root split it the same way
    (data_root / SETTINGS_FILE).write_text("buckets = 2\n")
    tracking_uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    defs = build_definitions(data_root, tracking_uri)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        result = run_all(defs, instance)
        assert result.success
        yield PipelineRun(root, data_root, tracking_uri, defs, result, instance)


def frame(rows: list[dict], schema: dict | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under pytest-xdist (`make test` runs two workers), the modules that read the session's
    pipeline run go to one worker as a whole, so the run (a minute and a half) is made once; every
    other test is dealt out alone. (xdist 3.8's `xdist_group` mark does not group under pytest 9:
    it renames `item._nodeid`, which pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    here = Path(__file__).parent
    on_the_run = {
        f"{here.name}/{path.name}"
        for path in here.glob("test_*.py")
        if "pipeline_run" in path.read_text()
    }

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "pipeline_run" if nodeid.split("::")[0] in on_the_run else nodeid

    return SharedRunScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that reads the session's pipeline run is end to end: it needs the whole pipeline
    run through Dagster first (about a minute), so `-m "not e2e"` leaves it out.

    The session's run and the slow tests go first: xdist deals the tests out in this order, so
    the long ones start early and the quick ones fill the gaps at the end, rather than one worker
    starting a long test while the other has nothing left."""
    for item in items:
        if "pipeline_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
    items.sort(
        key=lambda item: (
            not (
                "pipeline_run" in getattr(item, "fixturenames", ())
                or item.get_closest_marker("slow") is not None
            )
        )
    )
