"""The simulator in chunks: a world too big for memory is simulated piece by piece into one
landing folder."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from demo.landing import MANIFEST, DemoFolderError, foreign_landing_files, write_world
from demo.simulator import WorldConfig, chunks, simulate

END = datetime(2026, 3, 23, tzinfo=UTC)
SMALL = WorldConfig(customers=300, weeks=20, seed=5, dirty_rows=False, truth_replicates=0, end=END)


def test_a_world_that_fits_in_one_chunk_is_the_config_itself():
    assert chunks(SMALL, 300) == [SMALL]
    with pytest.raises(ValueError, match="at least 1 customer"):
        chunks(SMALL, 0)


def test_chunks_cover_every_customer_once_with_their_own_seeds():
    parts = chunks(SMALL, 120)
    assert [p.customers for p in parts] == [100, 100, 100]
    assert [p.first_customer for p in parts] == [0, 100, 200]
    assert [p.chunk for p in parts] == [0, 1, 2]
    assert len({p.seed for p in parts}) == 3 and SMALL.seed not in {p.seed for p in parts}
    assert chunks(SMALL, 120) == parts  # the same world every time


def test_chunks_write_side_by_side_with_ids_unique_across_chunks(tmp_path):
    counts = [write_world(simulate(part), tmp_path, part) for part in chunks(SMALL, 150)]
    landing = tmp_path / "landing"
    assert sorted(p.name for p in (landing / "customers").iterdir()) == [
        "customers_c000.csv",
        "customers_c001.csv",
    ]
    assert {p.name for p in (landing / "support").iterdir()} == {
        "tickets_c000.jsonl",
        "tickets_c001.jsonl",
    }
    assert all(p.stem.endswith(("_c000", "_c001")) for p in (landing / "clickstream").iterdir())

    customers = pl.read_csv(landing / "customers" / "*.csv")
    assert customers["customer_id"].to_list() == [f"C{i:06d}" for i in range(300)]
    assert customers["email"].n_unique() == 300
    clicks = pl.read_parquet(landing / "clickstream" / "*.parquet")
    support = pl.read_ndjson(landing / "support" / "tickets_c001.jsonl")
    surveys = pl.read_csv(landing / "surveys" / "*.csv")
    assert clicks.height == sum(c["clickstream"] for c in counts) and surveys.height == sum(
        c["surveys"] for c in counts
    )
    for ids in (
        clicks["event_id"],
        clicks["session_id"].drop_nulls().unique(),
        surveys["response_id"],
    ):
        assert ids.n_unique() == ids.len()
    assert (
        clicks.filter(pl.col("customer_id") >= "C000150")["event_id"].str.starts_with("E1-").all()
    )
    assert support["ticket_id"].str.starts_with("T1-").all()
    assert set(clicks["customer_id"]) <= set(customers["customer_id"])


def test_skipping_the_oracle_leaves_the_world_unchanged():
    with_truth = simulate(
        WorldConfig(customers=300, weeks=20, seed=5, dirty_rows=False, truth_replicates=4, end=END)
    )
    without = simulate(SMALL)
    for table in ("customers", "clickstream", "support", "surveys"):
        assert getattr(without, table).equals(getattr(with_truth, table))
    oracles = ["true_churn_probability", "observable_churn_probability"]
    assert all(without.truth[o].is_nan().all() for o in oracles)
    assert not any(with_truth.truth.select(pl.col(oracles).is_nan().any()).row(0))
    assert without.truth.drop(oracles).equals(with_truth.truth.drop(oracles))
    assert (
        without.truth_at_cutoffs.is_empty()
        and without.truth_at_cutoffs.schema == with_truth.truth_at_cutoffs.schema
    )


def test_a_whole_world_replaces_only_what_the_demo_wrote(tmp_path):
    world = simulate(SMALL)
    landing = tmp_path / "landing"
    write_world(world, tmp_path, SMALL)
    write_world(world, tmp_path, SMALL)  # a re-run replaces its own files
    # a user's own export, as the README invites
    (landing / "surveys" / "mine.csv").write_text("response_id\nR1\n")
    (landing / "clickstream" / "2026").mkdir()
    # the demo's name, someone else's content
    (landing / "customers" / "customers.csv").write_text("customer_id,signup_at\nC1,2026-01-01\n")
    with pytest.raises(
        DemoFolderError,
        match=r"not written by it: clickstream/2026/, customers/customers.csv, surveys/mine.csv\. "
        r"Run the demo on another data root",
    ):
        write_world(world, tmp_path, SMALL)
    assert (landing / "surveys" / "mine.csv").read_text() == "response_id\nR1\n"

    (landing / "surveys" / "mine.csv").unlink()
    (landing / "clickstream" / "2026").rmdir()
    # a world written before the demo kept a manifest: its own file names are trusted
    (tmp_path / "truth" / MANIFEST).unlink()
    assert foreign_landing_files(tmp_path) == []
    write_world(world, tmp_path, SMALL)
    assert (tmp_path / "truth" / MANIFEST).is_file()
    # hidden files are nobody's data: ingestion skips them too
    (landing / "surveys" / ".DS_Store").write_bytes(b"finder")
    assert foreign_landing_files(tmp_path) == []
    write_world(world, tmp_path, SMALL)
    assert ".DS_Store" not in json.loads((tmp_path / "truth" / MANIFEST).read_text())


def test_the_same_seed_gives_the_same_world_shifted_to_its_end():
    """The demo's world ends today: on another day it is the same world, moved in time."""
    config = replace(SMALL, truth_replicates=4, oracle_cutoffs=2)
    later = replace(config, end=END + timedelta(days=241))
    first, second = simulate(config), simulate(later)
    assert later.start == config.start + timedelta(days=241)

    def shifted(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(pl.Datetime("us", "UTC")) + timedelta(days=241))

    for table in ("customers", "clickstream", "support", "surveys"):
        assert shifted(getattr(first, table)).equals(getattr(second, table)), table
    assert first.truth.equals(second.truth)  # the same customers active at the end, same labels
    assert second.clickstream["ts"].max() < later.end  # pyright: ignore[reportOperatorIssue]
    # the oracle is at each world's own month starts, midnight UTC, as the pipeline's cutoffs are
    for world, at in ((first, config), (second, later)):
        cutoffs = world.truth_at_cutoffs["cutoff"].unique().sort().to_list()
        assert cutoffs and all(
            c.day == 1 and c.hour == 0 and at.start < c < at.end for c in cutoffs
        )


def test_a_world_ends_at_a_midnight_utc_by_default_today():
    today = WorldConfig().end
    assert (today.hour, today.minute, today.second, today.microsecond) == (0, 0, 0, 0)
    assert timedelta(0) <= datetime.now(UTC) - today < timedelta(days=1)
    with pytest.raises(ValueError, match="midnight UTC"):
        WorldConfig(end=datetime(2026, 3, 23, 6, tzinfo=UTC))
