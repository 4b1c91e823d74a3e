"""Explaining and acting (assets `shap_attributions`, `touchpoint_drivers`, `scored_customers`,
`churn_report`), one module per asset; `attribution` rolls SHAP values up to touchpoints for all of
them, and `playbook` maps a touchpoint to a retention action.
"""
