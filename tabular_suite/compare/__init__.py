"""AutoML-style comparison: cross-validated leaderboard, Caruana ensemble, refit, HTML report."""

from .candidates import BASELINES, PRESETS
from .ensemble import EnsembleModel, caruana_selection
from .metrics import get_metric
from .runner import ComparisonResult, compare

__all__ = ["compare", "ComparisonResult", "EnsembleModel", "caruana_selection", "get_metric", "BASELINES", "PRESETS"]
