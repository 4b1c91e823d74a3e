"""Rules behind the input tables' asset checks (`input_schema`, `quarantine_share`), as plain
functions: each returns what is wrong (empty when all is well), in words that say what to fix.
"""

from __future__ import annotations

import polars as pl

from features.ingest.contract import TableContract


def schema_problems(frame: pl.DataFrame, contract: TableContract) -> list[str]:
    """A validated table must hold exactly the contract's columns and types, every required value,
    and unique ids."""
    problems = []
    if frame.schema != contract.schema:
        problems.append(
            f"{contract.name} columns {dict(frame.schema)} "
            f"differ from the contract {dict(contract.schema)}"
        )
        return problems
    for column in contract.columns:
        nulls = frame[column.name].null_count() if column.required else 0
        if nulls:
            problems.append(f"{nulls} rows lack required {column.name}")
    repeated = frame.height - frame[contract.id_column].n_unique()
    if repeated:
        problems.append(f"{repeated} repeated {contract.id_column} values")
    return problems


def quarantine_share(accepted: int, quarantined: int) -> float:
    total = accepted + quarantined
    return quarantined / total if total else 0.0


EVENT_TIME = {"clickstream": "ts", "support": "opened_at", "surveys": "ts"}


def before_signup(events: pl.DataFrame, customers: pl.DataFrame, table: str) -> pl.DataFrame:
    """Events dated before their customer's signup.

    They are kept, by choice, and only warned about: a clickstream often stitches the visits
    before an account existed to the customer who then signed up, so such a touch is real, and
    every feature is cut at its cutoff whatever the signup says. A large share means the signup
    dates are wrong (a migration date, a first order instead of the account)."""
    when = EVENT_TIME[table]
    return events.join(customers.select("customer_id", "signup_at"), on="customer_id").filter(
        pl.col(when) < pl.col("signup_at")
    )
