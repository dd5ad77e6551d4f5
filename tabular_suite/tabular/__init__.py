"""Tabular estimators: one sklearn class per (architecture, task), trained by the one engine,
with streaming fits (``partial_fit``, ``fit_parquet``) for data larger than memory."""

from . import models
from .base import TabularClassifierMixin, TabularEstimator, TabularRegressorMixin
from .models import *  # noqa: F403 - the estimators, listed once in models.__all__

__all__ = ["TabularEstimator", "TabularClassifierMixin", "TabularRegressorMixin", *models.__all__]
