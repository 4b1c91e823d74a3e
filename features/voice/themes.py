"""What customers say at each touchpoint, as themes (asset `voice_themes`, and the feature plan's
`voice` themes the features count).

Comments and ticket text are grouped by touchpoint and band (`features.voice.bands`), and each
group's texts are clustered into themes, each labelled by its most distinctive terms. The method,
chosen against counting frequent phrases (`make voice-methods`, benchmarks/voice_methods.py),
needs no language resources, so it reads English, German and Portuguese
alike:

- words and word pairs, accents stripped, weighted by TF-IDF; the corpus's own function words
  (terms in a few percent of the texts of every touchpoint and band: "the", "de", "und") are
  learned and left out, since no stop-word list fits every language;
- latent semantic analysis (truncated SVD) and k-means, the number of themes chosen by silhouette;
- each theme labelled by class-based TF-IDF (a term frequent in this theme and rare in the others)
  and kept as its strongest terms with their weights.

A text belongs to the theme of its group whose terms it holds most weight of (`assign_themes`), a
pure function of the text and the themes, so a comment's theme never depends on later comments and
the same themes give the same features in training and scoring. The theme that gathers what no
other theme explains (the least cohesive, where clustering leaves the short and mixed texts) is
marked `catch_all`: it is shown, as "other comments", but never a feature.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import polars as pl
import sklearn
from scipy.sparse import csr_matrix
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer, strip_accents_unicode
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import normalize

from features.catalogue import Catalogue
from features.ingest.scrub import PLACEHOLDERS
from features.voice.bands import TICKET, answer_band

# a token is two or more letters: numbers, prices and placeholders are not what a theme is about
TOKENS = r"(?u)\b[^\W\d_]{2,}\b"
MIN_COMMENTS = 30  # a group with fewer texts is counted, not clustered
MAX_THEMES = 8
# a group's themes are fitted on at most this many of its texts (a seeded sample), then every text
# is assigned: themes of a few thousand texts are those of all of them, at a fraction of the time
FIT_TEXTS = 5_000
# the function words and each term's rarity are read from at most this many texts (a seeded
# sample of the corpus, so every group keeps its share): a word's share of texts is as clear in
# a hundred thousand as in millions, and counting millions of texts' bigrams takes minutes
CORPUS_TEXTS = 100_000
THEME_TERMS = 30  # the terms a theme keeps to assign texts with
LABEL_TERMS = 3
EXAMPLE_TEXTS = 500  # the texts of a theme its examples are chosen from, its first ones
# a term in at least this share of the texts of every group is one of the corpus's function words
FUNCTION_WORD_SHARE = 0.03
SEED = 0
DOCUMENT_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "id": pl.String(),
        "customer_id": pl.String(),
        "ts": pl.Datetime("us", "UTC"),
        "touchpoint": pl.String(),
        "band": pl.String(),
        "text": pl.String(),
    }
)
# what identifies a text and its theme: the text itself and the group it is read in
_ASSIGNED_BY = ["source", "id", "touchpoint", "band", "text"]
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


@dataclass(frozen=True)
class Theme:
    """One theme of one (touchpoint, band): `key` names it in features (`<touchpoint>_says_<key>`),
    `label` is what people read, `terms` and `weights` assign texts to it."""

    touchpoint: str
    band: str
    key: str
    label: str
    terms: tuple[str, ...]
    weights: tuple[float, ...]
    catch_all: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "touchpoint": self.touchpoint,
            "band": self.band,
            "key": self.key,
            "label": self.label,
            "terms": list(self.terms),
            "weights": [round(w, 6) for w in self.weights],
            "catch_all": self.catch_all,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Theme:
        return cls(
            touchpoint=data["touchpoint"],
            band=data["band"],
            key=data["key"],
            label=data["label"],
            terms=tuple(data["terms"]),
            weights=tuple(float(w) for w in data["weights"]),
            catch_all=bool(data["catch_all"]),
        )


def _prepare(text: str) -> str:
    return strip_accents_unicode(_PLACEHOLDER.sub(" ", text).lower())


def documents(
    surveys: pl.DataFrame | pl.LazyFrame,
    support: pl.DataFrame | pl.LazyFrame,
    catalogue: Catalogue,
) -> pl.DataFrame:
    """Every survey comment and ticket text with its touchpoint (the catalogue's, as the features
    count it) and band, in DOCUMENT_SCHEMA. Reads only the rows with text, so the tables can be
    lazy scans."""
    answers = (
        surveys.lazy()
        .filter(pl.col("comment").is_not_null())
        .select(
            pl.lit("surveys").alias("source"),
            pl.col("response_id").alias("id"),
            "customer_id",
            "ts",
            catalogue.survey_touchpoint().alias("touchpoint"),
            answer_band().alias("band"),
            pl.col("comment").alias("text"),
        )
    )
    tickets = (
        support.lazy()
        .filter(pl.col("text").is_not_null())
        .select(
            pl.lit("support").alias("source"),
            pl.col("ticket_id").alias("id"),
            "customer_id",
            pl.col("opened_at").alias("ts"),
            catalogue.support_touchpoint().alias("touchpoint"),
            pl.lit(TICKET).alias("band"),
            "text",
        )
        if "text" in support.lazy().collect_schema()
        else pl.LazyFrame(schema=DOCUMENT_SCHEMA)
    )
    return pl.concat(
        [answers.cast(DOCUMENT_SCHEMA), tickets.cast(DOCUMENT_SCHEMA)]  # type: ignore[arg-type]
    ).collect()


def function_words(docs: pl.DataFrame) -> list[str]:
    """Terms in at least FUNCTION_WORD_SHARE of the texts of every (touchpoint, band) with
    MIN_COMMENTS texts: the corpus's own function words, whatever its language. It takes two
    such groups to tell a function word from a group's topic, so a corpus of one learns none."""
    groups = [
        g["text"].to_list()
        for _, g in docs.group_by("touchpoint", "band")
        if g.height >= MIN_COMMENTS
    ]
    if len(groups) < 2:
        return []
    vectorizer = CountVectorizer(preprocessor=_prepare, token_pattern=TOKENS, binary=True)
    counts = csr_matrix(vectorizer.fit_transform([t for texts in groups for t in texts]))
    terms = vectorizer.get_feature_names_out()
    common = np.ones(len(terms), dtype=bool)
    start = 0
    for texts in groups:
        share = np.asarray(counts[start : start + len(texts)].sum(axis=0)).ravel() / len(texts)
        common &= share >= FUNCTION_WORD_SHARE
        start += len(texts)
    return sorted(terms[common].tolist())


def corpus_fingerprint(docs: pl.DataFrame, before: datetime | None = None) -> str:
    """A hash of what `fit_themes(docs, before)` reads, in its order (its samples are drawn by
    position), and of how it fits: equal fingerprints give equal themes, so the themes of an
    unchanged corpus (every day of a month: the fit stops at the newest labelled cutoff) are
    reused instead of fitted again, half a minute at five million texts. The row hashes are
    Polars', so its version is part of it, with scikit-learn's."""
    if before is not None:
        docs = docs.filter(pl.col("ts") < before)
    rows = docs.select(_ASSIGNED_BY).hash_rows(seed=SEED).to_numpy()
    method = (MIN_COMMENTS, MAX_THEMES, FIT_TEXTS, CORPUS_TEXTS, THEME_TERMS, LABEL_TERMS)
    how = repr((pl.__version__, sklearn.__version__, method, FUNCTION_WORD_SHARE, SEED))
    return hashlib.sha256(how.encode() + rows.tobytes()).hexdigest()[:16]


def fit_themes(docs: pl.DataFrame, before: datetime | None = None) -> tuple[Theme, ...]:
    """The themes of every (touchpoint, band) with at least MIN_COMMENTS texts, from the texts
    dated before `before` (all of them without it)."""
    if before is not None:
        docs = docs.filter(pl.col("ts") < before)
    corpus = docs.sample(CORPUS_TEXTS, seed=SEED) if docs.height > CORPUS_TEXTS else docs
    stop = function_words(corpus)
    rarity = _rarity(corpus["text"].to_list())
    themes: list[Theme] = []
    keys: dict[str, set[str]] = {}  # per touchpoint: its features are named by the key
    for (touchpoint, band), group in sorted(
        docs.group_by("touchpoint", "band"), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))
    ):
        if group.height >= MIN_COMMENTS:
            fitted = group.sample(FIT_TEXTS, seed=SEED) if group.height > FIT_TEXTS else group
            texts = fitted["text"].to_list()
            taken = keys.setdefault(str(touchpoint), set())
            themes += _group_themes(str(touchpoint), str(band), texts, stop, rarity, taken)
    return tuple(themes)


def _rarity(texts: list[str]) -> dict[str, float]:
    """Each term's inverse document frequency over every text of the corpus: what ranks a
    theme's own words ("dinheiro", "refund") above the frequent ones it shares with every other
    complaint ("meu", "my")."""
    counter = CountVectorizer(
        preprocessor=_prepare, token_pattern=TOKENS, ngram_range=(1, 2), binary=True
    )
    try:
        held = csr_matrix(counter.fit_transform(texts))
    except ValueError:
        return {}
    df = np.asarray(held.sum(axis=0)).ravel()
    idf = np.log(len(texts) / df)
    return dict(zip(counter.get_feature_names_out().tolist(), idf.tolist(), strict=True))


def _group_themes(
    touchpoint: str,
    band: str,
    texts: list[str],
    stop: list[str],
    rarity: dict[str, float],
    keys: set[str],
) -> list[Theme]:
    vectorizer = TfidfVectorizer(
        preprocessor=_prepare,
        token_pattern=TOKENS,
        ngram_range=(1, 2),
        min_df=3,
        sublinear_tf=True,
        stop_words=stop or None,
    )
    try:
        weighted = csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # no term in three texts: nothing to group by
        return []
    weighted = weighted[weighted.getnnz(axis=1) > 0]
    terms = vectorizer.get_feature_names_out()
    if weighted.shape[0] < MIN_COMMENTS or len(terms) < 3:
        return []
    dims = min(50, len(terms) - 1, weighted.shape[0] - 1)
    reduced = np.asarray(normalize(TruncatedSVD(dims, random_state=SEED).fit_transform(weighted)))
    labels = _clusters(reduced)
    k = int(labels.max()) + 1
    counts = np.vstack([np.asarray(weighted[labels == c].sum(axis=0)).ravel() for c in range(k)])
    scores = _class_tfidf(counts) * np.array([rarity.get(str(t), 1.0) for t in terms])
    cohesion = [
        float((reduced[labels == c] @ reduced[labels == c].mean(axis=0)).mean()) for c in range(k)
    ]
    loosest = int(np.argmin(cohesion)) if k > 2 else -1
    themes = []
    for c in np.argsort(-np.bincount(labels, minlength=k)):
        top = np.argsort(-scores[c])[:THEME_TERMS]
        top = top[scores[c][top] > 0]
        label_terms = _label_terms([str(terms[i]) for i in top])
        words = dict.fromkeys(w for term in label_terms[:2] for w in term.split())
        key = _unique_key("_".join(list(words)[:3]), keys)
        themes.append(
            Theme(
                touchpoint,
                band,
                key,
                ", ".join(label_terms),
                tuple(str(terms[i]) for i in top),
                tuple(float(scores[c][i]) for i in top),
                catch_all=bool(c == loosest),
            )
        )
    return themes


def _clusters(reduced: np.ndarray) -> np.ndarray:
    """k-means labels, k from 2 to MAX_THEMES (at most one per 15 texts) by silhouette."""
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, max(2, min(MAX_THEMES, reduced.shape[0] // 15)) + 1):
        labels = KMeans(n_clusters=k, n_init=cast(Any, 3), random_state=SEED).fit_predict(reduced)
        if len(set(labels.tolist())) < 2:
            continue
        score = float(
            silhouette_score(
                reduced, labels, sample_size=min(2000, reduced.shape[0]), random_state=SEED
            )
        )
        if best is None or score > best[0]:
            best = (score, labels)
    return best[1] if best is not None else np.zeros(reduced.shape[0], dtype=np.int64)


def _class_tfidf(counts: np.ndarray) -> np.ndarray:
    """Class-based TF-IDF: a term's share of its theme's weight, times how rare it is across the
    group's themes."""
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    idf = np.log1p(counts.sum() / counts.shape[0] / np.maximum(counts.sum(axis=0), 1e-12))
    return tf * idf


def _label_terms(terms: list[str]) -> list[str]:
    """The first LABEL_TERMS terms, leaving out a word already shown inside a shown pair ("not
    received, received" reads as "not received")."""
    shown: list[str] = []
    for term in terms:
        words = term.split()
        if any(set(words) <= set(s.split()) for s in shown):
            continue
        shown = [s for s in shown if not (len(words) > 1 and s in words)] + [term]
        if len(shown) == LABEL_TERMS:
            break
    return shown


def _unique_key(key: str, taken: set[str]) -> str:
    unique, n = key, 2
    while unique in taken:
        unique, n = f"{key}_{n}", n + 1
    taken.add(unique)
    return unique


def assign_themes(docs: pl.DataFrame, themes: tuple[Theme, ...]) -> pl.Series:
    """The key of each text's theme (null where its group has no themes or it holds none of their
    terms): the theme of its (touchpoint, band) whose terms carry the most weight in it."""
    keys: list[str | None] = [None] * docs.height
    if not themes or docs.is_empty():
        return pl.Series("theme", keys, dtype=pl.String)
    indexed = docs.select("touchpoint", "band", "text").with_row_index("row")
    for (touchpoint, band), group in indexed.group_by("touchpoint", "band"):
        mine = [t for t in themes if (t.touchpoint, t.band) == (touchpoint, band)]
        texts = group.filter(pl.col("text").is_not_null())
        if not mine or texts.is_empty():
            continue
        vocabulary = sorted({term for t in mine for term in t.terms})
        counter = CountVectorizer(
            preprocessor=_prepare,
            token_pattern=TOKENS,
            ngram_range=(1, 2),
            vocabulary=vocabulary,
            binary=True,
        )
        held = csr_matrix(counter.transform(texts["text"].to_list()))
        weights = np.zeros((len(vocabulary), len(mine)))
        position = {term: i for i, term in enumerate(vocabulary)}
        for j, theme in enumerate(mine):
            for term, weight in zip(theme.terms, theme.weights, strict=True):
                weights[position[term], j] = weight
        scores = np.asarray(held @ weights)
        best = scores.argmax(axis=1)
        for row, j, score in zip(texts["row"].to_list(), best, scores.max(axis=1), strict=True):
            if score > 0:
                keys[row] = mine[j].key
    return pl.Series("theme", keys, dtype=pl.String)


def themes_fingerprint(themes: tuple[Theme, ...]) -> str:
    """A short hash of the themes as stored: texts assigned with equal fingerprints keep their
    theme, so assignments made on an earlier run can be reused."""
    stored = json.dumps([t.to_json() for t in themes], sort_keys=True)
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def text_themes(
    docs: pl.DataFrame, themes: tuple[Theme, ...], earlier: pl.DataFrame | None = None
) -> pl.DataFrame:
    """`docs` (DOCUMENT_SCHEMA) with the `theme` of each text. `earlier` is a previous result for
    the same themes: a text found there unchanged keeps its theme and only the others are
    assigned, so a day's run assigns the day's new texts rather than every text again (assigning
    takes a few microseconds a text, half a minute at five million)."""
    if earlier is None or earlier.is_empty():
        kept, new = docs.clear().with_columns(theme=pl.lit(None, dtype=pl.String)), docs
    else:
        earlier = earlier.select(*_ASSIGNED_BY, "theme")
        kept = docs.join(earlier, on=_ASSIGNED_BY, how="inner", nulls_equal=True)
        new = docs.join(earlier, on=_ASSIGNED_BY, how="anti", nulls_equal=True)
    return pl.concat([kept, new.with_columns(assign_themes(new, themes))])


def theme_table(docs: pl.DataFrame, themes: tuple[Theme, ...], examples: int = 2) -> pl.DataFrame:
    """One row per theme: its texts (`docs` with the `theme` column `assign_themes` gives), their
    share of the (touchpoint, band)'s texts, and up to `examples` of them, the shortest readable
    ones that hold most of the label's terms."""
    in_group = dict(
        ((t, b), n) for t, b, n in docs.group_by("touchpoint", "band").len().iter_rows()
    )
    # one pass over the texts for every theme (a filter per theme took 3.6 s over 4.7M texts):
    # its count, and its first EXAMPLE_TEXTS texts in order, where `_examples` looks
    held = {
        (t, b, key): (n, texts)
        for t, b, key, n, texts in docs.filter(pl.col("theme").is_not_null())
        .group_by("touchpoint", "band", "theme")
        .agg(pl.len(), pl.col("text").head(EXAMPLE_TEXTS))
        .iter_rows()
    }
    rows = []
    for theme in themes:
        count, texts = held.get((theme.touchpoint, theme.band, theme.key), (0, []))
        rows.append(
            {
                "touchpoint": theme.touchpoint,
                "band": theme.band,
                "theme": theme.key,
                "label": theme.label,
                "terms": ", ".join(theme.terms[:8]),
                "comments": count,
                "share_of_band": count / max(in_group.get((theme.touchpoint, theme.band), 0), 1),
                "catch_all": theme.catch_all,
                "examples": _examples(texts, theme, examples),
            }
        )
    schema = {
        "touchpoint": pl.String(),
        "band": pl.String(),
        "theme": pl.String(),
        "label": pl.String(),
        "terms": pl.String(),
        "comments": pl.Int64(),
        "share_of_band": pl.Float64(),
        "catch_all": pl.Boolean(),
        "examples": pl.List(pl.String()),
    }
    return pl.DataFrame(rows, schema=schema).sort(
        "touchpoint", "band", "catch_all", "comments", descending=[False, False, False, True]
    )


def _examples(texts: list[str], theme: Theme, count: int) -> list[str]:
    """The shortest readable texts holding most of the label's terms, and among those the ones
    whose words the theme's other texts use too: a word no one else wrote is most often a typo."""
    label = theme.label.split(", ")
    sample = texts[:EXAMPLE_TEXTS]
    prepared = {t: _prepare(t) for t in sample}
    tokens = {t: tuple(re.findall(TOKENS, p)) for t, p in prepared.items()}
    writers = Counter(w for t in sample for w in set(tokens[t]))
    readable = sorted(
        {t for t in sample if 15 <= len(t) <= 240},
        key=lambda t: (
            -sum(term in prepared[t] for term in label),
            sum(writers[w] < 3 for w in tokens[t]),
            len(t),
            t,
        ),
    )
    shown: list[str] = []
    said: set[tuple[str, ...]] = set()  # "Slow!" and "slow." say the same: one of them is shown
    for text in readable:
        if tokens[text] not in said:
            shown.append(text)
            said.add(tokens[text])
        if len(shown) == count:
            break
    return shown
