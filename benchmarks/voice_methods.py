"""The theme method against the simple way, on a simulated world whose themes are known and on the
Olist reviews (real Portuguese): `make voice-methods`.

- themes: features.voice.themes (TF-IDF, learned function words, LSA, k-means, class-based TF-IDF
  labels).
- counting: what one would do by hand: in each touchpoint and band, the most frequent word pairs
  after the same function words are left out, each text counted under the most frequent pair it
  holds.

On the simulated world each text's planted theme is known (truth/voice.parquet), so it scores,
over the (touchpoint, band) groups with planted texts:
- biggest: whether the group's biggest theme (the catch-all aside) is mostly made of the group's
  most written planted theme;
- themes per topic: how many themes a planted theme is split over (themes mostly made of it);
- purity: the share of a theme's texts written about its main planted theme, weighted by size.
On Olist it prints the delivery touchpoint's disappointment themes with their terms and counts, to
be read.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import CountVectorizer

from demo.simulator import WorldConfig, simulate
from features.catalogue import load_catalogue
from features.voice.bands import answer_band
from features.voice.themes import (
    DOCUMENT_SCHEMA,
    MIN_COMMENTS,
    TOKENS,
    _prepare,
    assign_themes,
    documents,
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


def simulated(customers: int) -> None:
    world = simulate(
        WorldConfig(customers=customers, truth_replicates=0, end=datetime(2026, 12, 1, tzinfo=UTC))
    )
    docs = documents(world.surveys, world.support, load_catalogue())
    truth = world.voice.select("source", "id", planted="theme")
    print(f"simulated world: {customers:,} customers, {docs.height:,} texts")
    for method in METHODS:
        labelled, labels, seconds = _labels_of(method, docs)
        labelled = labelled.join(truth, on=["source", "id"], how="left")
        hits, groups, split, topics, pure, themed = 0, 0, 0, 0, 0, 0
        misses: list[str] = []
        for (touchpoint, band), group in labelled.group_by("touchpoint", "band"):
            keys = [k[2] for k in labels if k[:2] == (touchpoint, band)]
            planted = group["planted"].drop_nulls()
            if not keys or planted.is_empty():
                continue
            main = planted.mode().sort()[0]
            sizes = (
                group.filter(pl.col("theme").is_in(keys) & pl.col("planted").is_not_null())
                .group_by("theme")
                .agg(
                    texts=pl.len(),
                    about=pl.col("planted").mode().sort().first(),
                    of_it=(pl.col("planted") == pl.col("planted").mode().sort().first()).sum(),
                )
                .sort("texts", "theme", descending=[True, False])
            )
            if sizes.is_empty():
                continue
            groups += 1
            hits += sizes["about"][0] == main
            if sizes["about"][0] != main:
                misses.append(f"{touchpoint} {band}: {sizes['about'][0]} (main: {main})")
            split += sizes.height
            topics += sizes["about"].n_unique()
            pure += int(sizes["of_it"].sum())
            themed += int(sizes["texts"].sum())
        print(
            f"  {method:9s} biggest theme is the main planted one in {hits}/{groups} groups; "
            f"{split / max(topics, 1):.1f} themes per planted topic; "
            f"purity {pure / max(themed, 1):.2f}; {seconds:.1f}s"
        )
        for miss in sorted(misses):
            print(f"    biggest theme is about {miss}")


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
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--datasets", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    simulated(args.customers)
    if (args.datasets / "olist_subset").is_dir():
        olist(args.datasets)
    else:
        print(f"no Olist subset in {args.datasets}: the real-text half is skipped")


if __name__ == "__main__":
    main()
