"""Adapters for two public datasets, each a reader and a few `TableMap`s (`ingest.mapping`):
what mapping a business's own exports looks like, and real data to test the pipeline on.

- `cdnow`: the CDNOW purchase log (purchases only);
- `olist`: the Olist e-commerce subset (orders, payments, deliveries, reviews as CSAT surveys).

Each writes a data root: the landing files of the history before `until`, the run settings the
dataset needs (`touchpoint_churn.toml`), and in `truth/` what each customer really did in the
horizon after `until`, which the pipeline never reads and the forward evaluation scores against.
"""
