"""The in-context (TabPFN-style) model's synthetic prior and pre-training.

- :mod:`.priors`: random causal-model datasets drawn on the fly,
- :mod:`.pretrain`: the resumable pre-training loop, weight export and loading.

The estimators are :class:`tabular_suite.TabPFNClassifier` and
:class:`tabular_suite.TabPFNRegressor`; their default weights live in ``weights/``.
"""

from .priors import PriorBatch, SyntheticPrior
from .pretrain import PretrainConfig, export_weights, load_weights, pretrain, real_data_callback

__all__ = ["PriorBatch", "SyntheticPrior", "PretrainConfig", "pretrain", "export_weights", "load_weights",
           "real_data_callback"]
