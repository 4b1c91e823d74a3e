"""Inputs as real exports arrive: other dialects and encodings, unreadable files, implausible times
and durations. Each case asserts its exact outcome and the row accounting per file."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from features.ingest.contract import CLICKSTREAM, CUSTOMERS, SUPPORT
from features.ingest.quality import before_signup
from features.ingest.read import LandingError, arrived_by, ingest_file, ingest_table
from features.ingest.validate import REASON

HEADER = "event_id,customer_id,ts,event_type,page"


def _clicks(rows: int, separator: str = ",") -> str:
    lines = [HEADER.replace(",", separator)]
    lines += [
        separator.join([f"E{i}", f"C{i % 7}", "2026-03-01T10:00:00", "page_view", '"a, b"'])
        for i in range(rows)
    ]
    return "\n".join(lines) + "\n"


def _landing(tmp_path, files: dict[str, bytes | str], table: str = "clickstream"):
    folder = tmp_path / table
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("separator", [",", ";", "\t", "|"])
def test_every_usual_delimiter_is_read_with_its_quoted_fields(tmp_path, separator):
    landing = _landing(tmp_path, {"clicks.csv": _clicks(500, separator)})
    result = ingest_table(landing, CLICKSTREAM)
    assert (result.rows_in, result.accepted.height, result.quarantined.height) == (500, 500, 0)
    assert result.accepted["page"].unique().to_list() == ["a, b"]


def test_a_windows_1252_file_is_read_with_a_warning_that_says_where(tmp_path):
    text = _clicks(3).replace('"a, b"', "Café", 1).replace('"a, b"', "ok")
    landing = _landing(tmp_path, {"clicks.csv": text.encode("cp1252")})
    result = ingest_table(landing, CLICKSTREAM)
    assert result.accepted.height == 3
    assert result.accepted["page"][0] == "Café"
    assert len(result.warnings) == 1
    assert "clicks.csv: not UTF-8 (first at line 2, byte" in result.warnings[0]
    assert "read as Windows-1252" in result.warnings[0]


def test_an_unparseable_file_is_set_aside_whole_and_the_others_are_read(tmp_path):
    ragged = HEADER + "\nE1,C1,2026-03-01,page_view,home\nE2,C1,2026-03-01,page_view,x,extra\n"
    landing = _landing(tmp_path, {"a_good.csv": _clicks(20), "b_ragged.csv": ragged})
    result = ingest_table(landing, CLICKSTREAM)
    (whole,) = result.files_quarantined
    assert (whole.file, whole.rows) == ("b_ragged.csv", 2)
    start_of_line_3 = len(HEADER) + 1 + len("E1,C1,2026-03-01,page_view,home") + 1
    assert f"the record at line 3 (byte {start_of_line_3}) has 6 fields, the header 5" in (
        whole.reason
    )
    assert (result.accepted.height, result.quarantined.height, result.rows_in) == (20, 0, 22)


@pytest.mark.parametrize(
    ("name", "content", "rows", "reason"),
    [
        ("empty.csv", b"", 0, "the file is empty"),
        ("empty.jsonl", b"", 0, "the file is empty"),
        ("corrupt.parquet", b"PAR1 not really", 0, "cannot be read as parquet"),
        ("no_ts.csv", b"event_id,customer_id,event_type\nE9,C1,view\nE8,C1,view\n", 2, "lacks"),
    ],
)
def test_files_no_row_of_which_can_be_read_are_counted_and_set_aside(
    tmp_path, name, content, rows, reason
):
    landing = _landing(tmp_path, {"good.csv": _clicks(10), name: content})
    result = ingest_table(landing, CLICKSTREAM)
    (whole,) = result.files_quarantined
    assert (whole.file, whole.rows) == (name, rows)
    assert whole.reason.startswith(reason)
    assert result.rows_in == 10 + rows
    assert result.accepted.height == 10


def test_an_unreadable_customers_file_still_stops_the_run_with_its_name(tmp_path):
    landing = _landing(tmp_path, {"broken.parquet": b"not parquet"}, table="customers")
    with pytest.raises(LandingError, match="broken.parquet: cannot be read as parquet"):
        ingest_table(landing, CUSTOMERS)


def test_times_after_the_files_arrival_are_quarantined_and_never_move_as_of(tmp_path):
    future = "\n".join(f"F{i},C1,2099-01-01T00:00:00,page_view,home" for i in range(50))
    landing = _landing(tmp_path, {"clicks.csv": _clicks(10) + future + "\n"})
    path = landing / "clickstream" / "clicks.csv"
    arrived = datetime(2026, 4, 1, tzinfo=UTC).timestamp()
    os.utime(path, (arrived, arrived))
    result = ingest_file(path, CLICKSTREAM)
    assert (result.accepted.height, result.quarantined.height) == (10, 50)
    assert result.reason_counts() == {"ts is later than when its file arrived": 50}
    # as_of is the latest accepted time (features.feature_plan.latest_timestamp)
    assert result.accepted["ts"].max() == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_arrival_is_the_earlier_of_the_file_time_and_now_with_a_days_grace(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x")
    now = datetime(2026, 5, 1, tzinfo=UTC)
    written = (now + timedelta(days=30)).timestamp()
    os.utime(path, (written, written))
    assert arrived_by(path, now) == now + timedelta(days=1)


def test_tickets_answered_or_resolved_before_they_were_opened_are_quarantined(tmp_path):
    rows = [
        "ticket_id,customer_id,opened_at,channel,first_response_at,resolved_at",
        "T1,C1,2026-03-01T10:00,chat,2026-03-01T11:00,2026-03-02T10:00",
        "T2,C1,2026-03-01T10:00,chat,2026-03-01T09:00,2026-03-02T10:00",
        "T3,C1,2026-03-01T10:00,chat,,2026-02-27T10:00",
    ]
    landing = _landing(tmp_path, {"t.csv": "\n".join(rows) + "\n"}, table="support")
    result = ingest_table(landing, SUPPORT)
    assert result.accepted["ticket_id"].to_list() == ["T1"]
    reasons = dict(zip(result.quarantined["ticket_id"], result.quarantined[REASON], strict=True))
    assert reasons == {
        "T2": "first_response_at is before opened_at",
        "T3": "resolved_at is before opened_at",
    }


def test_events_before_signup_are_found_to_be_warned_about():
    customers = pl.DataFrame(
        {"customer_id": ["C1", "C2"], "signup_at": [datetime(2026, 3, 1, tzinfo=UTC)] * 2}
    )
    events = pl.DataFrame(
        {
            "event_id": ["E1", "E2", "E3"],
            "customer_id": ["C1", "C1", "C2"],
            "ts": [datetime(2026, d, 2, tzinfo=UTC) for d in (2, 3, 3)],
        }
    )
    assert before_signup(events, customers, "clickstream")["event_id"].to_list() == ["E1"]
