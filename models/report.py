"""A self-contained HTML page (no network, no scripts) retention teams can open from a folder."""

from __future__ import annotations

from datetime import datetime
from html import escape

import polars as pl

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2330;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#5b6472;margin-top:0}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0 1.5rem}
th,td{border-bottom:1px solid #e3e6eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f6f8} .num{text-align:right;font-variant-numeric:tabular-nums}
.flag{color:#b42318;font-weight:600} .tier-high{color:#b42318;font-weight:600} .tier-medium{color:#b54708}
.cards{display:flex;gap:1rem;flex-wrap:wrap} .card{background:#f5f6f8;border-radius:8px;padding:.7rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.4rem}
"""


def _bar_chart(drivers: pl.DataFrame, title: str) -> str:
    rows = drivers.sort("churn_contribution", descending=True).to_dicts()
    width, bar_left, row_h = 760, 210, 24
    top = max((r["churn_contribution"] for r in rows), default=0) or 1.0
    parts = [f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{row_h * len(rows) + 30}" xmlns="http://www.w3.org/2000/svg">']
    for i, r in enumerate(rows):
        y = 10 + i * row_h
        w = (width - bar_left - 90) * max(r["churn_contribution"], 0.0) / top
        color = "#d92d20" if r["flagged"] else "#98a2b3"
        parts.append(f'<text x="{bar_left - 8}" y="{y + 15}" text-anchor="end" font-size="13">{escape(r["label"])}</text>')
        parts.append(f'<rect x="{bar_left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}" rx="3"/>')
        parts.append(f'<text x="{bar_left + w + 6:.1f}" y="{y + 15}" font-size="12">{100 * r["share_of_total"]:.1f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(frame: pl.DataFrame, formats: dict[str, str] | None = None) -> str:
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
            elif column == "risk_tier":
                cells.append(f'<td class="tier-{escape(value)}">{escape(value)}</td>')
            else:
                cells.append(f"<td>{escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(drivers: pl.DataFrame, phases: pl.DataFrame, scored: pl.DataFrame, metrics: dict[str, float], model: dict[str, str], as_of: datetime, top_n: int = 25) -> str:
    flagged = drivers.filter(pl.col("flagged"))
    tiers = dict(scored.group_by("risk_tier").len().iter_rows())
    value = scored["value_at_risk"].sum()
    cards = [
        ("customers scored", f"{scored.height:,}"),
        ("high risk", f"{tiers.get('high', 0):,}"),
        ("monthly value at risk", f"{value:,.0f}"),
        ("holdout ROC AUC", f"{metrics['roc_auc']:.3f}"),
        ("holdout PR AUC", f"{metrics['pr_auc']:.3f}"),
    ]
    moments = ", ".join(flagged["label"].to_list()) or "none flagged"
    top = scored.head(top_n).select(
        "customer_id", "churn_probability", "risk_tier", "value_at_risk", "touchpoint_1", "reason_1", "reason_2", "reason_3", "suggested_action"
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>touchpoint-churn report</title>
<style>{_STYLE}</style></head><body>
<h1>Which touchpoints drive churn</h1>
<p class="sub">Scored as of {as_of:%Y-%m-%d %H:%M} UTC with model version {escape(model['version'])} (MLflow run {escape(model['run_id'])}).</p>
<div class="cards">{''.join(f'<div class="card"><b>{v}</b>{escape(k)}</div>' for k, v in cards)}</div>
<h2>Moments that matter: {escape(moments)}</h2>
<p>Among customers the model rates riskier than baseline, how much of their excess churn risk (mean SHAP, log-odds) each touchpoint supplies, with its share of the total. Red bars are flagged: they drive abandonment.</p>
{_bar_chart(drivers, "churn contribution by touchpoint")}
<h2>By journey phase</h2>
{_table(phases.select("phase_label", "churn_contribution", "share_of_total"), {"share_of_total": ".1%"})}
<h2>Driver table</h2>
{_table(drivers.select("touchpoint", "phase_label", "churn_contribution", "share_of_total", "direction", "customers_affected", "flagged"), {"share_of_total": ".1%"})}
<h2>Top {top_n} customers at risk</h2>
{_table(top, {"value_at_risk": ",.2f"})}
<p class="sub">Holdout: ROC AUC {metrics['roc_auc']:.3f}, PR AUC {metrics['pr_auc']:.3f}, Brier {metrics['brier']:.4f}, churn rate {metrics['base_rate']:.1%} over {int(metrics['n']):,} customers (a later period than training).</p>
</body></html>"""
