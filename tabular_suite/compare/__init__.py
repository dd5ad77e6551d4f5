"""AutoML-style comparison: cross-validated leaderboard, Caruana ensemble, refit, HTML report.

- :mod:`.candidates`: what can run (registered models by preset, baselines),
- :mod:`.folds`: the fold unit and its time budget, shared by both backends,
- :mod:`.ray_backend`: folds as Ray tasks,
- :mod:`.runner`: :func:`compare`, orchestration only,
- :mod:`.ensemble`, :mod:`.metrics`, :mod:`.report`.
"""

from .candidates import BASELINES, PRESETS, preset_models
from .ensemble import EnsembleModel, caruana_selection, cheapest_selection
from .metrics import get_metric
from .runner import ComparisonResult, compare

__all__ = [
    "compare",
    "ComparisonResult",
    "EnsembleModel",
    "caruana_selection",
    "cheapest_selection",
    "get_metric",
    "BASELINES",
    "PRESETS",
    "preset_models",
]
