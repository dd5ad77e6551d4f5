"""Loaded by pytest before any test or doctest module: one thread everywhere.

Set before numpy/scipy/torch are imported. SCIPY_ARRAY_API lets scikit-learn's array-API
estimator check run instead of skipping.
"""

import os

os.environ["TABULAR_SUITE_NUM_THREADS"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SCIPY_ARRAY_API", "1")
