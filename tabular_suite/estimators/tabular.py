"""MLP, ResNet and FT-Transformer estimators (Gorishniy et al., 2021), registered by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import is_classifier

from ..nn import MLP, ExcelFormer, FTTransformer, ResNet
from ..nn.autoint import AutoInt
from ..nn.excelformer import feat_mix, hidden_mix
from ..nn.finalmlp import FinalMLP
from ..training.engine import predict_module
from .base import COMMON_PARAMS_DOC, TabularClassifierMixin, TabularEstimator, TabularRegressorMixin
from .registry import register_model

__all__ = [
    "MLPClassifier", "MLPRegressor", "ResNetClassifier", "ResNetRegressor",
    "FTTransformerClassifier", "FTTransformerRegressor", "ExcelFormerClassifier", "ExcelFormerRegressor",
    "AutoIntClassifier", "AutoIntRegressor", "FinalMLPClassifier", "FinalMLPRegressor",
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


@dataclass(kw_only=True, repr=False, eq=False)
class _ExcelFormerParams(TabularEstimator):
    n_blocks: int = 3
    d_token: int = 256
    n_heads: int = 32
    attention_dropout: float = 0.3
    ffn_dropout: float = 0.0
    residual_dropout: float = 0.0
    init_scale: float = 0.01
    mix_type: str = "none"
    beta: float = 0.5
    max_epochs: int = 500
    batch_size: Any = "auto"
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    warmup_epochs: float = 10.0
    patience: int | None = 32

    _module_cls = ExcelFormer
    _arch_params = (
        "n_blocks", "d_token", "n_heads", "attention_dropout", "ffn_dropout", "residual_dropout", "init_scale",
    )
    #: Rows used to estimate mutual information (kNN estimators are slow on large data).
    _MI_MAX_ROWS = 20_000

    def _check_params(self) -> None:
        super()._check_params()
        if self.mix_type not in ("none", "hidden", "feature"):
            raise ValueError(f"mix_type must be 'none', 'hidden' or 'feature', got {self.mix_type!r}.")
        if not self.beta > 0:
            raise ValueError(f"beta must be > 0, got {self.beta!r}.")

    def _batch_size(self, n_train: int) -> int:
        if self.batch_size != "auto":
            return self.batch_size
        # The official code's rule by feature count (Grinsztajn et al. datasets) ...
        n_features = self.n_features_in_
        size = 512 if n_features <= 32 else 128 if n_features <= 100 else 32 if n_features <= 1000 else 16
        # ... and, for small data, at least ~8 steps per epoch (powers of two, >= 16).
        while size > 16 and size * 8 > n_train:
            size //= 2
        return size

    def _init_module(self, module, prepared, target, train_idx, seed: int) -> None:
        """Order tokens by mutual information with the target on the training rows."""
        from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

        rng = np.random.default_rng(seed)
        rows = train_idx if len(train_idx) <= self._MI_MAX_ROWS else rng.choice(train_idx, self._MI_MAX_ROWS, replace=False)
        X = np.concatenate([prepared.x_num[rows], prepared.x_cat[rows].astype(np.float32)], axis=1)
        n_continuous = len(self.preprocessor_.schema.numeric)
        discrete = np.arange(X.shape[1]) >= n_continuous  # missing indicators and categories
        mi_func = mutual_info_classif if is_classifier(self) else mutual_info_regression
        mi = mi_func(X, target[rows], discrete_features=discrete, random_state=seed % (2**31))
        module.set_feature_order(mi)

    @property
    def mutual_information_(self):
        """Normalised mutual information of each model input with the target, in token order.

        Inputs are the preprocessed features (numeric columns, their missing indicators,
        categorical columns); the first is the most informative.
        """
        import pandas as pd
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "module_")
        names = self.preprocessor_.output_feature_names
        order = self.module_.feature_order.tolist()
        return pd.Series(self.module_.feature_mi.tolist(), index=[names[i] for i in order], name="mutual_information")

    def _train_loss(self):
        if self.mix_type == "none":
            return None
        classifier, beta, mix_type = is_classifier(self), self.beta, self.mix_type
        sample_loss = self._sample_loss

        def mixed_loss(module, inputs, y):
            tokens = module.embed(*inputs)
            if mix_type == "feature":
                tokens, lam, perm = feat_mix(tokens, beta, module.feature_mi)
            else:
                tokens, lam, perm = hidden_mix(tokens, beta)
            out = module.forward_tokens(tokens).float()
            if classifier:  # lam * L(y) + (1 - lam) * L(y')
                return (lam * sample_loss(out, y) + (1 - lam) * sample_loss(out, y[perm])).mean()
            return sample_loss(out, lam * y + (1 - lam) * y[perm]).mean()  # mixed regression target

        return mixed_loss


_EXCEL_DOC = """
    n_blocks : int, default=3
    d_token : int, default=256
    n_heads : int, default=32
    attention_dropout : float, default=0.3
    ffn_dropout, residual_dropout : float, default=0.0
    init_scale : float, default=0.01
        Interaction-attenuated initialisation: scale of the Kaiming-uniform bound for the
        attention Q/K/V and FFN weights.
    mix_type : {"none", "hidden", "feature"}, default="none"
        Hid-Mix or Feat-Mix augmentation (Feat-Mix weights labels by mutual information).
    beta : float, default=0.5
        Parameter of the Beta(beta, beta) distribution of the mixing rates.
    batch_size : int or "auto", default="auto"
        "auto": the official rule by feature count (<=32: 512, <=100: 128, <=1000: 32,
        else 16), halved while an epoch would have fewer than 8 steps (not below 16).
    (Paper defaults: AdamW lr 1e-4, weight decay 0, 10 warm-up epochs then cosine decay over
    max_epochs=500, patience 32. Features are ordered by mutual information with the target,
    estimated on at most 20,000 training rows; categorical columns get learned token
    embeddings, so no target encoding is involved.)"""


class ExcelFormerClassifier(TabularClassifierMixin, _ExcelFormerParams):
    __doc__ = _doc(
        "ExcelFormer classifier: semi-permeable attention over MI-ordered feature tokens.",
        _EXCEL_DOC,
        """    >>> from tabular_suite import ExcelFormerClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = ExcelFormerClassifier(d_token=32, n_heads=4, max_epochs=15, lr=1e-3, random_state=0,
    ...                             num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class ExcelFormerRegressor(TabularRegressorMixin, _ExcelFormerParams):
    __doc__ = _doc(
        "ExcelFormer regressor: semi-permeable attention over MI-ordered feature tokens.",
        _EXCEL_DOC,
        """    >>> from tabular_suite import ExcelFormerRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = ExcelFormerRegressor(d_token=32, n_heads=4, max_epochs=30, lr=1e-3, random_state=0,
    ...                            num_threads=1, mix_type="hidden").fit(X, y)
    >>> reg.score(X, y) > 0.3
    True
""",
    )


class _SquaredNorm(torch.autograd.Function):
    """Sum of the squared entries of fp32 tensors, as ``sum(t.pow(2).sum())`` but without its
    temporaries: a dot product per tensor, and ``2 g t`` in the backward pass (with
    embedding tables of millions of entries, ``pow(2)`` and its backward cost ~5% of a step)."""

    @staticmethod
    def forward(ctx, *tensors):
        ctx.save_for_backward(*tensors)
        with torch.autocast(tensors[0].device.type, enabled=False):
            return sum(torch.dot(t.reshape(-1), t.reshape(-1)) for t in tensors)

    @staticmethod
    def backward(ctx, grad):
        return tuple(t * (2 * grad) for t in ctx.saved_tensors)


@dataclass(kw_only=True, repr=False, eq=False)
class _CTRParams(TabularEstimator):
    """FuxiCTR's training recipe: Adam lr 1e-3, embedding L2, gradient clipping at 10, lr / 10
    (down to 1e-6) on each epoch without validation improvement (AUC for binary targets, else
    the loss), early stopping after 2 such epochs."""

    embedding_l2: float = 1e-5
    max_epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "plateau"
    patience: int | None = 2
    grad_clip: float | None = 10.0

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.embedding_l2, (int, float)) and self.embedding_l2 >= 0):
            raise ValueError(f"embedding_l2 must be a number >= 0, got {self.embedding_l2!r}.")

    def _train_config(self, seed: int, n_train: int):
        config = super()._train_config(seed, n_train)
        config.plateau_factor, config.plateau_patience, config.plateau_min_lr = 0.1, 0, 1e-6
        return config

    def _field_positions(self, names, argument: str) -> list[int]:
        """Model-input positions of the named columns (FieldEmbedding order: numeric, then categorical)."""
        if not names:
            return []
        fields = list(self.preprocessor_.output_feature_names)
        out = []
        for name in [names] if isinstance(names, str) else names:
            if name not in fields:
                raise ValueError(f"{argument} names {name!r}, which is not a column of X (columns: {fields[:20]}).")
            out.append(fields.index(name))
        return out

    def _validator(self, valid):
        """FuxiCTR monitors validation AUC (binary tasks): early stopping and lr decay follow it."""
        if valid is None or not is_classifier(self) or len(self.classes_) != 2:
            return None
        from sklearn.metrics import roc_auc_score

        *inputs, target = valid
        labels = target.numpy()

        def evaluate(module):
            out = predict_module(module, inputs, device=self.device, precision=self.precision,
                                 num_threads=torch.get_num_threads())[:, 0]
            auc = float(roc_auc_score(labels, out.numpy())) if 0 < labels.sum() < len(labels) else 0.5
            loss = float(F.binary_cross_entropy_with_logits(out, target))
            return -auc, {"val_loss": loss, "val_auc": auc}

        return evaluate

    def _train_loss(self):
        if not self.embedding_l2:
            return None
        l2, sample_loss = self.embedding_l2, self._sample_loss

        def regularised(module, inputs, y):
            out = module(*inputs).float()
            return sample_loss(out, y).mean() + 0.5 * l2 * _SquaredNorm.apply(*module.embedding.tables())

        return regularised


_CTR_TRAINING_DOC = """
    embedding_l2 : float, default=1e-5
        L2 penalty ``embedding_l2 / 2 * sum ||E||^2`` over the embedding tables, added to the
        training loss at every step (FuxiCTR's embedding regularizer).
    (Training defaults follow FuxiCTR: lr 1e-3 (Adam: no weight decay), batch 1024,
    gradient-norm clipping at 10, the learning rate divided by 10 (down to 1e-6) after each
    epoch without a better validation AUC (binary targets; the validation loss otherwise),
    early stopping after 2 such epochs with the best weights restored.)"""


@dataclass(kw_only=True, repr=False, eq=False)
class _AutoIntParams(_CTRParams):
    embedding_dim: int = 16
    attention_layers: int = 3
    n_heads: int = 2
    attention_dim: int = 32
    use_residual: bool = True
    use_scale: bool = False
    layer_norm: bool = False
    attention_dropout: float = 0.0
    use_dnn: bool = False
    dnn_hidden: tuple = (400, 400, 400)
    dnn_dropout: float = 0.0
    batch_norm: bool = False

    _module_cls = AutoInt
    _arch_params = ("embedding_dim", "attention_layers", "n_heads", "attention_dim", "use_residual", "use_scale",
                    "layer_norm", "attention_dropout", "dnn_dropout", "batch_norm")

    def _module_kwargs(self) -> dict:
        kwargs = super()._module_kwargs()
        kwargs["dnn_hidden"] = tuple(self.dnn_hidden) if self.use_dnn else ()
        return kwargs


_AUTOINT_DOC = """
    embedding_dim : int, default=16
        Size of every field embedding.
    attention_layers : int, default=3
    n_heads : int, default=2
    attention_dim : int, default=32
        Output width of each interacting layer (all heads together).
    use_residual, use_scale, layer_norm : bool, default=True, False, False
        Residual projection; 1/sqrt(head dim) score scaling; LayerNorm before the ReLU.
    attention_dropout : float, default=0.0
    use_dnn : bool, default=False
        AutoInt+: add a parallel MLP (``dnn_hidden``, ``dnn_dropout``, ``batch_norm``) over
        the flattened embeddings.
    dnn_hidden : tuple of int, default=(400, 400, 400)""" + _CTR_TRAINING_DOC


class AutoIntClassifier(TabularClassifierMixin, _AutoIntParams):
    __doc__ = _doc(
        "AutoInt / AutoInt+ classifier: self-attention over field embeddings (Song et al. 2019).",
        _AUTOINT_DOC,
        """    >>> from tabular_suite import AutoIntClassifier
    >>> from tabular_suite.datasets import make_ctr
    >>> data = make_ctr(3_000, n_users=300, n_items=200, seed=0)
    >>> clf = AutoIntClassifier(use_dnn=True, dnn_hidden=(64, 64), random_state=0, num_threads=1).fit(data.X, data.y)
    >>> clf.predict_proba(data.X[:2]).shape
    (2, 2)
""",
    )


class AutoIntRegressor(TabularRegressorMixin, _AutoIntParams):
    __doc__ = _doc(
        "AutoInt / AutoInt+ regressor: self-attention over field embeddings (Song et al. 2019).",
        _AUTOINT_DOC,
        """    >>> from tabular_suite import AutoIntRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> AutoIntRegressor(max_epochs=5, random_state=0, num_threads=1).fit(X, y).predict(X[:3]).shape
    (3,)
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _FinalMLPParams(_CTRParams):
    embedding_dim: int = 10
    mlp1_hidden: tuple = (400, 400, 400)
    mlp2_hidden: tuple = (800,)
    mlp1_dropout: float = 0.0
    mlp2_dropout: float = 0.0
    batch_norm: bool = False
    use_gates: bool = True
    gate_hidden: tuple = (800,)
    gate_features_1: Any = None
    gate_features_2: Any = None
    n_heads: int = 50

    _module_cls = FinalMLP
    _arch_params = ("embedding_dim", "mlp1_hidden", "mlp2_hidden", "mlp1_dropout", "mlp2_dropout", "batch_norm",
                    "use_gates", "gate_hidden", "n_heads")

    def _build_module(self, n_num: int, cardinalities: list[int], d_out: int):
        kwargs = self._module_kwargs()
        for key in ("mlp1_hidden", "mlp2_hidden", "gate_hidden"):
            kwargs[key] = tuple(kwargs[key])
        return FinalMLP(
            n_num=n_num, cardinalities=list(cardinalities), d_out=d_out, **kwargs,
            gate_fields_1=self._field_positions(self.gate_features_1, "gate_features_1"),
            gate_fields_2=self._field_positions(self.gate_features_2, "gate_features_2"),
        )


_FINALMLP_DOC = """
    embedding_dim : int, default=10
    mlp1_hidden, mlp2_hidden : tuple of int, default=(400, 400, 400), (800,)
        The two streams' MLP widths (the fusion reads their last layers).
    mlp1_dropout, mlp2_dropout : float, default=0.0
    batch_norm : bool, default=False
    use_gates : bool, default=True
        Feature gating of each stream's input: ``2 * sigmoid(MLP(context))``.
    gate_hidden : tuple of int, default=(800,)
    gate_features_1, gate_features_2 : list of column names or None
        Columns whose embeddings are each gate's context (e.g. ``["user"]``); None = a
        learned bias vector.
    n_heads : int, default=50
        Heads of the bilinear fusion; must divide both streams' last widths.""" + _CTR_TRAINING_DOC


class FinalMLPClassifier(TabularClassifierMixin, _FinalMLPParams):
    __doc__ = _doc(
        "FinalMLP classifier: two gated MLP streams fused bilinearly (Mao et al. 2023).",
        _FINALMLP_DOC,
        """    >>> from tabular_suite import FinalMLPClassifier
    >>> from tabular_suite.datasets import make_ctr
    >>> data = make_ctr(3_000, n_users=300, n_items=200, seed=0)
    >>> clf = FinalMLPClassifier(mlp1_hidden=(64, 64), mlp2_hidden=(32,), gate_hidden=(32,), n_heads=8,
    ...                          gate_features_1=["user"], random_state=0, num_threads=1).fit(data.X, data.y)
    >>> clf.predict_proba(data.X[:2]).shape
    (2, 2)
""",
    )


class FinalMLPRegressor(TabularRegressorMixin, _FinalMLPParams):
    __doc__ = _doc(
        "FinalMLP regressor: two gated MLP streams fused bilinearly (Mao et al. 2023).",
        _FINALMLP_DOC,
        """    >>> from tabular_suite import FinalMLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> FinalMLPRegressor(max_epochs=5, random_state=0, num_threads=1).fit(X, y).predict(X[:3]).shape
    (3,)
""",
    )


register_model("mlp", "Multilayer perceptron (Gorishniy et al. 2021 baseline)",
               classifier=MLPClassifier, regressor=MLPRegressor)
register_model("resnet", "ResNet with BatchNorm residual blocks (Gorishniy et al. 2021)",
               classifier=ResNetClassifier, regressor=ResNetRegressor)
register_model("ft_transformer", "FT-Transformer: feature tokens + transformer (Gorishniy et al. 2021)",
               classifier=FTTransformerClassifier, regressor=FTTransformerRegressor)
register_model("excelformer", "ExcelFormer: semi-permeable attention + Hid-Mix/Feat-Mix (Chen et al. 2024)",
               classifier=ExcelFormerClassifier, regressor=ExcelFormerRegressor)
register_model("autoint", "AutoInt / AutoInt+ (use_dnn=True): self-attention over field embeddings (Song et al. 2019)",
               classifier=AutoIntClassifier, regressor=AutoIntRegressor)
register_model("finalmlp", "FinalMLP: two gated MLP streams with bilinear fusion (Mao et al. 2023)",
               classifier=FinalMLPClassifier, regressor=FinalMLPRegressor)
