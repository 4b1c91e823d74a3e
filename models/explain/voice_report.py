"""The report's "What customers say" and "Referrals" sections: the voice_themes table per
touchpoint, flagged touchpoints first, and the referral KPI (`features.voice.referrals`)."""

from __future__ import annotations

from html import escape

import polars as pl

from features.voice.bands import BAND_LABELS, BANDS
from features.voice.referrals import referral_trend
from models.explain.churn_report import bar_chart, html_table

MAX_TOUCHPOINTS = 5  # flagged ones first; the rest are in outputs/voice_themes.csv
THEMES_SHOWN = 3  # per band, beside "other comments"


def voice_section(themes: pl.DataFrame, drivers: pl.DataFrame) -> str:
    """Per touchpoint with themes: its biggest disappointment, OK, delight and ticket themes, each
    with its texts, share of the band and one or two scrubbed examples; flagged touchpoints first,
    then the most written about. The whole table is in outputs/voice_themes.csv: a page of every
    theme at every touchpoint is read by nobody."""
    if themes.is_empty():
        return """<h2>What customers say</h2>
<p>No touchpoint has enough comments or ticket texts for themes (30 in one answer band): the \
surveys' <code>comment</code> and the tickets' <code>text</code> columns would show here what \
disappoints and delights customers at each touchpoint.</p>"""
    labels = dict(drivers.select("touchpoint", "label").iter_rows())
    flagged = set(drivers.filter(pl.col("flagged"))["touchpoint"].to_list())
    volume = themes.group_by("touchpoint").agg(pl.col("comments").sum())
    order = volume.sort(
        pl.col("touchpoint").is_in(list(flagged)), "comments", descending=[True, True]
    )["touchpoint"].to_list()
    parts = [
        f"""<h2>What customers say</h2>
<p>Survey comments and ticket texts per touchpoint, split by the answer's band (disappointed: \
NPS or would-buy-again 0-6, CSAT 1-2, CES 1-3; delighted: 9-10, CSAT 5, CES 6-7; OK between) \
and grouped into themes named by their most distinctive words. Contact details are scrubbed \
from every text before it is stored. "Other comments" gathers what no theme explains. The \
disappointment and ticket themes are also features: how often a customer wrote in them in the \
last 90 days. Shown: the {THEMES_SHOWN} biggest themes of each band at the \
{MAX_TOUCHPOINTS} touchpoints first in line; every theme is in \
<code>outputs/voice_themes.csv</code>.</p>"""
    ]
    for touchpoint in order[:MAX_TOUCHPOINTS]:
        mine = themes.filter(pl.col("touchpoint") == touchpoint)
        rows = (
            mine.with_columns(
                band=pl.col("band").replace_strict(BAND_LABELS, default=pl.col("band")),
                band_order=pl.col("band").replace_strict(
                    {b: i for i, b in enumerate(BANDS)}, default=len(BANDS)
                ),
                theme=pl.when(pl.col("catch_all"))
                .then(pl.lit("other comments"))
                .otherwise(pl.col("label")),
                examples=pl.col("examples")
                .list.eval(pl.format("“{}”", pl.element()))
                .list.join(" "),
            )
            .sort("band_order", "catch_all", "comments", descending=[False, False, True])
            .filter(pl.col("catch_all") | (pl.int_range(pl.len()).over("band") < THEMES_SHOWN))
            .select("band", "theme", pl.col("comments").alias("texts"), "share_of_band", "examples")
        )
        mark = " (flagged)" if touchpoint in flagged else ""
        label = labels.get(touchpoint, touchpoint.replace("_", " "))
        parts.append(f"<h3>{escape(label)}{mark}</h3>")
        parts.append(html_table(rows, {"share_of_band": ".0%"}))
    return "\n".join(parts)


def referral_section(
    rate: float | None, by_month: pl.DataFrame, churn: pl.DataFrame, ratings: pl.DataFrame
) -> str:
    """The referral rate with its trend by month of signup (`referrals_by_month`), the churn of
    referred customers against the others, and the touchpoints recommenders rated above everyone
    else."""
    if rate is None:
        return """<h2>Referrals</h2>
<p>The customers table has no <code>acquisition_channel</code>: with it (and \
<code>referred_by</code>), this section shows the share of new customers who came by \
recommendation, how they stay, and what the customers who recommend rated highly.</p>"""
    trend = referral_trend(by_month)
    trend_words = (
        ""
        if trend is None
        else f" Over the latest six months of signups it is {abs(trend) * 100:.1f} percentage "
        f"points {'higher' if trend >= 0 else 'lower'} than in the six before."
    )
    churn_words = ""
    if churn.height == 2:
        by = dict(churn.select("acquired", "churn_rate").iter_rows())
        churn_words = (
            f" Of the customers at the newest labelled cutoff, {by['referred']:.1%} of the "
            f"referred churned within the horizon, against {by['other']:.1%} of the others."
        )
    chart = bar_chart(
        by_month.tail(18).to_dicts(),
        "referral rate by month of signup",
        "signup_month",
        "referral_rate",
        "referral_rate",
    )
    ratings_table = ""
    if not ratings.is_empty():
        top = ratings.head(6).select(
            pl.col("touchpoint").str.replace_all("_", " "),
            pl.col("recommenders_answers").alias("recommenders' answers"),
            pl.col("recommenders_score").alias("recommenders' mean score"),
            pl.col("others_score").alias("everyone else's"),
            "lead",
        )
        ratings_table = (
            "<p>What the customers who referred someone rated highly: their mean answer per "
            "touchpoint, as a share of the scale's top, against everyone else's.</p>"
            + html_table(top, dict.fromkeys(top.columns[2:], ".0%"))
        )
    return f"""<h2>Referrals</h2>
<p>{rate:.1%} of customers with a known acquisition channel came by referral.{trend_words}\
{churn_words}</p>
{chart}
{ratings_table}"""
