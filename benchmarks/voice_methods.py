"""The theme method against the simple way on the Olist reviews (real Portuguese):
`make voice-methods`. (A simulated world with planted themes joins it once the simulator writes
comments.)

- themes: features.voice.themes (TF-IDF, learned function words, LSA, k-means, class-based TF-IDF
  labels).
- counting: what one would do by hand: in each touchpoint and band, the most frequent word pairs
  after the same function words are left out, each text counted under the most frequent pair it
  holds.

It prints the delivery touchpoint's disappointment themes with their terms and counts, to be
read.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import CountVectorizer

from features.voice.bands import answer_band
from features.voice.themes import (
    DOCUMENT_SCHEMA,
    MIN_COMMENTS,
    TOKENS,
    _prepare,
    assign_themes,
    fit_themes,
    function_words,
)

METHODS = ("themes", "counting")


def counting(docs: pl.DataFrame) -> tuple[pl.Series, dict[tuple[str, str, str], str]]:
    """Each text's most frequent word pair in its group; the label of a 'theme' is the pair."""
    stop = function_words(docs)
    keys: list[str | None] = [None] * docs.height
    labels: dict[tuple[str, str, str], str] = {}
    indexed = docs.with_row_index("row")
    for (touchpoint, band), group in indexed.group_by("touchpoint", "band"):
        if group.height < MIN_COMMENTS:
            continue
        counter = CountVectorizer(
            preprocessor=_prepare,
            token_pattern=TOKENS,
            ngram_range=(2, 2),
            stop_words=stop or None,
            binary=True,
        )
        try:
            held = csr_matrix(counter.fit_transform(group["text"].to_list()))
        except ValueError:
            continue
        pairs = [str(p) for p in counter.get_feature_names_out()]
        frequency = Counter(dict(zip(pairs, np.asarray(held.sum(axis=0)).ravel(), strict=True)))
        rank = {p: i for i, (p, _) in enumerate(frequency.most_common())}
        for row, i in zip(group["row"].to_list(), range(group.height), strict=True):
            present = [pairs[j] for j in held[i].indices]
            if present:
                best = min(present, key=rank.__getitem__)
                keys[row] = best
                labels[(str(touchpoint), str(band), best)] = best
    return pl.Series("theme", keys, dtype=pl.String), labels


def _labels_of(method: str, docs: pl.DataFrame) -> tuple[pl.DataFrame, dict, float]:
    started = time.perf_counter()
    if method == "themes":
        themes = fit_themes(docs)
        assigned = assign_themes(docs, themes)
        labels = {(t.touchpoint, t.band, t.key): t.label for t in themes if not t.catch_all}
    else:
        assigned, labels = counting(docs)
    return docs.with_columns(assigned), labels, time.perf_counter() - started


def olist(datasets: Path) -> None:
    path = datasets / "olist_subset" / "olist_order_reviews_dataset.csv.gz"
    reviews = pl.read_csv(path, infer_schema=False)
    text = pl.concat_str(
        ["review_comment_title", "review_comment_message"], separator=": ", ignore_nulls=True
    ).str.strip_chars()
    docs = (
        reviews.select(
            pl.lit("surveys").alias("source"),
            pl.col("review_id").alias("id"),
            pl.lit("").alias("customer_id"),
            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("ts"),
            pl.lit("delivery").alias("touchpoint"),
            pl.lit("csat").alias("survey_type"),
            pl.col("review_score").cast(pl.Float64).alias("score"),
            text.alias("text"),
        )
        .filter(pl.col("text").is_not_null() & (pl.col("text") != ""))
        .with_columns(band=answer_band())
        .select(DOCUMENT_SCHEMA.names())
        .cast(DOCUMENT_SCHEMA)
    )
    print(f"Olist reviews: {docs.height:,} texts")
    for method in METHODS:
        labelled, labels, seconds = _labels_of(method, docs)
        sizes = dict(
            labelled.filter(pl.col("band") == "disappointment").group_by("theme").len().iter_rows()
        )
        disappointed = [(k, v) for k, v in labels.items() if k[1] == "disappointment"]
        shown = sorted(((sizes.get(k[2], 0), v) for k, v in disappointed), reverse=True)[:10]
        print(f"  {method} ({seconds:.1f}s), delivery, disappointed:")
        for count, label in shown:
            print(f"    {count:5,}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description="the theme method against counting word pairs")
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    olist(args.datasets)


if __name__ == "__main__":
    main()
