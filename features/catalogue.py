"""The touchpoint catalogue: maps raw events to touchpoints and journey phases.

The catalogue is data (a TOML file) so that a business can add a touchpoint or remap an event type
without touching code; every feature and every attribution is keyed by the touchpoint it yields.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    # what `pl.when(...).then(...)` and its chained form return; polars does not export them
    from polars.expr.whenthen import ChainedThen, Then

DEFAULT_CATALOGUE = Path(__file__).with_name("touchpoints.toml")
PHASES = ("pre_purchase", "purchase", "post_purchase")
PHASE_LABELS = {
    "pre_purchase": "before purchase",
    "purchase": "during purchase",
    "post_purchase": "after purchase",
    "unassigned": "unassigned",
    "profile": "customer profile",
    "journey": "journey shape",
    "customer_value": "purchase history",
}
OTHER = "other"


class CatalogueError(ValueError):
    """The catalogue file is not usable; the message says which entry to fix."""


@dataclass(frozen=True)
class PageRule:
    event_types: tuple[str, ...]
    page_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Touchpoint:
    name: str
    phase: str
    label: str
    event_types: tuple[str, ...] = ()
    page_rules: tuple[PageRule, ...] = ()
    support_channels: tuple[str, ...] = ()
    surveys_without_touchpoint: bool = False
    moment_that_matters: bool = False


@dataclass(frozen=True)
class Catalogue:
    touchpoints: tuple[Touchpoint, ...]
    source: str = field(default="", compare=False)

    @property
    def fingerprint(self) -> str:
        """A short hash of the touchpoints and their rules: one catalogue, one set of features."""
        return hashlib.sha256(repr(self.touchpoints).encode()).hexdigest()[:12]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.touchpoints]

    def get(self, name: str) -> Touchpoint:
        for touchpoint in self.touchpoints:
            if touchpoint.name == name:
                return touchpoint
        raise KeyError(f"touchpoint {name!r} is not in the catalogue ({self.source})")

    def phase_of(self, name: str) -> str:
        return self.get(name).phase if name in self.names else "unassigned"

    def label_of(self, name: str) -> str:
        if name in self.names:
            return self.get(name).label
        return PHASE_LABELS.get(name, name.replace("_", " "))

    def clickstream_touchpoint(self) -> pl.Expr:
        """Expression over `event_type` and `page` giving the touchpoint; page rules win."""
        expr: Then | ChainedThen | None = None
        page = pl.col("page").fill_null("")
        rules: list[tuple[pl.Expr, str]] = []
        for touchpoint in self.touchpoints:
            for rule in touchpoint.page_rules:
                on_page = pl.any_horizontal([page.str.starts_with(p) for p in rule.page_prefixes])
                rules.append(
                    (pl.col("event_type").is_in(list(rule.event_types)) & on_page, touchpoint.name)
                )
        for touchpoint in self.touchpoints:
            if touchpoint.event_types:
                rules.append(
                    (pl.col("event_type").is_in(list(touchpoint.event_types)), touchpoint.name)
                )
        for condition, name in rules:
            expr = (
                pl.when(condition).then(pl.lit(name))
                if expr is None
                else expr.when(condition).then(pl.lit(name))
            )
        return pl.lit(OTHER) if expr is None else expr.otherwise(pl.lit(OTHER))

    def page_claimed(self) -> pl.Expr:
        """Whether some page rule could claim the `page`: any other page routes as no page at
        all."""
        page = pl.col("page").fill_null("")
        prefixes = [
            p for t in self.touchpoints for rule in t.page_rules for p in rule.page_prefixes
        ]
        return (
            pl.any_horizontal([page.str.starts_with(p) for p in prefixes])
            if prefixes
            else pl.lit(False)
        )

    def support_touchpoint(self) -> pl.Expr:
        """Expression over the support `channel` giving the touchpoint of a ticket."""
        mapping = {c: t.name for t in self.touchpoints for c in t.support_channels}
        return pl.col("channel").replace_strict(mapping, default=OTHER, return_dtype=pl.String)

    def survey_touchpoint(self) -> pl.Expr:
        """A survey naming a catalogue touchpoint counts toward it; one naming none goes to the
        catalogue's feedback touchpoint; one naming an unknown touchpoint goes to `other`."""
        default = next((t.name for t in self.touchpoints if t.surveys_without_touchpoint), OTHER)
        named = pl.col("touchpoint")
        return (
            pl.when(named.is_null() | (named == ""))
            .then(pl.lit(default))
            .when(named.is_in(self.names))
            .then(named)
            .otherwise(pl.lit(OTHER))
        )


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and check a catalogue file (the packaged default when `path` is None)."""
    path = Path(path) if path else DEFAULT_CATALOGUE
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise CatalogueError(f"cannot read touchpoint catalogue {path}: {err}") from err
    entries = raw.get("touchpoints")
    if not isinstance(entries, dict) or not entries:
        raise CatalogueError(f"{path}: expected [touchpoints.<name>] tables, found none")
    touchpoints = [_touchpoint(name, spec, path) for name, spec in entries.items()]
    _check_unambiguous(touchpoints, path)
    return Catalogue(tuple(touchpoints), source=str(path))


def _touchpoint(name: str, spec: dict, path: Path) -> Touchpoint:
    if name == OTHER:
        raise CatalogueError(f"{path}: '{OTHER}' is reserved for events no touchpoint claims")
    phase = spec.get("phase")
    if phase not in PHASES:
        raise CatalogueError(
            f"{path}: touchpoint {name!r} has phase {phase!r}; use one of {PHASES}"
        )
    rules = tuple(
        PageRule(tuple(r.get("event_types", [])), tuple(r.get("page_prefixes", [])))
        for r in spec.get("page_rules", [])
    )
    for rule in rules:
        if not rule.event_types or not rule.page_prefixes:
            raise CatalogueError(
                f"{path}: a page rule of {name!r} needs event_types and page_prefixes"
            )
    return Touchpoint(
        name=name,
        phase=phase,
        label=spec.get("label", name.replace("_", " ")),
        event_types=tuple(spec.get("event_types", [])),
        page_rules=rules,
        support_channels=tuple(spec.get("support_channels", [])),
        surveys_without_touchpoint=bool(spec.get("surveys_without_touchpoint", False)),
        moment_that_matters=bool(spec.get("moment_that_matters", False)),
    )


def _check_unambiguous(touchpoints: list[Touchpoint], path: Path) -> None:
    claimed: dict[str, str] = {}
    for kind, values in (("event type", "event_types"), ("support channel", "support_channels")):
        claimed.clear()
        for touchpoint in touchpoints:
            for value in getattr(touchpoint, values):
                if value in claimed:
                    raise CatalogueError(
                        f"{path}: {kind} {value!r} is claimed by both {claimed[value]!r} and "
                        f"{touchpoint.name!r}; keep it in one (use page_rules to split by page)"
                    )
                claimed[value] = touchpoint.name
    if sum(t.surveys_without_touchpoint for t in touchpoints) > 1:
        raise CatalogueError(f"{path}: only one touchpoint may set surveys_without_touchpoint")


def touchpoints_for_event(catalogue: Catalogue, event_type: str) -> list[str]:
    """Every touchpoint an event type can land in (page rules first), in catalogue order."""
    by_page = [
        t.name for t in catalogue.touchpoints for r in t.page_rules if event_type in r.event_types
    ]
    plain = [t.name for t in catalogue.touchpoints if event_type in t.event_types]
    return list(dict.fromkeys(by_page + plain))
