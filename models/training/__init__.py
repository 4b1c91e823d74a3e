"""Training (asset `churn_model`): `churn_model` runs one training run from the steps beside it:
`train` (the time split, XGBoost, the optional search), `baselines`, `evaluate` (holdout metrics),
`plots`, and `promotion` (the gate). The model itself, booster and calibration, is
`models.calibration.CalibratedModel`; MLflow is `models.tracking`.
"""
