"""The input contract: bad rows are quarantined with a reason, good rows are all kept."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import polars as pl
import pytest

from features.ingest.buckets import customer_bucket
from features.ingest.contract import CLICKSTREAM, CUSTOMERS, SUPPORT, SURVEYS
from features.ingest.read import (
    LandingError,
    ingest_table,
    reason_counts,
    skipped_files_warning,
    summary_line,
)
from features.ingest.validate import REASON


def _write(landing, table, name, text):
    folder = landing / table
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_kept(tmp_path):
    _write(tmp_path, "customers", "c.csv", "customer_id,signup_at\nC1,2026-01-01\nC2,2026-01-02\n")
    _write(
        tmp_path,
        "clickstream",
        "events.csv",
        "event_id,customer_id,ts,event_type,page\n"
        "E1,C1,2026-02-01T10:00:00,page_view,/\n"
        ",C1,2026-02-01T10:01:00,page_view,/\n"  # missing required id
        "E3,C1,not a time,search,\n"  # unparseable timestamp
        "E4,C2,2026-02-01T10:03:00+02:00,purchase,/checkout\n"
        "E5,C9,2026-02-01T10:04:00,page_view,/\n",  # unknown customer
    )
    customers = ingest_table(tmp_path, CUSTOMERS)
    events = ingest_table(tmp_path, CLICKSTREAM, customers.accepted["customer_id"])

    assert events.accepted["event_id"].to_list() == ["E1", "E4"]
    reasons = dict(
        zip(
            events.quarantined["_source_row"].to_list(),
            events.quarantined[REASON].to_list(),
            strict=True,
        )
    )
    assert reasons[2] == "missing required event_id"
    assert reasons[3] == "ts is not a valid timestamp: 'not a time'"
    assert reasons[5] == "customer_id 'C9' is not in the customers table"
    assert events.rows_in == 5 == events.accepted.height + events.quarantined.height
    # the log groups reasons by kind: the offending values go, the rest of each sentence stays
    assert events.reason_counts() == {
        "missing required event_id": 1,
        "ts is not a valid timestamp": 1,
        "customer_id is not in the customers table": 1,
    }
    assert summary_line("clickstream", events, 0.25) == (
        "clickstream: 5 rows in -> 2 accepted, 3 quarantined "
        "{'customer_id is not in the customers table': 1, 'missing required event_id': 1, "
        "'ts is not a valid timestamp': 1} in 0.2s"
    )
    assert (
        summary_line("customers", customers, 0.25)
        == "customers: 2 rows in -> 2 accepted, 0 quarantined in 0.2s"
    )
    # an offset is honoured, the result is UTC
    assert events.accepted.filter(pl.col("event_id") == "E4")["ts"].item() == datetime(
        2026, 2, 1, 8, 3, tzinfo=UTC
    )


def test_duplicates_keep_the_first_and_quarantine_the_rest(tmp_path):
    _write(tmp_path, "customers", "a.csv", "customer_id,signup_at\nC1,2026-01-01\n")
    _write(tmp_path, "customers", "b.csv", "customer_id,signup_at\nC1,2026-01-01\nC2,2026-01-05\n")
    result = ingest_table(tmp_path, CUSTOMERS)
    assert sorted(result.accepted["customer_id"].to_list()) == ["C1", "C2"]
    assert result.quarantined[REASON].to_list() == ["duplicate customer_id 'C1' (first kept)"]
    assert result.quarantined["_source_file"].to_list() == ["b.csv"]


def test_pii_never_leaves_ingest(tmp_path):
    _write(
        tmp_path,
        "customers",
        "c.csv",
        "customer_id,name,email,phone,address,signup_at\n"
        "C1,Ann,a@x.io,555,Main St,2026-01-01\n"
        ",Bob,b@x.io,556,Elm St,2026-01-01\n",
    )
    result = ingest_table(tmp_path, CUSTOMERS)
    for table in (result.accepted, result.quarantined):
        assert not {"name", "email", "phone", "address"} & set(table.columns)


def test_all_three_formats_and_numeric_ids(tmp_path):
    _write(
        tmp_path,
        "customers",
        "c.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"customer_id": 7, "signup_at": "2026-01-01"},
                {"customer_id": "8", "signup_at": "2026-01-01"},
            ]
        ),
    )
    (tmp_path / "support").mkdir()
    tickets = {
        "ticket_id": [1],
        "customer_id": [7],
        "opened_at": [datetime(2026, 2, 1)],
        "channel": ["phone"],
        "escalated": [True],
    }
    pl.DataFrame(tickets).write_parquet(tmp_path / "support" / "t.parquet")
    _write(
        tmp_path,
        "surveys",
        "s.csv",
        "response_id,customer_id,ts,survey_type,score\nR1,8,2026-02-01,ces,9\nR2,8,2026-02-01,ces,2\nR3,8,2026-02-01,stars,2\n",
    )
    customers = ingest_table(tmp_path, CUSTOMERS)
    assert customers.accepted["customer_id"].to_list() == ["7", "8"]
    support = ingest_table(tmp_path, SUPPORT, customers.accepted["customer_id"])
    assert support.accepted.select("ticket_id", "customer_id", "escalated").row(0) == (
        "1",
        "7",
        True,
    )
    assert support.accepted["opened_at"].dtype == pl.Datetime("us", "UTC")
    surveys = ingest_table(tmp_path, SURVEYS, customers.accepted["customer_id"])
    assert surveys.accepted["response_id"].to_list() == ["R2"]
    assert sorted(surveys.quarantined[REASON].to_list()) == [
        "ces score '9' is outside 1-7",
        "survey_type 'stars' is not one of nps, csat, ces, repurchase",
    ]


def test_missing_required_table_is_a_clear_error_and_optional_ones_are_empty(tmp_path):
    with pytest.raises(LandingError, match="no customers files"):
        ingest_table(tmp_path, CUSTOMERS)
    empty = ingest_table(tmp_path, SURVEYS)
    assert empty.accepted.is_empty() and empty.accepted.schema == SURVEYS.schema


def test_files_in_an_unsupported_format_are_named_not_skipped_silently(tmp_path):
    _write(tmp_path, "surveys", "responses.csv", "response_id,customer_id,ts,survey_type,score\n")
    (tmp_path / "surveys" / "zipped.csv.gz").write_bytes(b"\x1f\x8b")
    (tmp_path / "surveys" / ".DS_Store").write_bytes(b"")
    assert skipped_files_warning(tmp_path, "customers") is None  # no folder
    warning = skipped_files_warning(tmp_path, "surveys")
    assert warning is not None
    assert (
        "skipped 1 file(s)" in warning and "zipped.csv.gz" in warning and ".DS_Store" not in warning
    )
    assert "Supported: .parquet, .csv, .jsonl, .ndjson, .json" in warning
    (tmp_path / "surveys" / "zipped.csv.gz").unlink()
    assert skipped_files_warning(tmp_path, "surveys") is None
    _write(tmp_path, "customers", "customers.xlsx", "")
    with pytest.raises(LandingError, match="no customers files .* customers.xlsx"):
        ingest_table(tmp_path, CUSTOMERS)


def test_unreadable_file_names_the_file(tmp_path):
    (tmp_path / "customers").mkdir()
    (tmp_path / "customers" / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(LandingError, match="broken.parquet"):
        ingest_table(tmp_path, CUSTOMERS)


def test_reingesting_the_same_files_gives_the_same_result(tmp_path):
    _write(
        tmp_path,
        "customers",
        "c.csv",
        "customer_id,signup_at\nC1,2026-01-01\nC1,2026-01-01\n,2026-01-01\n",
    )
    first, second = ingest_table(tmp_path, CUSTOMERS), ingest_table(tmp_path, CUSTOMERS)
    assert first.accepted.equals(second.accepted) and first.quarantined.equals(second.quarantined)


def test_float_ids_that_are_whole_numbers_read_as_integers(tmp_path):
    (tmp_path / "customers").mkdir()
    pl.DataFrame(
        {"customer_id": [42.0, 7.5], "signup_at": ["2026-01-01", "2026-01-01"]}
    ).write_parquet(tmp_path / "customers" / "c.parquet")
    assert ingest_table(tmp_path, CUSTOMERS).accepted["customer_id"].to_list() == ["42", "7.5"]


def test_customer_bucket_is_the_crc32_of_the_id_in_every_engine():
    ids = pl.DataFrame({"customer_id": ["C1", "C2", None, "é1", "C000123"]})
    expected = [zlib.crc32(i.encode()) % 3 if i else None for i in ids["customer_id"]]
    assert expected[:2] == [0, 2]  # fixed values: a bucket must never move between versions
    assert (
        ids.select(customer_bucket(pl.col("customer_id"), 3))["customer_id"].to_list() == expected
    )
    streamed = (
        ids.lazy().select(customer_bucket(pl.col("customer_id"), 3)).collect(engine="streaming")
    )
    assert streamed["customer_id"].to_list() == expected
    with pytest.raises(ValueError, match="at least 1"):
        customer_bucket(pl.col("customer_id"), 0)


def test_reasons_are_counted_by_kind_even_when_the_value_holds_an_apostrophe():
    quarantined = pl.DataFrame(
        {
            REASON: [
                "ts is not a valid timestamp: '12 o'clock'",
                "ts is not a valid timestamp: 'noon'; "
                "customer_id 'C9' is not in the customers table",
            ]
        }
    )
    assert reason_counts(quarantined) == {
        "ts is not a valid timestamp": 2,
        "customer_id is not in the customers table": 1,
    }
