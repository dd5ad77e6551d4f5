"""Loaded by pytest before any test or doctest module: one thread everywhere.

Set before numpy/scipy/torch are imported. SCIPY_ARRAY_API lets scikit-learn's array-API
estimator check run instead of skipping.
"""

import os

os.environ["TABULAR_SUITE_NUM_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# MLflow executes this file itself when loading a logged model; importing it for doctests
# would only register a model object in MLflow's global state.
collect_ignore = ["tabular_suite/tracking/pyfunc_model.py"]
