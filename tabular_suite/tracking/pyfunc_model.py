"""MLflow "models from code" entry point: the pyfunc wrapper around a tabular_suite model file.

MLflow copies this file next to the logged model and runs it when loading, so no pickled
Python object is stored in the run (our weights stay in the checksummed ``.tsm`` file).
"""

import mlflow.pyfunc
from mlflow.models import set_model


class TabularSuitePyfunc(mlflow.pyfunc.PythonModel):
    """Loads the ``model_file`` artifact with :func:`tabular_suite.load`; ``predict`` = est.predict."""

    def load_context(self, context):
        import tabular_suite

        self.estimator = tabular_suite.load(context.artifacts["model_file"])

    def predict(self, context, model_input, params=None):
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        names = getattr(self.estimator, "feature_names_in_", None)
        if names is not None:
            model_input = model_input[list(names)]
        return self.estimator.predict(model_input)


set_model(TabularSuitePyfunc())
