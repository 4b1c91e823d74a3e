"""The model side: `training/` (asset `churn_model`), `explain/` (the scored list, the drivers and
the report), and what both use: the model itself (`calibration`), MLflow (`tracking`), and feature
drift between training and scoring (`drift`, behind the `feature_drift` check).
"""
