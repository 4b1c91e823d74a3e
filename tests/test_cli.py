"""What `make run` says when it stops: the reason a check gives, not only the check's name."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import replace
from typing import cast

import dagster as dg
import pytest

from models.tracking import champion_version
from pipelines.cli import (
    build_parser,
    check_lines,
    dagster_home_problem,
    failure_report,
    first_paragraph,
    landing_problem,
    main,
    run_all,
)
from pipelines.definitions import build_definitions
from pipelines.jobs import TRAINED_IN, training_runs
from pipelines.partitions import bucketed_table


@pytest.mark.e2e
def test_a_failed_blocking_check_is_reported_with_its_description(tmp_path):
    landing = tmp_path / "data" / "landing"
    for table, text in {
        "customers": "customer_id,signup_at\nC1,2026-01-01\n",
        # ticket_id renamed upstream
        "support": "ticket,customer_id,opened_at,channel\nT1,C1,2026-02-01,phone\n",
    }.items():
        (landing / table).mkdir(parents=True)
        (landing / table / "export.csv").write_text(text)
    defs = build_definitions(tmp_path / "data", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        # failures are in the result, not raised
        result = run_all(defs, instance, assets=["customers", "support"], concise=True)
    assert not result.success
    report = failure_report(result)
    # the only support file is set aside whole: 1 of 1 files is past the bound
    assert "blocking check support:quarantine_share failed: 100.00% of rows quarantined" in report
    assert "export.csv: lacks required columns ['ticket_id']" in report
    assert "VERBOSE=1" in report and "Stack Trace" not in report


def test_a_warning_check_is_listed_with_its_description_and_a_passed_one_is_not():
    def evaluation(name: str, passed: bool) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("touchpoint_days"),
            check_name=name,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{name}: the latest event is 60 hours old",
            blocking=False,
        )

    assert check_lines([evaluation("event_freshness", False), evaluation("other", True)]) == [
        "  check touchpoint_days:event_freshness warns: "
        "event_freshness: the latest event is 60 hours old"
    ]


def test_the_concise_log_keeps_a_failure_to_its_first_line():
    record = logging.LogRecord(
        "dagster",
        logging.ERROR,
        __file__,
        1,
        'STEP_FAILURE - Execution of step "x" failed.\n\nValueError: bad\n\nStack Trace: ...',
        None,
        None,
    )
    first_paragraph(record)
    assert record.msg == 'STEP_FAILURE - Execution of step "x" failed.'


@pytest.mark.e2e
def test_an_unreadable_event_file_is_set_aside_and_the_run_goes_on(tmp_path):
    landing = tmp_path / "data" / "landing"
    (landing / "customers").mkdir(parents=True)
    (landing / "customers" / "c.csv").write_text("customer_id,signup_at\nC1,2026-01-01\n")
    (landing / "clickstream").mkdir()
    for day in range(1, 6):
        (landing / "clickstream" / f"day{day}.csv").write_text(
            f"event_id,customer_id,ts,event_type\nE{day},C1,2026-02-0{day},page_view\n"
        )
    (landing / "clickstream" / "day6.parquet").write_text("not parquet")
    defs = build_definitions(tmp_path / "data", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        result = run_all(defs, instance, assets=["customers", "clickstream"], concise=True)
    assert result.success, failure_report(result)
    assert defs.resources is not None  # build_definitions always binds the resources
    accepted = bucketed_table(defs.resources["data_root"], "clickstream", 1).collect()
    assert accepted["event_id"].to_list() == [f"E{d}" for d in range(1, 6)]
    (reason,) = (tmp_path / "data" / "quarantine" / "files" / "clickstream").rglob("reason.json")
    assert (reason.parent / "day6.parquet").read_text() == "not parquet"
    assert "cannot be read as parquet" in json.loads(reason.read_text())["reason"]
    log = json.loads((reason.parents[2] / "clickstream.json").read_text())
    assert log["files"] == 6 and log["quarantined"][0]["file"] == "day6.parquet"


def test_every_command_and_flag_has_help():
    parser = build_parser()
    (found,) = [a.choices for a in parser._actions if isinstance(a.choices, dict)]
    commands = cast(dict[str, argparse.ArgumentParser], found)
    assert set(commands) == {"demo", "run", "forget", "real"}
    for name, sub in [("", parser), *commands.items()]:
        for action in sub._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
    demo = commands["demo"].format_help()
    assert "--customers N" in demo and "--seed" in demo and "--end DATE" in demo


def test_the_cli_imports_no_dagster_until_a_command_runs():
    """`--help` answers at once: Dagster and the definitions load inside the commands."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, pipelines.cli; print('dagster' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_an_empty_data_folder_is_one_clear_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOUCHPOINT_CHURN_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "landing" / "customers").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "customers" / ".DS_Store").write_text("")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert (
        f"nothing to run on: {tmp_path / 'data' / 'landing' / 'customers'} holds no file"
        in (err[0])
    )
    assert "clickstream/, support/, surveys/" in err[0] and "data/README.md" in err[0]
    (tmp_path / "data" / "landing" / "customers" / "c.csv").write_text("customer_id\n")
    assert landing_problem(tmp_path / "data") is None


def test_a_missing_dagster_home_is_one_clear_message_before_the_demo_writes(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TOUCHPOINT_CHURN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # not created
    assert main(["demo", "--customers", "50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DAGSTER_HOME" in err[0] and "make demo" in err[0], err
    assert not (tmp_path / "data" / "landing").exists()  # nothing simulated in vain
    (tmp_path / "dagster").mkdir()
    assert dagster_home_problem(str(tmp_path / "dagster"), "demo") is None
    assert "is not set" in str(dagster_home_problem(None, "run"))


def test_the_pipeline_runs_as_the_named_jobs(pipeline_run):
    assert pipeline_run.result.job_names == ["weekly_retraining", "daily_scoring"]
    names = {r.job_name for r in pipeline_run.instance.get_runs()}
    assert {"weekly_retraining", "daily_scoring", "ingest_clickstream_files"} <= names
    assert not {n for n in names if n.startswith("__")}
    # the scoring run scores with the model the training run trained, and promotes it last
    training, scoring = (
        pipeline_run.instance.get_run_by_id(i) for i in pipeline_run.result.run_ids
    )
    assert training is not None and scoring is not None
    assert scoring.tags[TRAINED_IN] == training.run_id
    assert "champion" not in {k.to_user_string() for k in training.asset_selection or ()}
    assert "champion" in {k.to_user_string() for k in scoring.asset_selection or ()}
    model = pipeline_run.output("churn_model")
    tracking = (pipeline_run.defs.resources or {})["mlflow_tracking"].tracking()
    assert champion_version(tracking) == model.version  # promoted, by the scoring run's last step
    promoted = pipeline_run.instance.get_latest_materialization_event(dg.AssetKey("champion"))
    assert promoted is not None and promoted.run_id == scoring.run_id
    scored = pipeline_run.instance.get_latest_materialization_event(
        dg.AssetKey("shap_attributions")
    )
    assert scored is not None and scored.asset_materialization is not None
    assert scored.asset_materialization.metadata["champion_version"].value == model.version


def test_only_the_run_that_trained_a_model_or_scores_for_it_promotes_it(pipeline_run):
    model = replace(pipeline_run.output("churn_model"), promoted=True, dagster_run_id="train")
    run = dg.DagsterRun(job_name="daily_scoring", run_id="score")
    assert training_runs(run) == {"score"}
    tagged = dg.DagsterRun(job_name="daily_scoring", run_id="score", tags={TRAINED_IN: "train"})
    assert training_runs(tagged) == {"score", "train"}
    assert model.promoted_in(training_runs(tagged))
    assert not model.promoted_in(training_runs(run))
