"""The sklearn layer: one estimator class per (architecture, task), plus the registry."""

from .base import TabularEstimator, load
from .registry import get_model, list_models, make_estimator, register_model
from .tabular import (
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
)
from .sequential import SASRecRecommender
from .incontext import TabPFNClassifier, TabPFNRegressor

__all__ = [
    "TabularEstimator", "load", "get_model", "list_models", "make_estimator", "register_model",
    "MLPClassifier", "MLPRegressor", "ResNetClassifier", "ResNetRegressor",
    "FTTransformerClassifier", "FTTransformerRegressor", "ExcelFormerClassifier", "ExcelFormerRegressor",
    "AutoIntClassifier", "AutoIntRegressor", "FinalMLPClassifier", "FinalMLPRegressor",
    "SASRecRecommender", "TabPFNClassifier", "TabPFNRegressor",
]
