"""The feature registry: every feature knows its touchpoint, phase, family and how to explain itself.

A feature is a pure function of the cutoff returning a Polars expression over one source as known
strictly before the cutoff: an aggregation over its rows (tickets, answers) or a value of its one
row per customer (the windows over customer-days, the customers table). Its reason template is the sentence a
retention agent reads when the feature drives a customer's risk, filled with the customer's value.
The families that generate features from the catalogue live in `features/families.py`.
"""

from __future__ import annotations

from features import families
from features.catalogue import Catalogue
from features.feature import JOURNEY, PROFILE, SOURCE_TIME, FeatureDef

__all__ = ["JOURNEY", "PROFILE", "SOURCE_TIME", "FeatureDef", "build_registry", "data_dictionary"]


def build_registry(
    catalogue: Catalogue, support_touchpoints: list[str], survey_pairs: list[tuple[str, str]], plans: list[str] = (), touched: list[str] | None = None
) -> list[FeatureDef]:
    """Touch features for the catalogue's touchpoints the data has any touch at (`touched`; None: all,
    a catalogue's full dictionary), support and survey features for the touchpoints it has tickets
    and answers for, and one indicator per plan (the same inputs give the same registry). A
    touchpoint nobody touched is one this business does not have (a table left out, say): its
    features would be empty for every customer, which the null-rate checks rightly stop."""
    defs: list[FeatureDef] = []
    for t in catalogue.touchpoints:
        if touched is None or t.name in touched:
            defs += families.touchpoint_features(catalogue, t)
        if t.name in support_touchpoints:
            defs += families.support_features(t)
        for touchpoint, survey_type in sorted(survey_pairs):
            if touchpoint == t.name:
                defs += families.survey_features(t, survey_type)
    defs += families.journey_features(catalogue)
    defs += families.profile_features(sorted(plans))
    names = [d.name for d in defs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"two features share a name: {duplicates}; rename a touchpoint in the catalogue")
    return defs


def data_dictionary(registry: list[FeatureDef]) -> str:
    """The feature table documented: one markdown section per touchpoint, a row per feature."""
    lines = [
        "# Feature dictionary",
        "",
        "Generated from the touchpoint catalogue and the feature registry (`features/registry.py`,",
        "`features/families.py`); do not edit by hand. Every feature is computed per customer from rows",
        "strictly before the cutoff; windows count back from the cutoff.",
        "",
        f"{len(registry)} features.",
    ]
    for touchpoint in dict.fromkeys(d.touchpoint for d in registry):
        defs = [d for d in registry if d.touchpoint == touchpoint]
        lines += ["", f"## {touchpoint}", "", "| feature | phase | family | description | reason shown to agents | reason if missing |", "|---|---|---|---|---|---|"]
        lines += [f"| `{d.name}` | {d.phase} | {d.family} | {d.description} | {d.reason_pattern()} | {d.reason_missing or ''} |" for d in defs]
    return "\n".join(lines) + "\n"
