"""MLflow "models from code" entry point: the pyfunc wrapper around a tabular_suite model file.

MLflow copies this file next to the logged model and runs it when loading, so no pickled
Python object is stored in the run (our weights stay in the checksummed ``.tsm`` file).
"""

import mlflow.pyfunc
from mlflow.models import set_model


class TabularSuitePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the ``model_file`` artifact with :func:`tabular_suite.load`; ``predict`` = est.predict,
    or, with ``params={"predict_method": "predict_proba"}`` (a classifier), a DataFrame of class
    probabilities with one column per class (as MLflow's scikit-learn flavour)."""

    def load_context(self, context):
        import tabular_suite

        # "trusted": set when the model was logged by compare() with scikit-learn/GBDT members
        # stored with pickle (as MLflow's scikit-learn flavour stores models).
        trusted = bool((context.model_config or {}).get("trusted", False))
        self.estimator = tabular_suite.load(context.artifacts["model_file"], trusted=trusted)

    def predict(self, context, model_input, params=None):
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            model_input = model_input[list(names)]
        method = (params or {}).get("predict_method", "predict")
        if method == "predict":
            return self.estimator.predict(model_input)
        if method != "predict_proba" or not hasattr(self.estimator, "predict_proba"):
            raise ValueError(
                f"predict_method {method!r} is not available for this model: use 'predict'"
                + (" or 'predict_proba'." if hasattr(self.estimator, "predict_proba") else ".")
            )
        proba = self.estimator.predict_proba(model_input)
        return pd.DataFrame(proba, columns=[str(c) for c in self.estimator.classes_], index=model_input.index)


set_model(TabularSuitePyfunc())
