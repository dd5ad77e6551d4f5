"""tabular_suite: deep learning on tables with an sklearn API, a CLI and MLflow tracking.

Examples
--------
>>> import tabular_suite
>>> tabular_suite.list_models()
['autoint', 'excelformer', 'finalmlp', 'ft_transformer', 'mlp', 'resnet']
"""

__version__ = "0.1.0"

from .estimators import (  # noqa: E402
    AutoIntClassifier,
    AutoIntRegressor,
    ExcelFormerClassifier,
    ExcelFormerRegressor,
    FinalMLPClassifier,
    FinalMLPRegressor,
    FTTransformerClassifier,
    FTTransformerRegressor,
    MLPClassifier,
    MLPRegressor,
    ResNetClassifier,
    ResNetRegressor,
    SASRecRecommender,
    TabPFNClassifier,
    TabPFNRegressor,
    get_model,
    list_models,
    load,
    make_estimator,
    register_model,
)
from .data.io import read_table  # noqa: E402
from . import datasets, metrics, tracking  # noqa: E402
from .compare import ComparisonResult, EnsembleModel, compare  # noqa: E402
from .datasets import list_datasets, load_dataset  # noqa: E402

__all__ = [
    "__version__", "MLPClassifier", "MLPRegressor", "ResNetClassifier", "ResNetRegressor",
    "FTTransformerClassifier", "FTTransformerRegressor", "ExcelFormerClassifier", "ExcelFormerRegressor",
    "AutoIntClassifier", "AutoIntRegressor", "FinalMLPClassifier", "FinalMLPRegressor", "SASRecRecommender", "TabPFNClassifier", "TabPFNRegressor", "list_models", "make_estimator",
    "get_model", "register_model", "load", "read_table", "datasets", "metrics", "tracking", "list_datasets",
    "load_dataset", "compare", "ComparisonResult", "EnsembleModel",
]
