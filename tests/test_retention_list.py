"""The retention list as its readers get it: the spreadsheet's sheets, headers and formats, the
as_of and model version in every published file, and the dated copies kept under history/."""

from __future__ import annotations

import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl

from models.explain.published_outputs import (
    HISTORY_ROOT,
    MANIFEST,
    OUTPUTS,
    publish,
    staged,
    stamp,
)
from models.explain.scored_customers import (
    ACTION_TIERS,
    ALL_SHEET,
    CALL_FIRST_SHEET,
    NOTES_SHEET,
    export_list,
    scored_list,
)

AS_OF = datetime(2024, 3, 31, 23, 59, 59)
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def dated_copies(root: Path) -> dict[str, Path]:
    """The days the history keeps, YYYY-MM-DD -> the folder holding that day's outputs."""
    history = root / HISTORY_ROOT
    if not history.is_dir():
        return {}
    return {p.name: p.resolve() for p in sorted(history.iterdir()) if not p.name.startswith(".")}


def _scored() -> pl.DataFrame:
    ids = [f"C{i}" for i in range(6)]
    customers = pl.DataFrame(
        {
            "customer_id": ids,
            "plan": ["pro", "basic", "pro", "basic", "pro", None],
            "monthly_value": [100.0, 40.0, 1234.5, 20.0, 80.0, None],
        }
    )
    reasons = pl.DataFrame(
        {
            "customer_id": ids,
            "touchpoint_1": ["checkout", "delivery", None, "checkout", None, "customer_service"],
            "reason_1": ["4 payment errors at checkout", "2 late deliveries", None, "x", None, "y"],
            "suggested_action": ["Call", "Apologise", None, "Call", None, "Escalate"],
            "action_owner": ["payments", "logistics", None, "payments", None, "support"],
        }
    )
    return scored_list(ids, [0.9, 0.3, 0.1, 0.6, 0.05, 0.25], customers, reasons)


def _sheets(path: Path) -> dict[str, list[list[str]]]:
    """Each sheet's rows as the text of their cells (shared strings resolved), by sheet name."""
    import xml.etree.ElementTree as ET

    with zipfile.ZipFile(path) as xlsx:
        strings = [
            "".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t"))
            for si in ET.fromstring(xlsx.read("xl/sharedStrings.xml")).findall("m:si", NS)
        ]
        book = ET.fromstring(xlsx.read("xl/workbook.xml"))
        names = [s.get("name") for s in book.findall("m:sheets/m:sheet", NS)]
        sheets = {}
        for i, name in enumerate(names, start=1):
            root = ET.fromstring(xlsx.read(f"xl/worksheets/sheet{i}.xml"))
            rows = []
            for row in root.findall("m:sheetData/m:row", NS):
                cells = []
                for c in row.findall("m:c", NS):
                    v = c.find("m:v", NS)
                    text = "" if v is None else v.text or ""
                    cells.append(strings[int(text)] if c.get("t") == "s" else text)
                rows.append(cells)
            sheets[str(name)] = rows
    return sheets


def _sheet_xml(path: Path, n: int) -> str:
    with zipfile.ZipFile(path) as xlsx:
        return xlsx.read(f"xl/worksheets/sheet{n}.xml").decode()


def test_the_workbook_has_call_first_everyone_and_notes_with_human_headers(tmp_path):
    scored = stamp(_scored(), AS_OF, "7")
    _, _, xlsx = export_list(scored, tmp_path, "scored_customers", AS_OF, "USD")
    sheets = _sheets(xlsx)
    assert list(sheets) == [CALL_FIRST_SHEET, ALL_SHEET, NOTES_SHEET]
    headers = sheets[ALL_SHEET][0]
    assert headers[:6] == [
        "Customer",
        "Churn probability",
        "Risk tier",
        "Plan",
        "Monthly value (USD/month)",
        "Value at risk (USD/month)",
    ]
    assert {"Touchpoint 1", "Reason 1", "Suggested action", "Scored as of", "Model version"} <= set(
        headers
    )
    assert sheets[CALL_FIRST_SHEET][0] == headers
    # everyone on one sheet, only the tiers to call on the other, both in the list's order
    assert [r[0] for r in sheets[ALL_SHEET][1:]] == scored["customer_id"].to_list()
    calls = scored.filter(pl.col("risk_tier").is_in(ACTION_TIERS))
    assert 0 < calls.height < scored.height
    assert [r[0] for r in sheets[CALL_FIRST_SHEET][1:]] == calls["customer_id"].to_list()
    tier = headers.index("Risk tier")
    assert {r[tier] for r in sheets[CALL_FIRST_SHEET][1:]} <= set(ACTION_TIERS)
    notes = dict((r[0], r[1]) for r in sheets[NOTES_SHEET])
    assert notes["Model version"] == "7" and notes["Currency"] == "USD"
    assert notes["Scored as of"].startswith("2024-03-31")
    assert "50%" in notes["Risk tier"] and "20%" in notes["Risk tier"]
    assert "Value at risk" in notes and "Reason 1-3" in notes


def test_the_workbook_formats_percentages_money_wraps_reasons_freezes_and_filters(tmp_path):
    scored = stamp(_scored(), AS_OF, "7")
    _, _, xlsx = export_list(scored, tmp_path, "list", AS_OF, "EUR")
    with zipfile.ZipFile(xlsx) as book:
        styles = book.read("xl/styles.xml").decode()
        core = book.read("docProps/core.xml").decode()
    assert 'formatCode="0%"' in styles
    assert 'formatCode="#,##0.00 &quot;EUR&quot;"' in styles
    assert 'wrapText="1"' in styles
    assert "2024-03-31T23:59:59Z" in core  # dated as_of, not the clock
    for n in (1, 2):
        sheet = _sheet_xml(xlsx, n)
        assert '<pane xSplit="1" ySplit="1"' in sheet and 'state="frozen"' in sheet
        assert re.search(r'<autoFilter ref="A1:[A-Z]+\d+"/>', sheet)
        # the reason column is wide, and a long action gets a taller row
        assert re.search(r'<col min="\d+" max="\d+" width="60\.\d+"', sheet)
    # the same list gives the same bytes
    _, _, again = export_list(scored, tmp_path / "again", "list", AS_OF, "EUR")
    assert again.read_bytes() == xlsx.read_bytes()


def test_the_csv_and_parquet_say_as_of_and_the_model_version(tmp_path):
    parquet, csv, _ = export_list(stamp(_scored(), AS_OF, "12"), tmp_path, "list", AS_OF)
    frame = pl.read_parquet(parquet)
    assert frame.columns[-2:] == ["as_of", "model_version"]
    assert frame["as_of"].unique().to_list() == [AS_OF]
    assert frame["model_version"].unique().to_list() == ["12"]
    text = pl.read_csv(csv, schema_overrides={"model_version": pl.String})
    assert text["as_of"].unique().to_list() == ["2024-03-31T23:59:59"]
    assert text["model_version"].unique().to_list() == ["12"]


def _write_set(root: Path, run_id: str, value: str) -> None:
    folder = staged(root, run_id)
    (folder / "scored_customers.csv").write_text(f"customer_id\n{value}\n")
    (folder / "report.html").write_text(value)


def test_each_publish_keeps_a_dated_copy_that_survives_the_switch_and_the_pruning(tmp_path):
    _write_set(tmp_path, "run-1", "first")
    publish(tmp_path, "run-1", datetime(2024, 3, 1), keep=1)
    _write_set(tmp_path, "run-2", "second")
    manifest = publish(tmp_path, "run-2", datetime(2024, 3, 2, 6, 0), keep=1)
    outputs = tmp_path / OUTPUTS
    # the manifest covers the set's files, not the history
    assert set(manifest["files"]) == {"report.html", "scored_customers.csv"}
    assert not (tmp_path / "output_sets" / "run-1").exists()  # pruned; its day is kept
    assert sorted(p.name for p in (outputs / "history").iterdir() if p.name[0] != ".") == [
        "2024-03-01",
        "2024-03-02",
    ]
    assert (outputs / "history" / "2024-03-01" / "report.html").read_text() == "first"
    assert (outputs / "history" / "2024-03-02" / "report.html").read_text() == "second"
    day = json.loads((outputs / "history" / "2024-03-02" / MANIFEST).read_text())
    assert day == manifest

    # a rerun for the same as_of replaces that day's copy, and only that day's
    _write_set(tmp_path, "run-3", "second, again")
    publish(tmp_path, "run-3", datetime(2024, 3, 2, 7, 0), keep=1)
    days = dated_copies(tmp_path)
    assert list(days) == ["2024-03-01", "2024-03-02"]
    assert (days["2024-03-02"] / "report.html").read_text() == "second, again"
    assert (days["2024-03-01"] / "report.html").read_text() == "first"
    assert len(list((tmp_path / "output_history" / ".days").iterdir())) == 2
    assert (outputs / "report.html").read_text() == "second, again"


def test_the_pipeline_publishes_as_of_the_model_version_and_a_dated_copy(pipeline_run):
    outputs = pipeline_run.data_root / "outputs"
    version = pipeline_run.output("churn_model").champion_version
    as_of = pipeline_run.output("feature_plan").as_of
    for name in ("scored_customers", "touchpoint_drivers"):
        frame = pl.read_parquet(outputs / f"{name}.parquet")
        assert frame["model_version"].unique().to_list() == [version], name
        stamped = frame["as_of"].dt.strftime("%Y-%m-%dT%H:%M:%S").unique().to_list()
        assert stamped == [f"{as_of:%Y-%m-%dT%H:%M:%S}"], name
        csv = pl.read_csv(outputs / f"{name}.csv", schema_overrides={"model_version": pl.String})
        assert csv["model_version"].unique().to_list() == [version], name
    sheets = _sheets(outputs / "scored_customers.xlsx")
    assert list(sheets) == [CALL_FIRST_SHEET, ALL_SHEET, NOTES_SHEET]
    day = outputs / "history" / f"{as_of:%Y-%m-%d}"
    assert (day / "scored_customers.xlsx").read_bytes() == (
        outputs / "scored_customers.xlsx"
    ).read_bytes()


def test_erasure_cleans_the_dated_copies_it_cannot_rebuild(tmp_path):
    from features.ingest.erasure import erase_customer

    scored = stamp(_scored(), AS_OF, "7")
    folder = staged(tmp_path, "run-1")
    export_list(scored, folder, "scored_customers", AS_OF)
    publish(tmp_path, "run-1", AS_OF)
    record = erase_customer(tmp_path, "C1", None)
    (day,) = dated_copies(tmp_path).values()
    kept = pl.read_parquet(day / "scored_customers.parquet")
    assert "C1" not in kept["customer_id"].to_list() and kept.height == scored.height - 1
    assert "C1" not in pl.read_csv(day / "scored_customers.csv")["customer_id"].to_list()
    # the spreadsheet cannot be cleaned, and the manifest no longer describes the day
    assert not (day / "scored_customers.xlsx").exists() and not (day / MANIFEST).exists()
    assert any(p.endswith("scored_customers.xlsx") for p in record["files_deleted"])
