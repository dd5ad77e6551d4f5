"""Tabular estimators: one sklearn class per (architecture, task), trained by the one engine,
with streaming fits (``partial_fit``, ``fit_parquet``) for data larger than memory."""

from .base import TabularClassifierMixin, TabularEstimator, TabularRegressorMixin
from .models import (
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
    TabMClassifier,
    TabMRegressor,
)

__all__ = [
    "TabularEstimator",
    "TabularClassifierMixin",
    "TabularRegressorMixin",
    "MLPClassifier",
    "MLPRegressor",
    "ResNetClassifier",
    "ResNetRegressor",
    "FTTransformerClassifier",
    "FTTransformerRegressor",
    "ExcelFormerClassifier",
    "ExcelFormerRegressor",
    "AutoIntClassifier",
    "AutoIntRegressor",
    "FinalMLPClassifier",
    "FinalMLPRegressor",
    "TabMClassifier",
    "TabMRegressor",
]
