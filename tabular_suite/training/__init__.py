"""One training engine for every gradient-trained model."""

from .callbacks import Callback, ProgressBar
from .device import resolve_device, settle_heap, thread_limit
from .engine import Objective, TrainConfig, TrainState, fit_module, predict_module, seeded

__all__ = [
    "Callback",
    "ProgressBar",
    "Objective",
    "TrainConfig",
    "TrainState",
    "fit_module",
    "predict_module",
    "seeded",
    "resolve_device",
    "settle_heap",
    "thread_limit",
]
