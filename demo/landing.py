"""The demo world written into a data root: the landing files in the input contract (one format per
table, to exercise them all), the ground truth beside them, and the guard that keeps `make demo`
from deleting files it did not write.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl

from demo import voice
from demo.simulator import TOUCHED, World, WorldConfig
from features.ingest.landing import file_digest

log = logging.getLogger(__name__)


def _iso(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ"))


LANDING_TABLES = ("customers", "clickstream", "support", "surveys")
# in truth/: each landing file the last whole world wrote, with its SHA-256
MANIFEST = "landing_files.json"
# what the demo's files were called before it kept a manifest: trusted only where a demo world's
# truth/ is there too
_OLD_DEMO_NAMES = re.compile(
    r"customers/customers\.csv|clickstream/clickstream_\d{4}-\d{2}\.parquet"
    r"|support/tickets\.jsonl|surveys/responses\.csv"
)


class DemoFolderError(ValueError):
    """The demo would delete files in the landing folder that it did not write; the message lists
    them and says what to do."""


def _landing_entries(folder: Path) -> list[Path]:
    """A table folder's entries the demo owns or guards, sorted: hidden ones (.DS_Store) are left
    be, as ingestion ignores them."""
    return (
        sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    )


def foreign_landing_files(data_root: Path) -> list[str]:
    """Entries of landing/<table>/ that a whole world would replace but the demo did not write (or
    that changed since): a user's own exports, subfolders. Relative to landing/, sorted."""
    landing, truth = data_root / "landing", data_root / "truth"
    manifest = truth / MANIFEST
    written = json.loads(manifest.read_text()) if manifest.is_file() else None
    foreign = []
    for table in LANDING_TABLES:
        folder = landing / table
        for entry in _landing_entries(folder):
            name = entry.relative_to(landing).as_posix()
            if written is None:
                ours = (
                    entry.is_file()
                    and (truth / "world.json").is_file()
                    and _OLD_DEMO_NAMES.fullmatch(name) is not None
                )
            else:
                ours = entry.is_file() and written.get(name) == file_digest(entry)
            if not ours:
                foreign.append(name + ("/" if entry.is_dir() else ""))
    return sorted(foreign)


def check_landing_is_the_demos(data_root: Path) -> None:
    """Refuse to replace a landing folder holding files the demo did not write: the README invites
    people to put their own exports there, and `make demo` would delete them."""
    foreign = foreign_landing_files(data_root)
    if foreign:
        shown = ", ".join(foreign[:10]) + (
            f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        )
        raise DemoFolderError(
            f"the demo writes its simulated world into {data_root / 'landing'} "
            "and would delete what is there, "
            f"but these were not written by it: {shown}. Run the demo on another data root "
            "(TOUCHPOINT_CHURN_DATA=/some/empty/folder make demo), "
            "or move these files out of the landing folder "
            "(delete them only if you do not need them), then run it again."
        )


def write_world(world: World, data_root: Path, config: WorldConfig) -> dict[str, int]:
    """Write the landing files (one format per table, to exercise them all) and the ground truth.

    A whole world replaces what the landing folders held, and refuses (DemoFolderError) where they
    hold files it did not write; it records what it wrote in truth/landing_files.json. A chunk
    (`config.chunk`) writes its files beside the other chunks' (names ending `_cNNN`) and removes
    nothing, so chunks can be written one by one, in any order; clearing the folders before the
    first is up to the caller."""
    landing, truth_dir = data_root / "landing", data_root / "truth"
    suffix = "" if config.chunk is None else f"_c{config.chunk:03d}"
    if config.chunk is None:
        check_landing_is_the_demos(data_root)
        # a write cut short must not leave a manifest of files no longer there: without it, the
        # demo's own file names (beside truth/world.json) still prove the folder is the demo's
        (truth_dir / MANIFEST).unlink(missing_ok=True)
    for table in LANDING_TABLES:
        folder = landing / table
        folder.mkdir(parents=True, exist_ok=True)
        for old in _landing_entries(folder) if config.chunk is None else ():
            old.unlink()
    customers = _iso(world.customers)
    support = _iso(world.support)
    surveys = _iso(world.surveys)
    clickstream = world.clickstream
    if config.dirty_rows:
        customers = pl.concat(
            [
                customers,
                pl.DataFrame(
                    {"customer_id": [None, "C_BAD"], "signup_at": ["2026-01-01", "last tuesday"]}
                ),
            ],
            how="diagonal",
        )
        clickstream = pl.concat([clickstream, clickstream.head(2)])
        surveys = pl.concat(
            [
                surveys,
                surveys.head(1).with_columns(
                    response_id=pl.lit("R_BAD"), score=pl.lit("11"), survey_type=pl.lit("nps")
                ),
            ],
            how="vertical_relaxed",
        )
    started = time.perf_counter()

    def wrote(table: str, rows: int, files: int = 1) -> None:
        log.info(
            "wrote landing/%s: %s rows in %d %s, %.1fs",
            table,
            f"{rows:,}",
            files,
            "file" if files == 1 else "files",
            time.perf_counter() - started,
        )

    customers.write_csv(landing / "customers" / f"customers{suffix}.csv")
    wrote("customers", customers.height)
    months = (
        clickstream.with_columns(m=pl.col("ts").dt.strftime("%Y-%m"))
        .partition_by("m", as_dict=True)
        .items()
    )
    for (month,), part in months:
        part.drop("m").write_parquet(
            landing / "clickstream" / f"clickstream_{month}{suffix}.parquet"
        )
    wrote("clickstream", clickstream.height, len(months))
    exported = config.mechanics.tables  # a drawn world's business may not export them all
    if "support" in exported:
        support.write_ndjson(landing / "support" / f"tickets{suffix}.jsonl")
        wrote("support", support.height)
    if "surveys" in exported:
        surveys.write_csv(landing / "surveys" / f"responses{suffix}.csv")
        wrote("surveys", surveys.height)
    truth_dir.mkdir(parents=True, exist_ok=True)
    if config.chunk is None:
        written = {
            p.relative_to(landing).as_posix(): file_digest(p)
            for table in LANDING_TABLES
            for p in _landing_entries(landing / table)
        }
        (truth_dir / MANIFEST).write_text(json.dumps(written, indent=2))
    world.truth.write_parquet(truth_dir / f"customers{suffix}.parquet")
    world.truth_at_cutoffs.write_parquet(truth_dir / f"probabilities_at_cutoffs{suffix}.parquet")
    world.voice.write_parquet(truth_dir / f"voice{suffix}.parquet")
    (truth_dir / f"referrals{suffix}.json").write_text(
        json.dumps(voice.referral_truth(world.customers, world.truth), indent=2)
    )
    (truth_dir / f"world{suffix}.json").write_text(
        json.dumps(
            {
                "planted_drivers": list(config.mechanics.drivers),
                # every touchpoint the world's events reach that its rules do not drive
                "decoys": [t for t in TOUCHED if t not in config.mechanics.drivers],
                "mechanics": asdict(config.mechanics),
                "planted_complaints": {t: asdict(c) for t, c in voice.PLANTED_COMPLAINTS.items()},
                "decoy_complaints": {t: asdict(c) for t, c in voice.DECOY_COMPLAINTS.items()},
                "delights": {t: asdict(c) for t, c in voice.DELIGHTS.items()},
                "end": config.end.isoformat(),
                "config": {k: str(v) for k, v in asdict(config).items() if k != "mechanics"},
            },
            indent=2,
        )
    )
    return {
        "customers": world.customers.height,
        "clickstream": world.clickstream.height,
        "support": world.support.height,
        "surveys": world.surveys.height,
    }
