"""Olist: real rows of a Brazilian marketplace, 2016-09 to 2018-10 (a biased subset: every order
that was not delivered, and about 5% of those that were; see the shared datasets' README). For
ingestion, joins, delivery and survey features and this adapter; not to judge model accuracy:
only 73 of about 8,000 people ordered twice.

- A person is `customer_unique_id` (each order carries its own `customer_id`); they sign up at
  their first order.
- Clicks: a `purchase` per order that was not cancelled or unavailable, worth its payments; a
  `payment` per payment; and a delivery event per order on the `delivery` touchpoint this adapter
  adds to the catalogue: `delivery_late` where it arrived after the estimated date (a composite of
  two columns), `delivery_on_time` otherwise, `order_cancelled`, `order_unavailable`.
- Surveys: each review is a CSAT (1-5) about the order, with its title and message as the comment.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from features.catalogue import DEFAULT_CATALOGUE
from features.ingest.mapping import Mapped, TableMap, apply_map, write_landing, write_settings

FOLDER = Path("olist_subset")
HORIZON_DAYS = 180
UNTIL = datetime.fromisoformat("2018-03-01T00:00:00+00:00")
TIMESTAMP = "%Y-%m-%d %H:%M:%S"
DELIVERY = """
[touchpoints.delivery]
phase = "post_purchase"
label = "delivery"
event_types = ["delivery_on_time", "delivery_late", "order_cancelled", "order_unavailable"]
"""

CUSTOMERS = TableMap(
    name="olist_customers",
    table="customers",
    columns={"customer_id": "person", "signup_at": "first_order", "country": pl.lit("BR")},
    timestamps={"signup_at": TIMESTAMP},
)
PURCHASES = TableMap(
    name="olist_purchases",
    table="clickstream",
    columns={
        "event_id": pl.format("{}:purchase", "order_id"),
        "customer_id": "person",
        "ts": "order_purchase_timestamp",
        "event_type": pl.lit("purchase"),
        "value": "paid",
    },
    timestamps={"ts": TIMESTAMP},
    where=~pl.col("order_status").is_in(["canceled", "unavailable"]),
)
PAYMENTS = TableMap(
    name="olist_payments",
    table="clickstream",
    columns={
        "event_id": pl.format("{}:payment:{}", "order_id", "payment_sequential"),
        "customer_id": "person",
        "ts": "order_purchase_timestamp",
        "event_type": pl.lit("payment"),
        "channel": "payment_type",
        "value": pl.col("payment_value").cast(pl.Float64, strict=False),
    },
    timestamps={"ts": TIMESTAMP},
)
DELIVERIES = TableMap(
    name="olist_deliveries",
    table="clickstream",
    columns={
        "event_id": pl.format("{}:delivery", "order_id"),
        "customer_id": "person",
        "ts": pl.coalesce("order_delivered_customer_date", "order_purchase_timestamp"),
        "event_type": pl.when(pl.col("order_delivered_customer_date").is_not_null())
        .then(
            pl.when(
                pl.col("order_delivered_customer_date") > pl.col("order_estimated_delivery_date")
            )
            .then(pl.lit("late"))
            .otherwise(pl.lit("on_time"))
        )
        .otherwise(pl.col("order_status")),
    },
    timestamps={"ts": TIMESTAMP},
    event_types={
        "late": "delivery_late",
        "on_time": "delivery_on_time",
        "canceled": "order_cancelled",
        "unavailable": "order_unavailable",
    },
    # orders still on their way have no delivery event yet
    where=pl.col("order_delivered_customer_date").is_not_null()
    | pl.col("order_status").is_in(["canceled", "unavailable"]),
)
REVIEWS = TableMap(
    name="olist_reviews",
    table="surveys",
    columns={
        "response_id": "review_id",
        "customer_id": "person",
        "ts": "review_answer_timestamp",
        "survey_type": pl.lit("csat"),
        "score": pl.col("review_score").cast(pl.Float64, strict=False),
        "comment": pl.concat_str(
            ["review_comment_title", "review_comment_message"], separator=": ", ignore_nulls=True
        ),
    },
    timestamps={"ts": TIMESTAMP},
)


def _read(datasets: Path, name: str) -> pl.DataFrame:
    path = datasets / FOLDER / f"{name}.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not there: point --datasets at the shared datasets")
    return pl.read_csv(path, infer_schema=False)


def read(datasets: Path) -> dict[str, pl.DataFrame]:
    """Orders with their person and what was paid, payments, and reviews, as text."""
    people = _read(datasets, "olist_customers_dataset").select(
        "customer_id", person="customer_unique_id"
    )
    payments = _read(datasets, "olist_order_payments_dataset")
    paid = payments.group_by("order_id").agg(
        paid=pl.col("payment_value").cast(pl.Float64, strict=False).sum()
    )
    orders = (
        _read(datasets, "olist_orders_dataset")
        .join(people, on="customer_id", how="left")
        .join(paid, on="order_id", how="left")
    )
    placed = orders.select("order_id", "person", "order_purchase_timestamp")
    return {
        "orders": orders,
        "payments": payments.join(placed, on="order_id", how="left"),
        "reviews": _read(datasets, "olist_order_reviews_dataset").join(
            placed.select("order_id", "person"), on="order_id", how="left"
        ),
    }


def map_history(tables: dict[str, pl.DataFrame], until: datetime) -> list[Mapped]:
    """Everything known before `until`: orders placed, deliveries made and reviews answered."""
    before = pl.lit(f"{until:%Y-%m-%d %H:%M:%S}")
    orders = tables["orders"].filter(pl.col("order_purchase_timestamp") < before)
    delivered_before = orders.with_columns(
        order_delivered_customer_date=pl.when(
            pl.col("order_delivered_customer_date") < before
        ).then(pl.col("order_delivered_customer_date"))
    )
    customers = orders.group_by("person").agg(first_order=pl.col("order_purchase_timestamp").min())
    payments = tables["payments"].filter(pl.col("order_purchase_timestamp") < before)
    reviews = tables["reviews"].filter(pl.col("review_answer_timestamp") < before)
    return [
        apply_map(customers.sort("person"), CUSTOMERS),
        apply_map(orders, PURCHASES),
        apply_map(payments, PAYMENTS),
        apply_map(delivered_before, DELIVERIES),
        apply_map(reviews, REVIEWS),
    ]


def truth(tables: dict[str, pl.DataFrame], until: datetime, horizon_days: int) -> pl.DataFrame:
    """Per person who ordered before `until`: no new order in [until, until + horizon)?"""
    orders = tables["orders"]
    start, end = f"{until:%Y-%m-%d %H:%M:%S}", f"{until + timedelta(days=horizon_days):%Y-%m-%d}"
    known = orders.filter(pl.col("order_purchase_timestamp") < start).select("person").unique()
    again = (
        orders.filter(pl.col("order_purchase_timestamp").is_between(pl.lit(start), pl.lit(end)))
        .select("person")
        .unique()
        .with_columns(bought=pl.lit(True))
    )
    return known.join(again, on="person", how="left").select(
        customer_id="person", churns_in_horizon=pl.col("bought").is_null().cast(pl.Int8)
    )


def catalogue_text() -> str:
    """The packaged catalogue, with payments at checkout and the delivery touchpoint added."""
    default = DEFAULT_CATALOGUE.read_text()
    checkout = 'event_types = ["checkout_start", "payment_error", "purchase"]'
    if checkout not in default:
        raise ValueError(f"{DEFAULT_CATALOGUE}: the checkout touchpoint's event types changed")
    with_payments = default.replace(
        checkout, 'event_types = ["checkout_start", "payment_error", "purchase", "payment"]'
    )
    return with_payments + DELIVERY


def write(datasets: Path, data_root: Path, until: datetime = UNTIL) -> dict[str, dict[str, int]]:
    """The history before `until` as landing files, the catalogue with its delivery touchpoint and
    the run settings, and what each person did in the horizon after (truth/customers.parquet)."""
    tables = read(datasets)
    counts = write_landing(map_history(tables, until), data_root)
    catalogue = data_root / "touchpoints.toml"
    catalogue.write_text(catalogue_text())
    write_settings(data_root, {"horizon_days": HORIZON_DAYS, "catalogue_path": str(catalogue)})
    truth_dir = data_root / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth(tables, until, HORIZON_DAYS).write_parquet(truth_dir / "customers.parquet")
    return counts
