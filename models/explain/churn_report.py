"""A self-contained HTML page (no network, no scripts) retention teams can open from a folder."""

from __future__ import annotations

import math
from base64 import b64encode
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import cast

import polars as pl

from models.explain.attribution import MIN_REASON_LOG_ODDS, TOP_REASONS
from models.explain.scored_customers import ACTION_TIERS, RISK_TIERS
from models.training.churn_model import ChurnModel
from models.training.evaluate import expected_roc_auc

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;\
max-width:1100px;color:#1d2330;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#5b6472;margin-top:0}
.banner{background:#fff4e5;border-left:4px solid #d97706;padding:.6rem 1rem;margin:1rem 0}
.plots{display:flex;gap:1rem;flex-wrap:wrap} .plots img{max-width:48%;height:auto}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #e3e6eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f6f8} .num{text-align:right;font-variant-numeric:tabular-nums}
.flag{color:#b42318;font-weight:600} .tier-high{color:#b42318;font-weight:600} \
.tier-medium{color:#b54708}
.cards{display:flex;gap:1rem;flex-wrap:wrap} \
.card{background:#f5f6f8;border-radius:8px;padding:.7rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}
"""
# a baseline this close to ROC AUC 0.5 ranks nobody: its calibration flattened it to the base rate
NO_SIGNAL_AUC_MARGIN = 0.02


def bar_chart(
    rows: list[dict],
    title: str,
    label: str,
    value: str,
    note: str,
    flag: str | None = None,
    value_format: str = ".1%",
) -> str:
    """Horizontal bars as inline SVG: readable offline, no script, no image files."""
    longest = max((len(str(r[label])) for r in rows), default=10)
    bar_left, row_h = int(min(420, 20 + 7.4 * longest)), 24
    width = bar_left + 560
    top = max((max(r[value], 0.0) for r in rows), default=0.0) or 1.0
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{row_h * len(rows) + 20}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, r in enumerate(rows):
        y = 6 + i * row_h
        w = (width - bar_left - 90) * max(r[value], 0.0) / top
        color = "#d92d20" if flag and r[flag] else "#98a2b3"
        parts.append(
            f'<text x="{bar_left - 8}" y="{y + 15}" text-anchor="end" font-size="13">'
            f"{escape(str(r[label]))}</text>"
        )
        parts.append(
            f'<rect x="{bar_left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{color}" rx="3"/>'
        )
        parts.append(
            f'<text x="{bar_left + w + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{format(r[note], value_format)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def html_table(frame: pl.DataFrame, formats: dict[str, str] | None = None) -> str:
    formats = formats or {}
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for column, value in row.items():
            if value is None:
                cells.append("<td></td>")
            elif isinstance(value, float):
                cells.append(f'<td class="num">{format(value, formats.get(column, ".3f"))}</td>')
            elif isinstance(value, bool):
                cells.append(f'<td class="{"flag" if value else ""}">{"yes" if value else ""}</td>')
            elif isinstance(value, int):
                cells.append(f'<td class="num">{value:,}</td>')
            elif column == "risk_tier":
                cells.append(f'<td class="tier-{escape(value)}">{escape(value)}</td>')
            else:
                cells.append(f"<td>{escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _what_if(what_if: pl.DataFrame, drivers: pl.DataFrame, currency: str) -> str:
    """One row per flagged touchpoint: the churn rate and monthly value at risk now and with its
    friction removed (`models.explain.what_if`)."""
    if what_if.is_empty():
        return ""
    rows = what_if.join(drivers.select("touchpoint", "label"), on="touchpoint").select(
        pl.col("label").alias("touchpoint"),
        "features_changed",
        pl.format("{}%", (pl.col("churn_rate_now") * 100).round(1)).alias("predicted churn now"),
        pl.format("{}%", (pl.col("churn_rate_without_friction") * 100).round(1)).alias(
            "without its friction"
        ),
        pl.col("value_at_risk_now").round(0).alias(f"monthly value at risk now ({currency})"),
        pl.col("value_at_risk_without_friction")
        .round(0)
        .alias(f"without its friction ({currency})"),
        (pl.col("value_at_risk_now") - pl.col("value_at_risk_without_friction"))
        .round(0)
        .alias(f"what removing this friction is worth ({currency} a month)"),
    )
    return f"""<h2>What removing this friction is worth</h2>
<p>A model estimate, not a causal effect: each flagged touchpoint's friction features (errors, \
exits, waits, low scores) set to the level of the best-served tenth of customers, where a \
customer is not already there, and every customer scored again by the same model. The model \
learned who leaves, not what happens when a touchpoint improves; read it as where to look \
first.</p>
{html_table(rows, dict.fromkeys(rows.columns[4:], ",.0f"))}"""


def declared_vs_found(drivers: pl.DataFrame, declared: Sequence[str]) -> pl.DataFrame:
    """The catalogue's moments that matter (what the business believed) beside the touchpoints the
    data flags (what the model found), with each one's share of the excess churn risk."""
    rows = drivers.filter(pl.col("flagged") | pl.col("touchpoint").is_in(list(declared)))
    return rows.sort("share_of_total", descending=True).select(
        pl.col("label").alias("touchpoint"),
        pl.col("touchpoint").is_in(list(declared)).alias("declared a moment that matters"),
        pl.col("flagged").alias("found driving churn"),
        "share_of_total",
        pl.when(pl.col("flagged") & pl.col("touchpoint").is_in(list(declared)))
        .then(pl.lit("confirmed by the data"))
        .when(pl.col("flagged"))
        .then(pl.lit("found, not declared: worth adding to the catalogue"))
        .otherwise(pl.lit("declared, not found in this data"))
        .alias("verdict"),
    )


def _declared(drivers: pl.DataFrame, declared: Sequence[str]) -> str:
    table = declared_vs_found(drivers, declared)
    if table.is_empty():
        return ""
    return f"""<h2>Moments that matter: declared against found</h2>
<p>The catalogue marks the touchpoints the business believes end journeys \
(<code>moment_that_matters</code>); the model flags the ones that drive churn in this data. \
"Declared, not found" may mean the touchpoint serves customers well, or that too few touch it \
for the data to tell.</p>
{html_table(table, {"share_of_total": ".1%"})}"""


def _banner(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return f"""<div class="banner"><b>Data health: read this list with care.</b><ul>{items}</ul>\
</div>"""


def _images(plots: Mapping[str, bytes]) -> str:
    """PNGs inline, so the page stays one offline file."""
    return "".join(
        f'<img alt="{escape(name)}" src="data:image/png;base64,{b64encode(png).decode()}">'
        for name, png in plots.items()
    )


def _plots_section(plots: Mapping[str, bytes]) -> str:
    if not plots:
        return ""
    return f"""<p>The scoring model on the newest backtest cutoff: predicted against observed \
churn in equal-count bins (on the diagonal: the probabilities mean what they say), and how many \
times the base rate the riskiest customers churn.</p>
<div class="plots">{_images(plots)}</div>"""


def _moments(drivers: pl.DataFrame, scored: pl.DataFrame, examples: int = 2) -> str:
    """Each flagged touchpoint with how many customers it affects and what they went through."""
    items = []
    for d in drivers.filter(pl.col("flagged")).iter_rows(named=True):
        said = (
            scored.filter(pl.col("touchpoint_1") == d["touchpoint"])["reason_1"]
            .drop_nulls()
            .unique(maintain_order=True)
            .head(examples)
            .to_list()
        )
        quotes = "".join(f"<li>{escape(r)}</li>" for r in said)
        items.append(
            f"<li><b>{escape(d['label'])}</b> ({escape(d['phase_label'])}): "
            f"{100 * d['share_of_total']:.0f}% of excess churn risk; "
            f"among the top reasons for {d['customers_affected']:,} customers riskier than "
            f"baseline, the first for {d['customers_top_driver']:,}.<ul>{quotes}</ul></li>"
        )
    return (
        f"<ul>{''.join(items)}</ul>" if items else "<p>No touchpoint passes the flagging rule.</p>"
    )


_QUALITY = ("roc_auc", "pr_auc", "brier", "ece", "lift_top10", "capture_top10")
# how the report heads the quality table's columns
_QUALITY_HEADERS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier",
    "ece": "ECE",
    "lift_top10": "lift, riskiest 10%",
    "capture_top10": "churners caught, riskiest 10%",
}
_QUALITY_FORMATS = {
    _QUALITY_HEADERS[k]: f
    for k, f in {"brier": ".4f", "lift_top10": ".2f", "capture_top10": ".0%"}.items()
}


def quality_table(
    metrics: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    model: str = "churn model (this run)",
) -> pl.DataFrame:
    """The model's backtest beside each baseline's, on the same folds."""
    rows = [
        {
            "model": model,
            **{k: metrics.get(k) for k in _QUALITY},
        }
    ]
    rows += [
        {"model": name.replace("_", " "), **{k: m.get(k) for k in _QUALITY}}
        for name, m in baselines.items()
    ]
    return pl.DataFrame(rows, schema={"model": pl.String, **dict.fromkeys(_QUALITY, pl.Float64)})


_BACKTEST_FORMATS = {"churn rate": ".1%", "predicted": ".1%"}


def _backtest_table(model: ChurnModel) -> pl.DataFrame:
    """Per judged cutoff: who was judged, what happened, what was predicted, how it ranked."""
    rows = [
        {
            "cutoff": r["cutoff"],
            "customers": r["rows"],
            "churn rate": r["churn_rate"],
            "predicted": r["predicted_rate"],
            "ROC AUC": r["roc_auc"],
            "expected ROC AUC": r["expected_roc_auc"],
            "ECE": r["ece"],
            **{
                f"{b.replace('_', ' ')} ROC AUC": r[f"{b}_roc_auc"]
                for b in ("recency_rule", "frequency", "bgnbd", "logistic_regression")
                if f"{b}_roc_auc" in r
            },
        }
        for r in model.backtest
    ]
    return pl.DataFrame(rows)


def _backtest(model: ChurnModel, as_of: datetime, horizon_days: int, expected: float) -> str:
    """What the backtest did and how far its figures carry to today's list."""
    rows = model.backtest
    newest = datetime.fromisoformat(rows[-1]["cutoff"]).replace(tzinfo=as_of.tzinfo)
    gap = (as_of - newest).days
    overlap = max(r["label_overlap_days"] for r in rows)
    misses = [abs(r["expected_roc_auc"] - r["roc_auc"]) for r in rows]
    strictness = (
        f" The history is too short for a strict backtest: the labels of the cutoffs each fold was "
        f"trained on reach up to {overlap} days into the horizon it was judged on, which a model "
        "in use never sees, so these figures may be optimistic."
        if overlap
        else " Each fold was trained only on labels that were complete by the cutoff it judged, "
        "as in use."
    )
    return (
        f"<p>The model was trained on what was known before each of {len(rows)} cutoffs and "
        f"judged on what each customer did in the {horizon_days} days after it. The newest judged "
        f"cutoff is {newest:%Y-%m-%d}, {gap} days before this list's as of; the model that scores "
        f"was then refit on every cutoff with a complete horizon ({model.form}, {model.trees} "
        f"trees, calibration {model.calibration}).{strictness}</p>"
        f"<p><b>Expected ROC AUC of this list: {expected:.3f}</b>, what its probabilities imply "
        "if they are right (no outcome is known yet). At the backtest cutoffs the same estimate "
        f"was within {max(misses):.3f} of what happened.</p>"
    )


def _no_signal(baselines: dict[str, dict[str, float]]) -> list[str]:
    """The baselines (other than the base rate itself) that rank no better than chance on the
    holdout."""
    return [
        name.replace("_", " ")
        for name, m in baselines.items()
        if name != "base_rate" and abs(m["roc_auc"] - 0.5) < NO_SIGNAL_AUC_MARGIN
    ]


_MONEY = ("monthly value at risk",)
_DIGITS = {
    "monthly value at risk": 0,
    "expected ROC AUC of this list": 3,
    "backtest ROC AUC": 3,
}


def headline(
    drivers: pl.DataFrame, scored: pl.DataFrame, model: ChurnModel
) -> dict[str, int | float]:
    """The report's headline figures, as its cards show them and Dagster records them."""
    tiers = dict(scored.group_by("risk_tier").len().iter_rows())
    # a count column: its max is an int, or None when there are no drivers
    most_at_risk = cast(int | None, drivers["customers_at_risk"].max())
    return {
        "customers scored": scored.height,
        **{label: int(tiers.get(t, 0)) for t, label in _tier_labels().items()},
        "riskier than baseline": int(most_at_risk or 0),
        "monthly value at risk": float(scored["value_at_risk"].sum()),
        "expected ROC AUC of this list": expected_roc_auc(scored["churn_probability"].to_numpy()),
        "backtest ROC AUC": model.metrics["backtest_roc_auc"],
    }


def _tier_labels() -> dict[str, str]:
    """Each tier with its probability range, from RISK_TIERS: "medium risk: churn probability 20%
    to 50%"."""
    uppers = [None, *(low for _, low in RISK_TIERS[:-1])]
    return {
        name: f"{name} risk: churn probability {low:.0%}"
        + (" or more" if upper is None else f" to {upper:.0%}")
        for (name, low), upper in zip(RISK_TIERS, uppers, strict=True)
    }


def _counts_explained(tiers: dict[str, int], above_baseline: int) -> str:
    """The page counts customers two ways; say which is which, so 274 high risk next to 2,195
    customers with a reason does not read as a contradiction."""
    acting = sum(tiers.get(t, 0) for t in ACTION_TIERS)
    return (
        "<p>Two groups of customers appear on this page. "
        "<b>Risk tiers</b> come from the calibrated churn probability "
        f"({'; '.join(_tier_labels().values())}; low below); the {acting:,} customers in the "
        f"{' and '.join(ACTION_TIERS)} tiers get a suggested action. "
        "The <b>driver figures</b> count another group: the "
        f"{above_baseline:,} customers the model rates <b>riskier than baseline</b> "
        "(their SHAP values sum above zero: "
        "churn odds above the model's average customer's), whatever their tier. "
        "A touchpoint is among a customer's reasons "
        f"when it raises their churn log-odds by at least {MIN_REASON_LOG_ODDS:.2f} "
        f"(odds up by {math.expm1(MIN_REASON_LOG_ODDS):.0%}).</p>"
    )


def render_report(
    drivers: pl.DataFrame,
    phases: pl.DataFrame,
    features: pl.DataFrame,
    scored: pl.DataFrame,
    model: ChurnModel,
    as_of: datetime,
    horizon_days: int,
    what_if: pl.DataFrame,
    figures: Mapping[str, int | float],
    declared: Sequence[str] = (),
    plots: Mapping[str, bytes] | None = None,
    warnings: Sequence[str] = (),
    currency: str = "EUR",
    top_n: int = 25,
    voice: str = "",
) -> str:
    """The page: headline figures, moments that matter (and against what the catalogue declared),
    what removing their friction is worth, drivers by touchpoint and phase, the features behind
    them, model quality against simple baselines with the scoring model's calibration and lift
    plots (`plots`, from its MLflow run), and the top of the scored list; a data-health banner
    first when the freshness or drift checks warn (`warnings`, their sentences). `figures` are
    its `headline`; `voice` is the rendered "What customers say" and referral sections
    (`models.explain.voice_report`), after the drivers and their features."""
    metrics = {k.removeprefix("backtest_"): v for k, v in model.metrics.items()}
    baselines = model.baselines
    expected = float(figures["expected ROC AUC of this list"])
    flagged = drivers.filter(pl.col("flagged"))
    tiers = {t: int(figures[label]) for t, label in _tier_labels().items()}
    above_baseline = int(figures["riskier than baseline"])
    no_signal = _no_signal(baselines)
    cards = [
        (
            label,
            f"{value:,}"
            if isinstance(value, int)
            else f"{value:,.{_DIGITS[label]}f}" + (f" {currency}" if label in _MONEY else ""),
        )
        for label, value in figures.items()
    ]
    money_column = f"value at risk ({currency}/month)"
    top = scored.head(top_n).select(
        "customer_id",
        "churn_probability",
        "risk_tier",
        pl.col("value_at_risk").alias(money_column),
        "touchpoint_1",
        "reason_1",
        "reason_2",
        "reason_3",
        "suggested_action",
    )
    driver_rows = drivers.sort("churn_contribution", descending=True).to_dicts()
    phase_rows = phases.filter(pl.col("churn_contribution") > 0).to_dicts()
    feature_rows = features.to_dicts()
    # the same words whether this run trained the model or reused it (unchanged snapshots and
    # settings), so a rerun on the same data writes the same report
    trained = (
        f"trained in MLflow run {escape(model.run_id)}"
        if model.promoted
        else f"the newest model, version {escape(model.version)} (MLflow run "
        f"{escape(model.run_id)}), was not promoted by the gate"
    )
    card_divs = "".join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in cards)
    driver_chart = bar_chart(
        driver_rows,
        "churn contribution by touchpoint",
        "label",
        "churn_contribution",
        "share_of_total",
        flag="flagged",
    )
    phase_chart = bar_chart(
        phase_rows,
        "churn contribution by phase",
        "phase_label",
        "churn_contribution",
        "share_of_total",
    )
    feature_chart = bar_chart(
        feature_rows,
        "top features by mean absolute SHAP",
        "feature",
        "mean_abs_shap",
        "mean_abs_shap",
        value_format=".3f",
    )
    no_signal_note = f" Here: {escape(', '.join(no_signal))}." if no_signal else ""
    driver_columns = drivers.select(
        "touchpoint",
        "phase_label",
        "churn_contribution",
        "ci_low",
        "ci_high",
        "share_of_total",
        "direction",
        "customers_affected",
        "customers_top_driver",
        "flagged",
    )
    # a backslash at the end of a line below continues it: the page has the line unbroken
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">\
<title>touchpoint-churn report</title>
<style>{_STYLE}</style></head><body>
<h1>Which touchpoints drive churn</h1>
<p class="sub">Scored as of {as_of:%Y-%m-%d %H:%M} UTC with champion model version \
{escape(str(model.champion_version))}; {trained}.</p>
{_banner(warnings)}
<div class="cards">{card_divs}</div>
{_counts_explained(tiers, above_baseline)}
<h2>Moments that matter: {escape(", ".join(flagged["label"].to_list()) or "none flagged")}</h2>
{_moments(drivers, scored)}
{_declared(drivers, declared)}
{_what_if(what_if, drivers, currency)}
<h2>Drivers by touchpoint</h2>
<p>Among customers the model rates riskier than baseline, how much of their excess churn risk \
(mean SHAP, log-odds) each touchpoint supplies, with its share of the total. Red bars are \
flagged: they raise risk, their 95% bootstrap interval excludes zero, and their share passes the \
threshold.</p>
{driver_chart}
<h2>Drivers by journey phase</h2>
{phase_chart}
<h2>The features behind them</h2>
<p>Mean |SHAP| over every scored customer (how much a feature moves risk at all).</p>
{feature_chart}
{voice}
<h2>How well it predicts: the backtest</h2>
{_backtest(model, as_of, horizon_days, expected)}
{html_table(_backtest_table(model), _BACKTEST_FORMATS)}
<h2>Model quality against simple baselines</h2>
<p>Means over the backtest cutoffs. The recency rule, frequency and BG/NBD give scores, not \
probabilities; isotonic regression on each fold's validation cutoff turns them into \
probabilities. A baseline with no signal in this data collapses to the base rate there (close to \
one probability for everyone): ROC AUC 0.5, and the base rate's PR AUC and Brier.\
{no_signal_note}</p>
{html_table(quality_table(metrics, baselines).rename(_QUALITY_HEADERS), _QUALITY_FORMATS)}
{_plots_section(plots or {})}
<h2>Driver table</h2>
<p>Customers affected: customers riskier than baseline with the touchpoint among their top \
{TOP_REASONS} reasons; customers top driver: those for whom it is the first.</p>
{html_table(driver_columns, {"share_of_total": ".1%"})}
<h2>Top {top_n} customers by monthly value at risk</h2>
{html_table(top, {money_column: ",.2f"})}
</body></html>"""
