"""MLP, ResNet and FT-Transformer estimators (Gorishniy et al., 2021), registered by name."""

from __future__ import annotations

from dataclasses import dataclass

from ..nn import MLP, FTTransformer, ResNet
from .base import COMMON_PARAMS_DOC, TabularClassifierMixin, TabularEstimator, TabularRegressorMixin
from .registry import register_model

__all__ = [
    "MLPClassifier", "MLPRegressor", "ResNetClassifier", "ResNetRegressor",
    "FTTransformerClassifier", "FTTransformerRegressor",
]


def _doc(summary: str, arch_doc: str, example: str) -> str:
    return f"{summary}\n\n    Parameters\n    ----------{arch_doc}{COMMON_PARAMS_DOC}\n    Examples\n    --------\n{example}"


@dataclass(kw_only=True, repr=False, eq=False)
class _MLPParams(TabularEstimator):
    n_blocks: int = 3
    d_block: int = 256
    dropout: float = 0.1
    activation: str = "relu"
    cat_embedding_dim: int = 8

    _module_cls = MLP
    _arch_params = ("n_blocks", "d_block", "dropout", "activation", "cat_embedding_dim")


_MLP_DOC = """
    n_blocks : int, default=3
    d_block : int, default=256
        Width of every hidden layer.
    dropout : float, default=0.1
    activation : {"relu", "gelu", "silu", "tanh"}, default="relu"
    cat_embedding_dim : int, default=8
        Size of the learned embedding of each categorical column."""


class MLPClassifier(TabularClassifierMixin, _MLPParams):
    __doc__ = _doc(
        "Multilayer perceptron classifier: ``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.",
        _MLP_DOC,
        """    >>> from tabular_suite import MLPClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = MLPClassifier(max_epochs=20, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class MLPRegressor(TabularRegressorMixin, _MLPParams):
    __doc__ = _doc(
        "Multilayer perceptron regressor: ``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.",
        _MLP_DOC,
        """    >>> from tabular_suite import MLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = MLPRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _ResNetParams(TabularEstimator):
    n_blocks: int = 3
    d_block: int = 192
    d_hidden_multiplier: float = 2.0
    dropout1: float = 0.15
    dropout2: float = 0.0
    cat_embedding_dim: int = 8

    _module_cls = ResNet
    _arch_params = ("n_blocks", "d_block", "d_hidden_multiplier", "dropout1", "dropout2", "cat_embedding_dim")


_RESNET_DOC = """
    n_blocks : int, default=3
    d_block : int, default=192
    d_hidden_multiplier : float, default=2.0
        Hidden width of each residual block relative to ``d_block``.
    dropout1, dropout2 : float, default=0.15, 0.0
        Dropout inside the block (after ReLU) and on the block's output.
    cat_embedding_dim : int, default=8"""


class ResNetClassifier(TabularClassifierMixin, _ResNetParams):
    __doc__ = _doc(
        "ResNet classifier: residual blocks ``x + Dropout(Linear(Dropout(ReLU(Linear(BN(x))))))``.",
        _RESNET_DOC,
        """    >>> from tabular_suite import ResNetClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> ResNetClassifier(max_epochs=20, random_state=0, num_threads=1).fit(X, y).score(X, y) > 0.9
    True
""",
    )


class ResNetRegressor(TabularRegressorMixin, _ResNetParams):
    __doc__ = _doc(
        "ResNet regressor: residual blocks ``x + Dropout(Linear(Dropout(ReLU(Linear(BN(x))))))``.",
        _RESNET_DOC,
        """    >>> from tabular_suite import ResNetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> ResNetRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y).score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _FTTransformerParams(TabularEstimator):
    n_blocks: int = 3
    d_token: int = 192
    n_heads: int = 8
    attention_dropout: float = 0.2
    ffn_d_hidden_multiplier: float = 4 / 3
    ffn_dropout: float = 0.1
    residual_dropout: float = 0.0
    lr: float = 1e-4
    weight_decay: float = 1e-5

    _module_cls = FTTransformer
    _arch_params = (
        "n_blocks", "d_token", "n_heads", "attention_dropout", "ffn_d_hidden_multiplier",
        "ffn_dropout", "residual_dropout",
    )


_FT_DOC = """
    n_blocks : int, default=3
    d_token : int, default=192
    n_heads : int, default=8
    attention_dropout : float, default=0.2
    ffn_d_hidden_multiplier : float, default=4/3
        ReGLU FFN hidden size relative to ``d_token``.
    ffn_dropout : float, default=0.1
    residual_dropout : float, default=0.0
    (The paper's default configuration; lr defaults to 1e-4 and weight_decay to 1e-5.)"""


class FTTransformerClassifier(TabularClassifierMixin, _FTTransformerParams):
    __doc__ = _doc(
        "FT-Transformer classifier: feature tokens + [CLS] through pre-norm transformer blocks.",
        _FT_DOC,
        """    >>> from tabular_suite import FTTransformerClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = FTTransformerClassifier(max_epochs=10, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class FTTransformerRegressor(TabularRegressorMixin, _FTTransformerParams):
    __doc__ = _doc(
        "FT-Transformer regressor: feature tokens + [CLS] through pre-norm transformer blocks.",
        _FT_DOC,
        """    >>> from tabular_suite import FTTransformerRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = FTTransformerRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.3
    True
""",
    )


register_model("mlp", "Multilayer perceptron (Gorishniy et al. 2021 baseline)",
               classifier=MLPClassifier, regressor=MLPRegressor)
register_model("resnet", "ResNet with BatchNorm residual blocks (Gorishniy et al. 2021)",
               classifier=ResNetClassifier, regressor=ResNetRegressor)
register_model("ft_transformer", "FT-Transformer: feature tokens + transformer (Gorishniy et al. 2021)",
               classifier=FTTransformerClassifier, regressor=FTTransformerRegressor)
