"""Population stability index (PSI) per feature: how far the scoring population has moved from
the one the model learned on.

PSI = sum over bins of (actual share - expected share) * ln(actual share / expected share), with
bins cut at the reference's deciles and missing values as a bin of their own (a feature going
missing is drift too). Rule of thumb: below 0.1 stable, 0.1-0.25 moving, above 0.25 shifted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import polars as pl

from features.families import TENURE_DAYS
from features.feature import FeatureDef

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
EPSILON = 1e-4  # an empty bin's share, so that ln() stays finite
# the scoring customers the drift check bins: whole buckets, until they hold this many in all
# (every one, where the buckets hold fewer)
DRIFT_ROWS = 200_000


def bin_edges(reference: np.ndarray, bins: int) -> np.ndarray:
    """Inner cut points at the reference's quantiles; repeated ones collapse (count features are
    mostly zeros), so a discrete feature gets one bin per frequent value."""
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return np.array([])
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Values per bin: (-inf, e0], (e0, e1], ..., (e_last, inf), then missing. Counts of parts
    add up to the whole's, so a population is binned bucket by bucket."""
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="left"), minlength=edges.size + 1
    )
    return np.append(counts, missing.sum())


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin (`bin_counts`), an empty bin's at EPSILON."""
    return _shares(bin_counts(values, edges), values.size)


def _shares(counts: np.ndarray, n: int) -> np.ndarray:
    return np.clip(counts.astype(np.float64) / max(n, 1), EPSILON, None)


def psi(reference: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    edges = bin_edges(reference, bins)
    return _psi(shares(reference, edges), shares(actual, edges))


def _psi(expected: np.ndarray, observed: np.ndarray) -> float:
    return float(np.sum((observed - expected) * np.log(observed / expected)))


def _matrix(frame: pl.DataFrame, features: Sequence[str]) -> np.ndarray:
    """The features as float64 columns, missing (null or NaN alike) as NaN: one conversion of
    the frame, then numpy column by column."""
    return frame.select(
        pl.col(name).cast(pl.Float64).fill_nan(None) for name in features
    ).to_numpy()


def _mean(total: float, known: int, finite: bool) -> float | None:
    return total / known if finite and known else None


def psi_table(
    reference: pl.DataFrame,
    actual: Iterable[pl.DataFrame],
    features: Sequence[str],
    bins: int = 10,
) -> pl.DataFrame:
    """PSI per feature, worst first, with each side's mean and missing share so a reader sees which
    way it moved. `actual` comes in parts (customer buckets), binned one at a time: memory holds
    one part, never the whole scoring population."""
    expected = _matrix(reference, features)
    edges = [bin_edges(expected[:, j], bins) for j in range(len(features))]
    counts = [np.zeros(e.size + 2, dtype=np.int64) for e in edges]
    total = [0.0] * len(features)
    finite = [False] * len(features)
    rows_seen = 0
    for part in actual:
        rows_seen += part.height
        observed = _matrix(part, features)
        for j in range(len(features)):
            counts[j] += bin_counts(observed[:, j], edges[j])
            present = observed[~np.isnan(observed[:, j]), j]
            total[j] += float(present.sum())
            finite[j] |= bool(np.isfinite(present).any())
    rows = []
    for j, name in enumerate(features):
        ref, missing = expected[:, j], int(counts[j][-1])
        rows.append(
            {
                "feature": name,
                "psi": _psi(shares(ref, edges[j]), _shares(counts[j], rows_seen)),
                "reference_mean": float(np.nanmean(ref)) if np.isfinite(ref).any() else None,
                "actual_mean": _mean(total[j], rows_seen - missing, finite[j]),
                "reference_missing": float(np.isnan(ref).mean()) if ref.size else 0.0,
                "actual_missing": missing / rows_seen if rows_seen else 0.0,
            }
        )
    schema = {
        "feature": pl.String,
        "psi": pl.Float64,
        "reference_mean": pl.Float64,
        "actual_mean": pl.Float64,
        "reference_missing": pl.Float64,
        "actual_missing": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema).sort("psi", descending=True)


def shared_numeric_features(
    reference: pl.DataFrame | pl.LazyFrame,
    actual: pl.DataFrame | pl.LazyFrame,
    exclude: Sequence[str] = (),
) -> list[str]:
    """Numeric columns both frames (or scans) hold, in the reference's order (the label and ids
    excluded)."""
    held = actual.collect_schema()
    return [
        c
        for c, t in reference.collect_schema().items()
        if c in held and t.is_numeric() and c not in exclude
    ]


def drift_features(
    registry: Sequence[FeatureDef], reference: pl.DataFrame, actual: pl.DataFrame | pl.LazyFrame
) -> list[str]:
    """The features whose drift says something: numeric in both frames, in the registry's order,
    and not one that ages (`FeatureDef.ages`).

    Tenure, days since the first purchase, the whole history's counts and value, and the BG/NBD
    figures built on the customer's age all grow between the newest training cutoff and as_of
    (90 days and more apart) for every customer who stays: their PSI is the gap between the two
    dates, not a change in the customers, and a check that always warns is a check nobody reads.
    They are left out rather than shifted by the gap, since only tenure grows by exactly the gap
    (a purchase count grows by what each customer bought). Features over fixed windows, rates,
    gaps and recencies stay: those hold still for a customer whose behaviour holds still.
    """
    numeric = set(shared_numeric_features(reference, actual))
    return [d.name for d in registry if d.name in numeric and not d.ages]


def established(frame: Frame, min_days: int) -> Frame:
    """The customers known for at least `min_days` at their cutoff (all of them where the frame has
    no tenure).

    The drift check compares these on both sides, like with like: a customer younger than a
    feature's window has only part of the window to fill, so a change in how many customers are
    new (the demo world, for one, stops signing customers up 12 weeks before its end) would move
    every windowed count without anyone's behaviour changing. How many customers are new is the
    business's growth, not the model's ageing."""
    if TENURE_DAYS not in frame.collect_schema():
        return frame
    return frame.filter(pl.col(TENURE_DAYS) >= min_days)


def drift_table(
    registry: Sequence[FeatureDef],
    training_snapshots: pl.LazyFrame,
    scoring_features: Sequence[pl.LazyFrame],
    bins: int,
    window_days: int,
) -> pl.DataFrame:
    """PSI per feature of the scoring population against the newest training cutoff's, the one
    scoring should resemble most: like with like (`established`, over customers known for
    `window_days`, unless one side has none, a young business), over the features whose drift
    says something (`drift_features`). The scoring features come as scans of their buckets, read
    one at a time, and only as many buckets as hold DRIFT_ROWS of the customers compared: a
    bucket is a hash sample of the customers already, and the shares of ten bins are as sure at
    200,000 customers as at a million (binning every customer took 6 s at 839,000, twice a
    run)."""
    reference = training_snapshots.filter(pl.col("cutoff") == pl.col("cutoff").max()).collect()
    known = established(reference, window_days)
    settled = [established(part, window_days) for part in scoring_features]
    if not known.is_empty() and any(_height(part) for part in settled):
        reference, scoring_features = known, settled
    taken: list[pl.LazyFrame] = []
    compared = 0
    for part in scoring_features:
        if compared >= DRIFT_ROWS:
            break
        taken.append(part)
        compared += _height(part)
    features = drift_features(registry, reference, taken[0] if taken else reference.clear())
    parts = (part.select(features).collect() for part in taken)
    return psi_table(reference, parts, features, bins)


def _height(scan: pl.LazyFrame) -> int:
    return scan.select(pl.len()).collect().item()
