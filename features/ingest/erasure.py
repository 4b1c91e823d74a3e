"""The right to erasure: one customer removed from everything the data root holds.

- Files that hold rows (landing, the quarantine and its set-aside copies, truth/) are rewritten
  without the customer's rows, in their own format. A file that holds the id but cannot be read as
  a table (a set-aside corrupt file) is deleted: it cannot be cleaned.
- What the pipeline derives from them (the asset store, the output sets and `outputs`) is
  deleted, and the next run rebuilds it from the cleaned landing folder.
- The dated copies of earlier outputs (`output_history/`), which no run rebuilds, are cleaned like
  the landing folder: their tables are rewritten without the rows, a file holding the id that is
  no table (a spreadsheet, the report) is deleted, and so is the manifest of a day that changed,
  which no longer describes its files.
- `erasures.jsonl` records when, and how many rows left which file, never the id: an audit log
  that kept it would defeat the erasure.

Dagster's storage and MLflow hold no customer id (asset previews leave it out; models log features
only), so they need no change; the erasure test searches them anyway.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from features.ingest.dialect import UnreadableFile, read_csv
from features.ingest.file_quarantine import REASON_FILE
from features.ingest.pseudonyms import pseudonym
from features.ingest.read import READERS

AUDIT_LOG = "erasures.jsonl"
DERIVED = ("assets", "output_sets", "outputs")
HISTORY_ROOT = (
    "output_history"  # models.explain.published_outputs.HISTORY_ROOT (features/ comes first)
)
_ROW_FOLDERS = ("landing", "quarantine", "truth", HISTORY_ROOT)
_MANIFEST = "manifest.json"


def _read(path: Path) -> pl.DataFrame:
    kind = READERS[path.suffix.lower()]
    if kind == "csv":
        return read_csv(path, {"customer_id"}).frame
    if kind == "ndjson":
        return pl.read_ndjson(path, infer_schema_length=None)
    return pl.read_parquet(path)


def _write(frame: pl.DataFrame, path: Path) -> None:
    kind = READERS[path.suffix.lower()]
    temporary = path.with_name(f".{path.name}.erasing")
    if kind == "csv":
        frame.write_csv(temporary)
    elif kind == "ndjson":
        frame.write_ndjson(temporary)
    else:
        frame.write_parquet(temporary)
    temporary.replace(path)  # never half a file, were the erasure killed


def _without(path: Path, ids: set[str]) -> int | None:
    """Rewrite one file without the rows of `ids`; the rows removed, or None when the file cannot
    be read as a table."""
    try:
        frame = _read(path)
    except (UnreadableFile, pl.exceptions.PolarsError, OSError):
        return None
    if "customer_id" not in frame.columns:
        return 0
    keep = ~frame["customer_id"].cast(pl.String).is_in(list(ids)).fill_null(False)
    removed = frame.height - int(keep.sum())
    # the customers they referred stay, no longer pointing at them
    referrer = pl.col("referred_by").cast(pl.String).is_in(list(ids)).fill_null(False)
    referred = "referred_by" in frame.columns and frame.select(referrer.any()).item()
    if removed or referred:
        if referred:
            frame = frame.with_columns(
                pl.when(referrer).then(None).otherwise(pl.col("referred_by")).alias("referred_by")
            )
        _write(frame.filter(keep), path)
    return removed


def _holds(path: Path, needles: list[bytes]) -> bool:
    """Whether the file's bytes hold a needle as a whole token (forgetting C1 leaves C10 alone),
    looking inside a zip's members (an xlsx)."""
    tokens = [re.compile(rb"(?<![\w-])" + re.escape(n) + rb"(?![\w-])") for n in needles]
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(t.search(archive.read(m)) for m in archive.namelist() for t in tokens)
    data = path.read_bytes()
    return any(t.search(data) for t in tokens)


def erase_customer(root: Path, customer_id: str, pseudonym_key: str | None) -> dict:
    """Remove one customer (by real id; its pseudonym too, with the key) from the data root.
    Returns the audit record it appended to `erasures.jsonl`."""
    ids = {customer_id} | ({pseudonym(customer_id, pseudonym_key)} if pseudonym_key else set())
    needles = [i.encode() for i in ids]
    rows: dict[str, int] = {}
    deleted: list[str] = []
    for folder in _ROW_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if not path.is_file() or path.name == REASON_FILE:
                continue
            relative = path.relative_to(root).as_posix()
            removed = _without(path, ids) if path.suffix.lower() in READERS else None
            if removed:
                rows[relative] = removed
            elif removed is None and _holds(path, needles):
                path.unlink()
                deleted.append(relative)
    changed = {Path(p).parent for p in [*rows, *deleted] if p.startswith(f"{HISTORY_ROOT}/")}
    for day in sorted(changed):
        if (manifest := root / day / _MANIFEST).is_file():
            manifest.unlink()
            deleted.append((day / _MANIFEST).as_posix())
    for name in DERIVED:
        derived = root / name
        if derived.is_symlink() or derived.is_file():
            derived.unlink()
        elif derived.is_dir():
            shutil.rmtree(derived)
    record = {
        "erased_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows_removed": rows,
        "files_deleted": deleted,
        "derived_deleted": list(DERIVED),
    }
    with (root / AUDIT_LOG).open("a") as log:
        log.write(json.dumps(record) + "\n")
    return record
