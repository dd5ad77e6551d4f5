"""tabular_suite: deep learning on tables and interaction logs with an sklearn API, a CLI and
MLflow tracking.

Examples
--------
>>> import tabular_suite
>>> tabular_suite.list_models()
['activator', 'autoint', 'excelformer', 'finalmlp', 'ft_transformer', 'hourglass_mlp', 'kan', 'mlp', 'resnet',
 'sasrec', 'tabm', 'tabpfn']
"""

from . import datasets, tabular, tracking
from ._version import __version__
from .batch import evaluate_file, predict_file
from .compare import ComparisonResult, EnsembleModel, compare
from .core import get_model, list_models, load, make_estimator, register_model
from .data.io import read_table
from .datasets import list_datasets, load_dataset
from .incontext import TabPFNClassifier, TabPFNRegressor
from .recsys import SASRecRecommender, metrics
from .tabular.models import *  # noqa: F403 - the tabular estimators (tabular.models.__all__)

__all__ = [
    "__version__",
    *tabular.models.__all__,
    "SASRecRecommender",
    "TabPFNClassifier",
    "TabPFNRegressor",
    "list_models",
    "make_estimator",
    "get_model",
    "register_model",
    "load",
    "read_table",
    "predict_file",
    "evaluate_file",
    "datasets",
    "metrics",
    "tracking",
    "list_datasets",
    "load_dataset",
    "compare",
    "ComparisonResult",
    "EnsembleModel",
]
