"""Training on Dask gives the in-process model (one worker: byte for byte; two: the same ranking),
the client honours DASK_SCHEDULER_ADDRESS, and the hash sample of customers keeps whole customers,
the same at every cutoff, reproducibly, near its budget."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from dask.utils import key_split
from distributed import Client, LocalCluster, get_task_stream

from features.ingest.buckets import customer_bucket
from features.training_sample import customer_sample
from models.calibration import Calibration, model_input
from models.training.backtest import run_backtest, scoring_model
from models.training.cluster import (
    SCHEDULER_ADDRESS,
    ClusterConfig,
    dask_client,
    scheduler_address,
    training_client,
    worker_count,
)
from models.training.evaluate import classification_metrics
from models.training.train import TrainConfig, fit_booster, fit_on_all, time_split

# small and quick: a few hundred trees at most, stopped early on the validation cutoff
CONFIG = TrainConfig(n_estimators=300, learning_rate=0.2, early_stopping_rounds=20)
FEATURES = [f"f{j}" for j in range(8)]
SEED = 7


def snapshots(customers: int = 2_500, cutoffs: int = 4, seed: int = 0) -> pl.DataFrame:
    """Stacked snapshots of the same customers at monthly cutoffs; a few leave (are absent at the
    later cutoffs), and churn depends on the features with an interaction and a curve."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"C{i:06d}" for i in range(customers)])
    stays = rng.integers(1, cutoffs + 3, customers)  # how many cutoffs each customer is seen at
    frames = []
    for k in range(cutoffs):
        here = ids[stays > k]
        X = rng.normal(size=(here.size, len(FEATURES))).astype(np.float32)
        logit = -2.2 + X[:, 0] + 0.8 * X[:, 1] * X[:, 2] - 0.5 * X[:, 3] ** 2 + 0.3 * X[:, 4]
        churned = (rng.random(here.size) < 1 / (1 + np.exp(-logit))).astype(np.int8)
        frames.append(
            pl.DataFrame(
                {
                    "customer_id": here,
                    "cutoff": datetime(2026, 1 + k, 1, tzinfo=UTC),
                    "churned": churned,
                    **{name: X[:, j] for j, name in enumerate(FEATURES)},
                }
            )
        )
    return pl.concat(frames)


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return snapshots()


@pytest.fixture(scope="module")
def split(frame: pl.DataFrame):
    cutoffs = sorted(frame["cutoff"].unique().to_list())
    return time_split(frame, cutoffs[:-1], cutoffs[-1])


@pytest.fixture(scope="module")
def one_worker() -> Iterator[Client]:
    with dask_client(ClusterConfig(n_workers=1, threads_per_worker=2)) as client:
        yield client


@pytest.fixture(scope="module")
def two_workers() -> Iterator[Client]:
    with dask_client(ClusterConfig(n_workers=2, threads_per_worker=1)) as client:
        yield client


@contextmanager
def parts_made(client: Client) -> Iterator[list[str]]:
    """The workers that made each dask partition of the training rows while the block ran (one
    entry per partition): proof that the work went to the cluster, not this process."""
    workers: list[str] = []
    with get_task_stream(client) as stream:
        yield workers
    tasks = cast(Any, stream).data  # a synchronous client's stream (the hint allows a coroutine)
    workers += [t["worker"] for t in tasks if key_split(t["key"]) == "polars_to_pandas"]


def holdout_auc(model, split) -> float:
    X = model_input(split.holdout, FEATURES)
    return classification_metrics(
        split.holdout["churned"].to_numpy(), model.predict_proba(X)[:, 1]
    )["roc_auc"]


# slow: the first training on a fresh worker process pays its imports (19 s, busy 2-core machine)
@pytest.mark.slow
@pytest.mark.parametrize("form", ["xgboost", "linear+xgboost"])
def test_one_worker_trains_the_in_process_booster_byte_for_byte(split, one_worker, form):
    assert worker_count(one_worker) == 1
    local = fit_booster(split, FEATURES, CONFIG, SEED, form)
    with parts_made(one_worker) as workers:
        distributed = fit_booster(split, FEATURES, CONFIG, SEED, form, client=one_worker)
    assert len(workers) == 2  # the fit cutoffs and the validation cutoff, one partition each
    # in process a subclass that only makes the validation set a plain DMatrix (models.training.
    # train._Classifier); the boosters are compared byte for byte below
    assert isinstance(distributed.classifier, xgb.XGBClassifier)
    assert isinstance(local.classifier, xgb.XGBClassifier)
    # early stopping stopped where it did in-process, and well before the last tree
    assert distributed.classifier.best_iteration == local.classifier.best_iteration
    assert local.classifier.best_iteration < CONFIG.n_estimators - CONFIG.early_stopping_rounds
    booster, expected = distributed.classifier.get_booster(), local.classifier.get_booster()
    assert booster.save_raw("ubj") == expected.save_raw("ubj")
    assert distributed.feature_names == FEATURES
    X = model_input(split.holdout, FEATURES)
    assert np.array_equal(distributed.margin(X), local.margin(X))


def test_one_worker_refit_on_all_cutoffs_is_the_in_process_one(frame, one_worker):
    calibration = Calibration("platt", slope=0.9, intercept=-0.1)
    args = (frame, FEATURES, CONFIG, SEED, "linear+xgboost", 40, calibration)
    local = fit_on_all(*args)
    with parts_made(one_worker) as workers:
        distributed = fit_on_all(*args, client=one_worker)
    assert len(workers) == 1
    assert distributed.calibration == calibration
    raw = distributed.classifier.get_booster().save_raw("ubj")
    assert raw == local.classifier.get_booster().save_raw("ubj")
    X = model_input(frame, FEATURES)
    assert np.array_equal(distributed.predict_proba(X), local.predict_proba(X))


class Quiet:
    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


def test_the_backtest_and_its_refit_train_on_the_client_they_are_given(frame, one_worker):
    def backtest(client: Client | None):
        return run_backtest(
            frame,
            FEATURES,
            None,
            None,
            config=CONFIG,
            seed=SEED,
            horizon_days=20,
            log=Quiet(),
            forms=("xgboost",),
            client=client,
        )

    local = backtest(None)
    with parts_made(one_worker) as workers:
        distributed = backtest(one_worker)
    assert len(workers) == 2 * len(local.folds)
    assert distributed.scores == local.scores
    with parts_made(one_worker) as workers:
        refit = scoring_model(frame, FEATURES, CONFIG, SEED, distributed, one_worker)
    assert len(workers) == 1
    expected = scoring_model(frame, FEATURES, CONFIG, SEED, local)
    raw = refit.classifier.get_booster().save_raw("ubj")
    assert raw == expected.classifier.get_booster().save_raw("ubj")


@pytest.mark.slow  # two fresh worker processes (29 s on a busy 2-core machine)
def test_two_workers_rank_the_holdout_as_one_worker_does(split, one_worker, two_workers):
    assert worker_count(two_workers) == 2
    one = fit_booster(split, FEATURES, CONFIG, SEED, client=one_worker)
    with parts_made(two_workers) as workers:
        two = fit_booster(split, FEATURES, CONFIG, SEED, client=two_workers)
    # each worker made a part of the fit rows and of the validation rows
    assert sorted(workers) == sorted(2 * list(two_workers.nthreads()))
    # the trees differ between runs of several workers: only the ranking is compared
    assert holdout_auc(two, split) == pytest.approx(holdout_auc(one, split), abs=0.005)
    assert holdout_auc(one, split) > 0.7


@pytest.fixture
def running_scheduler() -> Iterator[str]:
    """A scheduler (and a worker) started apart from `dask_client`, as a real cluster's would be."""
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def test_the_client_connects_to_the_scheduler_in_dask_scheduler_address(
    running_scheduler, monkeypatch
):
    monkeypatch.setenv(SCHEDULER_ADDRESS, running_scheduler)
    assert scheduler_address() == running_scheduler
    # the cluster's shape would start two workers; the running scheduler has one
    with dask_client(ClusterConfig(n_workers=2)) as client:
        assert client.scheduler is not None
        assert client.scheduler.address == running_scheduler
        assert worker_count(client) == 1


def test_without_an_address_local_clusters_start_side_by_side_without_a_word(monkeypatch):
    monkeypatch.setenv(SCHEDULER_ADDRESS, " ")
    assert scheduler_address() is None
    assert scheduler_address({}) is None
    config = ClusterConfig(n_workers=1, threads_per_worker=1, processes=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with dask_client(config) as first, dask_client(config) as second:
            assert worker_count(first) == worker_count(second) == 1
            assert first.scheduler is not None and second.scheduler is not None
            assert first.scheduler.address != second.scheduler.address
            ports = {c.scheduler_info()["services"]["dashboard"] for c in (first, second)}
            assert 8787 not in ports and len(ports) == 2
    assert [str(w.message) for w in caught if "port" in str(w.message).lower()] == []


def bucket_of(ids: pl.Series, buckets: int = 1024) -> pl.Series:
    return ids.to_frame().select(customer_bucket(pl.col("customer_id"), buckets)).to_series()


@pytest.fixture(scope="module")
def stacked() -> pl.DataFrame:
    return snapshots(customers=6_000, cutoffs=3, seed=1)


def test_the_sample_keeps_whole_customers_the_same_at_every_cutoff(stacked):
    sample = customer_sample(stacked, stacked.height // 2, seed=3)
    kept = sample["customer_id"].unique()
    # every row of a kept customer, and no other
    expected = stacked.filter(pl.col("customer_id").is_in(kept.implode()))
    assert sample.sort("cutoff", "customer_id").equals(expected.sort("cutoff", "customer_id"))
    # whole buckets: every customer whose bucket was taken is kept
    taken = bucket_of(kept).unique()
    in_taken = stacked.filter(bucket_of(stacked["customer_id"]).is_in(taken.implode()))
    assert set(in_taken["customer_id"]) == set(kept)
    # the same customers at every cutoff: at each, the kept ones of those present
    for (cutoff,), rows in stacked.group_by("cutoff"):
        at = set(sample.filter(pl.col("cutoff") == cutoff)["customer_id"])
        assert at == set(rows["customer_id"]) & set(kept)


def test_the_sample_comes_near_its_budget_and_is_whole_under_it(stacked):
    for budget in (stacked.height // 2, stacked.height // 4, 1_000):
        assert customer_sample(stacked, budget, seed=1).height == pytest.approx(budget, rel=0.03)
    assert customer_sample(stacked, stacked.height, seed=1).equals(stacked)
    with pytest.raises(ValueError, match="budget"):
        customer_sample(stacked, 0, seed=1)


def test_the_sample_is_reproducible_for_a_seed_and_lazy_like_eager(stacked):
    budget = stacked.height // 3
    first = customer_sample(stacked, budget, seed=11)
    assert customer_sample(stacked, budget, seed=11).equals(first)
    lazy = customer_sample(stacked.lazy(), budget, seed=11)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(first)
    other = customer_sample(stacked, budget, seed=12)
    assert set(other["customer_id"]) != set(first["customer_id"])


def test_the_model_asset_trains_in_process_unless_workers_or_a_cluster_are_named(
    running_scheduler, monkeypatch
):
    monkeypatch.delenv(SCHEDULER_ADDRESS, raising=False)
    with training_client(0) as client:
        assert client is None
    monkeypatch.setenv(SCHEDULER_ADDRESS, running_scheduler)
    with training_client(0) as client:
        assert client is not None and client.scheduler is not None
        assert client.scheduler.address == running_scheduler
