"""The band an answer falls in, the same for every survey type: what a comment is read against.

A comment says why the customer gave its score, so "delivery took ages" under a CSAT of 1 and
under a CSAT of 5 are different stories. The bands follow the usual cut points: NPS detractors
(0-6) and promoters (9-10), CSAT's bottom two and top box, CES's hard side (1-3 of 7) and easy side
(6-7), and the would-buy-again question read like NPS. Ticket text has no score: a ticket is its
own band.
"""

from __future__ import annotations

import polars as pl

DISAPPOINTMENT, OK, DELIGHT, TICKET = "disappointment", "ok", "delight", "ticket"
BANDS = (DISAPPOINTMENT, OK, DELIGHT, TICKET)
# survey type: (highest score that disappoints, lowest score that delights)
CUT_POINTS = {"nps": (6, 9), "csat": (2, 5), "ces": (3, 6), "repurchase": (6, 9)}
BAND_LABELS = {
    DISAPPOINTMENT: "disappointed",
    OK: "OK",
    DELIGHT: "delighted",
    TICKET: "tickets",
}


def answer_band() -> pl.Expr:
    """The band of each survey answer, from `survey_type` and `score`."""
    low = pl.col("survey_type").replace_strict(
        {t: c[0] for t, c in CUT_POINTS.items()}, default=None, return_dtype=pl.Float64
    )
    high = pl.col("survey_type").replace_strict(
        {t: c[1] for t, c in CUT_POINTS.items()}, default=None, return_dtype=pl.Float64
    )
    return (
        pl.when(pl.col("score") <= low)
        .then(pl.lit(DISAPPOINTMENT))
        .when(pl.col("score") >= high)
        .then(pl.lit(DELIGHT))
        .otherwise(pl.lit(OK))
    )
