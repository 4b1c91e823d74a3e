"""The data dictionary (asset `feature_dictionary`): every feature of the registry documented, one
markdown section per touchpoint, so a reader of the scored list can look up what a feature means and
the sentence an agent reads when it drives a customer's risk."""

from __future__ import annotations

from features.feature import FeatureDef


def data_dictionary(registry: list[FeatureDef]) -> str:
    """The feature table documented: one markdown section per touchpoint, a row per feature."""
    lines = [
        "# Feature dictionary",
        "",
        "Generated from the touchpoint catalogue and the feature registry (`features/families.py`,",
        "`features/feature_plan.py`); do not edit by hand. Every feature is computed per customer",
        "from rows strictly before the cutoff; windows count back from the cutoff.",
        "",
        f"{len(registry)} features.",
    ]
    header = [
        "| feature | phase | family | description | reason shown to agents | reason if missing |",
        "|---|---|---|---|---|---|",
    ]
    for touchpoint in dict.fromkeys(d.touchpoint for d in registry):
        defs = [d for d in registry if d.touchpoint == touchpoint]
        lines += ["", f"## {touchpoint}", "", *header]
        lines += [
            f"| `{d.name}` | {d.phase} | {d.family} | {d.description} | {d.reason_pattern()} "
            f"| {d.reason_missing or ''} |"
            for d in defs
        ]
    return "\n".join(lines) + "\n"
