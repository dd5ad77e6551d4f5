"""The in-context (TabPFN-style) model family.

- :mod:`.weights`: the weights file format and the shipped weights (``pretrained/``),
- :mod:`.transforms`: the feature transforms of the ensemble's views,
- :mod:`.estimator`: :class:`TabPFNClassifier` and :class:`TabPFNRegressor`,
- :mod:`.prior`: random causal-model datasets drawn on the fly,
- :mod:`.pretrain`: the resumable pre-training loop and weight export,
- :mod:`.evaluation`: scoring the model on real tables during pre-training.
"""

from .estimator import TabPFNClassifier, TabPFNRegressor
from .evaluation import real_data_callback
from .pretrain import PretrainConfig, export_weights, pretrain
from .prior import PriorBatch, SyntheticPrior
from .weights import DEFAULT_WEIGHTS, load_weights, save_weights

__all__ = [
    "TabPFNClassifier",
    "TabPFNRegressor",
    "PriorBatch",
    "SyntheticPrior",
    "PretrainConfig",
    "pretrain",
    "export_weights",
    "load_weights",
    "save_weights",
    "real_data_callback",
    "DEFAULT_WEIGHTS",
]
