"""Outputs a reader can trust: all from one run, never half written.

Each run writes its outputs into its own folder, `output_sets/<run id>/`; `published_outputs`, the
last asset of a run, makes `outputs` a link to that folder in one rename. A reader of `outputs/`
sees the previous run's whole set or this run's whole set, never a mix, and a run killed before
it ends leaves the previous set in place (its own folder is left behind and pruned later).

A run that rebuilt only some outputs (one asset materialized from the UI) publishes a set whose
other files are linked from the set it replaces; `manifest.json` gives each file's SHA-256 and
names the run that wrote each file carried over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

OUTPUTS = "outputs"
SETS = "output_sets"
MANIFEST = "manifest.json"
KEEP_SETS = 3


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


def publish(root: Path, run_id: str, keep: int = KEEP_SETS) -> dict:
    """Make `root/outputs` this run's set, in one rename; returns its manifest: each file's
    SHA-256, and the files carried over from the set it replaces with the run that wrote them.
    The run itself is the folder the link names, not a line of the manifest, so two runs that
    write the same outputs write the same manifest."""
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
    files = sorted(p for p in folder.iterdir() if p.name != MANIFEST)
    manifest = {
        "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files},
        "carried_over": dict(sorted(carried.items())),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    link = root / f".{OUTPUTS}-{run_id}"
    link.unlink(missing_ok=True)
    link.symlink_to(folder.relative_to(root))
    os.replace(link, current)
    _prune(root / SETS, folder, keep)
    return manifest


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
