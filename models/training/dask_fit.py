"""Fitting the classifier on a Dask cluster with `xgboost.dask`, for `fit_booster` and `fit_on_all`
when they are given a client (`models.training.cluster.dask_client`).

The classifier's settings are the in-process one's (`models.training.train`), copied, so the two
paths cannot drift apart; and what comes back is an ordinary `xgb.XGBClassifier` holding the trained
booster, so calibration, MLflow logging and TreeSHAP see the same type either way. On one worker
the booster is the in-process one, bit for bit; on several it is not, nor is one run of several
workers the next (each worker sketches and subsamples its own rows), and only the ranking compares.

The rows go to the workers as Polars slices, one per worker, and become pandas there (what a
dask dataframe is made of), so this process makes no pandas copy of them for XGBoost (the linear
base, when the form has one, still computes its margin here, as in-process).
"""

from __future__ import annotations

from typing import cast

import dask.dataframe as dd
import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb
from distributed import Client, Future
from xgboost.dask import DaskXGBClassifier

from models.training.cluster import worker_count

LABEL = "churned"
# the linear base's margin travels beside the features and label so that the three stay aligned
# partition by partition; a name no feature can have
BASE_MARGIN = "__base_margin__"


def polars_to_pandas(part: pl.DataFrame) -> pd.DataFrame:
    """One partition made pandas, on the worker that holds it."""
    return part.to_pandas()


def dask_frame(client: Client, frame: pl.DataFrame) -> dd.DataFrame:
    """`frame` spread over the client's workers: one contiguous slice of rows per worker
    (scattered as Polars, turned into pandas where it lands), as a dask dataframe."""
    if frame.height == 0:
        raise ValueError("cannot train on Dask with no rows: the frame given to fit is empty")
    rows = -(-frame.height // min(worker_count(client), frame.height))
    slices = [frame.slice(start, rows) for start in range(0, frame.height, rows)]
    # a synchronous client's scatter returns the futures (its hint also allows a coroutine)
    scattered = cast(list[Future], client.scatter(slices))
    parts = client.map(polars_to_pandas, scattered)
    return dd.from_delayed(parts, meta=frame.head(0).to_pandas(), verify_meta=False)


def _with_margin(frame: pl.DataFrame, features: list[str], margin: np.ndarray | None):
    columns = frame.select(*features, LABEL)
    return columns if margin is None else columns.with_columns(pl.Series(BASE_MARGIN, margin))


def fit_on_dask(
    client: Client,
    classifier: xgb.XGBClassifier,
    fit: pl.DataFrame,
    features: list[str],
    base_margin: np.ndarray | None = None,
    validation: pl.DataFrame | None = None,
    validation_base_margin: np.ndarray | None = None,
) -> xgb.XGBClassifier:
    """`classifier`'s settings trained by `xgboost.dask` on `fit` (features and `churned`),
    starting from `base_margin` if given, early-stopped on `validation` when the settings ask for
    it (as the in-process fit: the validation log-loss, `early_stopping_rounds`).

    Returns a new, fitted `xgb.XGBClassifier` with `classifier`'s settings and the trained booster
    (its best iteration included); `classifier` itself is left unfitted."""
    if base_margin is not None and validation is not None and validation_base_margin is None:
        raise ValueError("a linear base needs its margin on the validation rows too")
    params = classifier.get_params()
    model = DaskXGBClassifier(**params)
    model.client = client
    train = dask_frame(client, _with_margin(fit, features, base_margin))
    eval_set, base_margin_eval_set = None, None
    if validation is not None:
        held = dask_frame(client, _with_margin(validation, features, validation_base_margin))
        eval_set = [(held[features], held[LABEL])]
        if validation_base_margin is not None:
            base_margin_eval_set = [held[BASE_MARGIN]]
    # xgboost.dask looks up the current client even when given one: make it `client`, for this
    # call only, so a caller's other clients (or none) are left alone
    with client.as_current():
        model.fit(
            train[features],
            train[LABEL],
            base_margin=None if base_margin is None else train[BASE_MARGIN],
            eval_set=eval_set,
            base_margin_eval_set=base_margin_eval_set,
            verbose=False,
        )
    fitted = xgb.XGBClassifier(**params)
    fitted.load_model(bytearray(model.get_booster().save_raw("ubj")))
    return fitted
