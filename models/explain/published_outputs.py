"""Outputs a reader can trust: all from one run, never half written.

Each run writes its outputs into its own folder, `output_sets/<run id>/`; `published_outputs`, the
last asset of a run, makes `outputs` a link to that folder in one rename. A reader of `outputs/`
sees the previous run's whole set or this run's whole set, never a mix, and a run killed before
it ends leaves the previous set in place (its own folder is left behind and pruned later).

A run that rebuilt only some outputs (one asset materialized from the UI) publishes a set whose
other files are linked from the set it replaces; `manifest.json` gives each file's SHA-256 and
names the run that wrote each file carried over.

Each published set is also kept by its `as_of` day: `outputs/history/<YYYY-MM-DD>/`. The history
lives beside the sets, in `output_history/`, which every set links to as `history`, so it survives
the switch and the pruning of old sets. A day is a link to its folder (hard links of the set's
files and manifest), replaced in one rename too: a rerun for the same `as_of` replaces that day's
copy, and a reader sees the old copy or the new one, never half of either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

OUTPUTS = "outputs"
SETS = "output_sets"
MANIFEST = "manifest.json"
KEEP_SETS = 3
HISTORY = "history"  # the link in each set (so `outputs/history/`) to HISTORY_ROOT
HISTORY_ROOT = "output_history"
DAYS = ".days"  # under HISTORY_ROOT: one folder per day and run; the day's link names the newest


def stamp(frame: pl.DataFrame, as_of: datetime, model_version: str) -> pl.DataFrame:
    """`frame` with the `as_of` it was computed for and the registered model version that scored
    it, as its last columns: a file that leaves the outputs still says where it came from."""
    return frame.with_columns(
        as_of=pl.lit(as_of),
        model_version=pl.lit(model_version, dtype=pl.String),
    )


def staged(root: Path, run_id: str) -> Path:
    """The folder a run writes its outputs into."""
    folder = root / SETS / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _retire_plain_folder(current: Path, root: Path) -> None:
    """An `outputs` folder from before output sets becomes one, so the link can replace it."""
    if current.is_dir() and not current.is_symlink():
        old = root / SETS / f"before-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        old.parent.mkdir(parents=True, exist_ok=True)
        current.rename(old)
        current.symlink_to(old.relative_to(root))


def publish(root: Path, run_id: str, as_of: date | None = None, keep: int = KEEP_SETS) -> dict:
    """Make `root/outputs` this run's set, in one rename; returns its manifest: each file's
    SHA-256, and the files carried over from the set it replaces with the run that wrote them.
    The run itself is the folder the link names, not a line of the manifest, so two runs that
    write the same outputs write the same manifest. With `as_of`, the published set is then kept as
    that day's copy in the history (`keep_dated`)."""
    folder = staged(root, run_id)
    current = root / OUTPUTS
    _retire_plain_folder(current, root)
    previous = current.resolve() if current.is_symlink() else None
    carried: dict[str, str] = {}
    if previous is not None and previous.is_dir() and previous != folder.resolve():
        earlier = _manifest(previous).get("carried_over", {})
        for path in previous.iterdir():
            if path.name != MANIFEST and path.is_file() and not (folder / path.name).exists():
                os.link(path, folder / path.name)
                carried[path.name] = earlier.get(path.name, previous.name)
    files = sorted(p for p in folder.iterdir() if p.name != MANIFEST and _is_output(p))
    manifest = {
        "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
        "carried_over": dict(sorted(carried.items())),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    _link_history(root, folder)
    link = root / f".{OUTPUTS}-{run_id}"
    link.unlink(missing_ok=True)
    link.symlink_to(folder.relative_to(root))
    os.replace(link, current)
    # after the switch: the history never holds a set that was not published
    if as_of is not None:
        keep_dated(root, folder, as_of)
    _prune(root / SETS, folder, keep)
    return manifest


def _is_output(path: Path) -> bool:
    """A file of the set: not the `history` link, nor anything else that is not a plain file."""
    return path.is_file() and not path.is_symlink()


def _link_history(root: Path, folder: Path) -> None:
    history = root / HISTORY_ROOT
    history.mkdir(exist_ok=True)
    link = folder / HISTORY
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(history, folder), target_is_directory=True)


def keep_dated(root: Path, folder: Path, as_of: date) -> Path:
    """The set in `folder` kept as `as_of`'s day in the history (hard links: no bytes copied, and
    pruning the set leaves them), in a folder of its own: an earlier copy of the same day is
    replaced in one rename, then deleted, so the day is never half there. Returns the day's path
    (`output_history/<YYYY-MM-DD>`)."""
    day = f"{as_of:%Y-%m-%d}"
    history = root / HISTORY_ROOT
    (history / DAYS).mkdir(parents=True, exist_ok=True)
    copy = Path(tempfile.mkdtemp(prefix=f"{day}-{folder.name}-", dir=history / DAYS))
    copy.chmod(0o755)  # readable as the sets are, not mkdtemp's owner-only
    for path in sorted(folder.iterdir()):
        if _is_output(path):
            os.link(path, copy / path.name)
    link = history / f".{day}-{folder.name}"
    link.unlink(missing_ok=True)
    link.symlink_to(copy.relative_to(history), target_is_directory=True)
    os.replace(link, history / day)
    for earlier in (history / DAYS).glob(f"{day}-*"):
        if earlier != copy:
            shutil.rmtree(earlier, ignore_errors=True)
    return history / day


def published_run(root: Path) -> str | None:
    """The run whose set `outputs` shows, or None before the first."""
    current = root / OUTPUTS
    return current.resolve().name if current.is_symlink() else None


def _prune(sets: Path, current: Path, keep: int) -> None:
    """Only the newest `keep` sets stay (the published one always): older lists are not wanted,
    and a killed run's half-written set goes with them."""
    folders = sorted(
        (p for p in sets.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in [p for p in folders if p != current][max(keep - 1, 0) :]:
        shutil.rmtree(old, ignore_errors=True)
