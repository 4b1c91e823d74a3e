"""The input contract: one declared schema per landing table (documented in data/README.md).

Validation never drops a row silently: each row is either accepted, typed, or quarantined with the
reasons it failed, so rows in = rows accepted + rows quarantined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

UTC_DATETIME = pl.Datetime("us", "UTC")
PII_COLUMNS = ("email", "name", "phone", "address")
SUPPORT_CHANNELS = ("phone", "email", "chat", "chatbot", "form", "store")
SUPPORT_CATEGORIES = ("billing", "delivery", "product", "account", "technical", "other")
SURVEY_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "repurchase": (0, 10)}


@dataclass(frozen=True)
class Column:
    name: str
    # "id" | "string" | "text" (free text a person wrote, scrubbed of contact details at ingest)
    # | "timestamp" | "float" | "int" | "bool"
    kind: str
    required: bool = False
    allowed: tuple[str, ...] | None = None

    @property
    def dtype(self) -> pl.DataType:
        return {
            "id": pl.String(),
            "string": pl.String(),
            "text": pl.String(),
            "timestamp": UTC_DATETIME,
            "float": pl.Float64(),
            "int": pl.Int64(),
            "bool": pl.Boolean(),
        }[self.kind]


@dataclass(frozen=True)
class TableContract:
    name: str
    id_column: str
    columns: tuple[Column, ...]
    required_table: bool = False

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.schema)

    def missing_required(self, columns: Sequence[str]) -> list[str]:
        return [c.name for c in self.columns if c.required and c.name not in columns]


CUSTOMERS = TableContract(
    "customers",
    "customer_id",
    (
        Column("customer_id", "id", required=True),
        Column("signup_at", "timestamp", required=True),
        Column("churned_at", "timestamp"),
        Column("plan", "string"),
        Column("country", "string"),
        Column("monthly_value", "float"),
        Column("acquisition_channel", "string"),
        Column("referred_by", "id"),
    ),
    required_table=True,
)
CLICKSTREAM = TableContract(
    "clickstream",
    "event_id",
    (
        Column("event_id", "id", required=True),
        Column("customer_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("event_type", "string", required=True),
        Column("session_id", "id"),
        Column("page", "string"),
        Column("channel", "string"),
        Column("value", "float"),
    ),
)
SUPPORT = TableContract(
    "support",
    "ticket_id",
    (
        Column("ticket_id", "id", required=True),
        Column("customer_id", "id", required=True),
        Column("opened_at", "timestamp", required=True),
        Column("channel", "string", required=True, allowed=SUPPORT_CHANNELS),
        Column("category", "string", allowed=SUPPORT_CATEGORIES),
        Column("first_response_at", "timestamp"),
        Column("resolved_at", "timestamp"),
        Column("reopened", "int"),
        Column("escalated", "bool"),
        Column("text", "text"),
    ),
)
SURVEYS = TableContract(
    "surveys",
    "response_id",
    (
        Column("response_id", "id", required=True),
        Column("customer_id", "id", required=True),
        Column("ts", "timestamp", required=True),
        Column("survey_type", "string", required=True, allowed=tuple(SURVEY_SCALES)),
        Column("score", "float", required=True),
        Column("touchpoint", "string"),
        Column("comment", "text"),
    ),
)
CONTRACTS = {c.name: c for c in (CUSTOMERS, CLICKSTREAM, SUPPORT, SURVEYS)}
EVENT_TABLES = ("clickstream", "support", "surveys")
# columns holding a customer id: pseudonymised together, so a referral still points at its referrer
CUSTOMER_REFERENCES = ("customer_id", "referred_by")
