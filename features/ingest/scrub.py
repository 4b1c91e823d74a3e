"""Contact details and account numbers scrubbed out of free text (survey comments, ticket text) at
ingest, before the text is stored, clustered into themes or shown in a report.

People write their email, phone number, card or order number into comments ("call me on
+44 20 7946 0958"). The contract's PII columns never leave ingestion; free text would carry the
same details past it. Each is replaced by a placeholder that says what was there, so an example
comment still reads naturally. Phone numbers are found by shape (a run of nine or more digits,
spaces, dots, dashes and brackets), so a date written 12.05.2018 is scrubbed too: a lost date is
harmless, a leaked phone number is not.
"""

from __future__ import annotations

import polars as pl

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[number]"
PLACEHOLDERS = (EMAIL, PHONE, NUMBER)
_EMAIL = r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"
_PHONE = r"\+?\(?\d[\d \-.()]{7,}\d"
_DIGITS = r"\d{6,}"  # card, account, order and tax numbers


def scrub(text: pl.Expr) -> pl.Expr:
    """The text with emails, phone numbers and runs of six or more digits replaced by
    placeholders."""
    return (
        text.str.replace_all(_EMAIL, EMAIL)
        .str.replace_all(_PHONE, PHONE)
        .str.replace_all(_DIGITS, NUMBER)
    )
