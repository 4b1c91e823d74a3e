"""Files set aside whole: quarantine/files/<table>/<partition key>/ holds a copy of the file and
`reason.json` (its name, rows and why).

The file is copied, not moved. The landing folder is the user's and the single truth of what the
tables hold; a file's partition is processed once per content anyway, so leaving it there costs
nothing, and a rerun of the same folder gives the same list and says the same thing about it.
Once a fixed file lands, its new content is a new partition and the broken one can be deleted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from features.ingest.read import QuarantinedFile

REASON_FILE = "reason.json"


def set_aside(path: Path, folder: Path, quarantined: QuarantinedFile) -> Path:
    """Copy an unreadable landing file into its quarantine folder with its reason."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    shutil.copyfile(path, copy)
    (folder / REASON_FILE).write_text(json.dumps(asdict(quarantined), indent=2) + "\n")
    return copy


def set_aside_reason(folder: Path) -> QuarantinedFile | None:
    """The reason a partition's file was set aside, or None when it was read."""
    reason = folder / REASON_FILE
    if not reason.is_file():
        return None
    return QuarantinedFile(**json.loads(reason.read_text()))


def write_table_log(path: Path, files: int, quarantined: Sequence[QuarantinedFile]) -> None:
    """The table's current files and those set aside, for its check, the report and the run's
    summary; rewritten on every run, like the table's row quarantine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    log = {"files": files, "quarantined": [asdict(f) for f in quarantined]}
    path.write_text(json.dumps(log, indent=2) + "\n")


def read_table_log(path: Path) -> tuple[int, list[QuarantinedFile]]:
    """(files in the table, files set aside); (0, []) before the table was first built."""
    if not path.is_file():
        return 0, []
    log = json.loads(path.read_text())
    return log["files"], [QuarantinedFile(**f) for f in log["quarantined"]]
