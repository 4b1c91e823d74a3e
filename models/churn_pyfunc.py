"""The code MLflow logs with every churn model ("models from code", `models.tracking.PYFUNC_CODE`):
MLflow runs this file to build the served model, so a version is stored as this file and its
artifacts instead of a pickled object (which MLflow warns may run arbitrary code when loaded)."""

from mlflow.models import set_model

from models.tracking import ChurnPyfunc

set_model(ChurnPyfunc())
