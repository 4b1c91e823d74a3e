"""Pseudonymous customer ids: a keyed hash (HMAC-SHA256) of each id, applied where rows are
validated, so every stored table, the quarantine, Dagster's storage and MLflow hold the pseudonym
and only the retention list maps it back to the real id.

The key comes from the environment (`TOUCHPOINT_CHURN_PSEUDONYM_KEY`), never from a file in the
repository or the data root. Without the key a pseudonym cannot be turned back into an id, nor an
id into its pseudonym (a plain hash could be, by hashing every plausible id). Changing the key
changes every pseudonym: the champion's training rows no longer match today's customers, so
retrain after a change.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

KEY_VARIABLE = "TOUCHPOINT_CHURN_PSEUDONYM_KEY"
PREFIX = "p_"
CHARS = 24  # 96 bits of the digest: no collision among billions of customers


def pseudonym(customer_id: str, key: str) -> str:
    digest = hmac.new(key.encode(), customer_id.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:CHARS]


def pseudonymize(frame: pl.DataFrame, key: str | None, column: str = "customer_id") -> pl.DataFrame:
    """The frame with `column` replaced by its pseudonyms (unchanged without a key); each distinct
    id is hashed once."""
    if key is None or column not in frame.columns or frame.is_empty():
        return frame
    ids = frame[column].cast(pl.String)
    distinct = ids.drop_nulls().unique()
    hashed = pl.Series([pseudonym(i, key) for i in distinct.to_list()], dtype=pl.String)
    return frame.with_columns(
        ids.replace_strict(distinct, hashed, default=None, return_dtype=pl.String).alias(column)
    )


def real_ids(customer_ids: pl.Series, key: str) -> pl.DataFrame:
    """(pseudonym, customer_id) for the given real ids: what maps the retention list back."""
    ids = customer_ids.cast(pl.String).drop_nulls().unique()
    return pl.DataFrame(
        {"pseudonym": [pseudonym(i, key) for i in ids.to_list()], "customer_id": ids}
    )


def with_real_ids(frame: pl.DataFrame, ids: pl.DataFrame) -> pl.DataFrame:
    """The frame's pseudonymous `customer_id` replaced by the real id (`real_ids`)."""
    real = frame["customer_id"].replace_strict(
        ids["pseudonym"], ids["customer_id"], default=None, return_dtype=pl.String
    )
    return frame.with_columns(real.alias("customer_id"))
