"""The data side, one module per asset, in the order data flows:

- `ingest/`: the input contract, validation and quarantine (`customers`, `<table>_files`,
  `<table>`);
- `touchpoint_days`: every touch routed to its touchpoint, folded into customer-days;
- `feature_plan`: `as_of`, the cutoffs, and which features the data supports;
- `snapshots`: the features at a cutoff, point in time (`training_snapshots`, `scoring_features`),
  with `windows` (the 7/30/90-day sums over customer-days) and `labels` (population and churn);
- `dictionary`: the data dictionary (`feature_dictionary`).

What they share: the touchpoint catalogue (`catalogue`, `touchpoints.toml`), what a feature is
(`feature`), the families that generate features from the catalogue (`families`), and the rules
behind the feature tables' checks (`quality`).
"""
