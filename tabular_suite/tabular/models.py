"""The tabular estimators, one (classifier, regressor) pair per architecture, registered by name:
MLP, ResNet, FT-Transformer (Gorishniy et al. 2021), ExcelFormer, AutoInt(+), FinalMLP, TabM and the seed
papers' backbones (Activator, Hourglass MLP, KAN; bidirectional learning is an MLP option)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import is_classifier

from ..core.params import param
from ..core.registry import register_model
from ..core.sklearn_glue import resolve_num_threads
from ..nn.activator import Activator, ActivatorConfig
from ..nn.autoint import AutoInt, AutoIntConfig
from ..nn.excelformer import ExcelFormer, ExcelFormerConfig, feat_mix, hidden_mix
from ..nn.finalmlp import FinalMLP, FinalMLPConfig
from ..nn.ft_transformer import FTTransformer, FTTransformerConfig
from ..nn.hourglass import HourglassMLP, HourglassMLPConfig
from ..nn.kan import KAN, KANConfig
from ..nn.mlp import MLP, MLPConfig
from ..nn.resnet import ResNet, ResNetConfig
from ..nn.tabm import TabM, TabMConfig, ensemble_logits
from ..training.distributed import Ranks
from ..training.engine import INFERENCE_CHUNK, predict_module, weighted_mean
from .base import TabularClassifierMixin, TabularEstimator, TabularRegressorMixin, estimator_doc

__all__ = [
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
    "ActivatorClassifier",
    "ActivatorRegressor",
    "HourglassMLPClassifier",
    "HourglassMLPRegressor",
    "KANClassifier",
    "KANRegressor",
]


# Each estimator inherits its architecture's config (the module's hyperparameters and their
# defaults) after TabularEstimator (the training settings and the shared parameters).
@dataclass(kw_only=True, repr=False, eq=False)
class _MLPParams(TabularEstimator, MLPConfig):
    _module_cls = MLP

    def _train_loss(self):
        """With ``bidirectional``: before each classifier step, one Adam step of the generator (the
        transposed layers, from the batch's classes to its inputs) on the reconstruction loss."""
        if not self.bidirectional:
            return None
        if not is_classifier(self):
            raise ValueError(
                "bidirectional=True trains a generator from the class to the input, so it needs classes: "
                "use MLPClassifier, or set bidirectional=False for regression."
            )
        n_classes, sample_loss, lr = len(self.classes_), self._sample_loss, self.lr
        state = {}

        def loss(module, inputs, y, weight=None):
            if state.get("module") is not module:  # a generator optimizer per fit (Adam, the paper's)
                state.update(module=module, optimizer=torch.optim.Adam(module.parameters(), lr=lr))
            code = (2 * y - 1).unsqueeze(1) if n_classes == 2 else F.one_hot(y, n_classes).to(inputs[0].dtype)
            state["optimizer"].zero_grad(set_to_none=True)
            module.reconstruction_loss(module.generate(code), *inputs).backward()
            state["optimizer"].step()
            return weighted_mean(sample_loss(module(*inputs).float(), y), weight)

        return loss


class MLPClassifier(TabularClassifierMixin, _MLPParams):
    __doc__ = estimator_doc(
        "Multilayer perceptron classifier: ``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.",
        _MLPParams,
        """    >>> from tabular_suite import MLPClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = MLPClassifier(max_epochs=20, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class MLPRegressor(TabularRegressorMixin, _MLPParams):
    __doc__ = estimator_doc(
        "Multilayer perceptron regressor: ``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.",
        _MLPParams,
        """    >>> from tabular_suite import MLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = MLPRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _ResNetParams(TabularEstimator, ResNetConfig):
    _module_cls = ResNet


class ResNetClassifier(TabularClassifierMixin, _ResNetParams):
    __doc__ = estimator_doc(
        "ResNet classifier: residual blocks ``x + Dropout(Linear(Dropout(ReLU(Linear(BN(x))))))``.",
        _ResNetParams,
        """    >>> from tabular_suite import ResNetClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> ResNetClassifier(max_epochs=20, random_state=0, num_threads=1).fit(X, y).score(X, y) > 0.9
    True
""",
    )


class ResNetRegressor(TabularRegressorMixin, _ResNetParams):
    __doc__ = estimator_doc(
        "ResNet regressor: residual blocks ``x + Dropout(Linear(Dropout(ReLU(Linear(BN(x))))))``.",
        _ResNetParams,
        """    >>> from tabular_suite import ResNetRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> ResNetRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y).score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _FTTransformerParams(TabularEstimator, FTTransformerConfig):
    lr: float = 1e-4  # the paper's default configuration

    _module_cls = FTTransformer


class FTTransformerClassifier(TabularClassifierMixin, _FTTransformerParams):
    __doc__ = estimator_doc(
        "FT-Transformer classifier: feature tokens + [CLS] through pre-norm transformer blocks.\n\n"
        "    The defaults are the paper's default configuration.",
        _FTTransformerParams,
        """    >>> from tabular_suite import FTTransformerClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = FTTransformerClassifier(n_blocks=1, d_token=32, lr=1e-3, max_epochs=10, random_state=0, num_threads=1)
    >>> clf = clf.fit(X, y)  # a small model for the example; the defaults are the paper's
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class FTTransformerRegressor(TabularRegressorMixin, _FTTransformerParams):
    __doc__ = estimator_doc(
        "FT-Transformer regressor: feature tokens + [CLS] through pre-norm transformer blocks.\n\n"
        "    The defaults are the paper's default configuration.",
        _FTTransformerParams,
        """    >>> from tabular_suite import FTTransformerRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = FTTransformerRegressor(n_blocks=1, d_token=32, lr=1e-3, max_epochs=30, random_state=0, num_threads=1)
    >>> reg = reg.fit(X, y)
    >>> reg.score(X, y) > 0.3
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _ExcelFormerParams(TabularEstimator, ExcelFormerConfig):
    mix_type: str = param(
        "none",
        "Hid-Mix or Feat-Mix augmentation (Feat-Mix weights labels by mutual information).",
        type='{"none", "hidden", "feature"}',
    )
    beta: float = param(0.5, "Parameter of the Beta(beta, beta) distribution of the mixing rates.")
    # The paper's training recipe: linear warm-up then cosine decay, no weight decay.
    max_epochs: int = 500
    batch_size: int | str = param(
        "auto",
        '"auto": the official rule by feature count (<=32: 512, <=100: 128, <=1000: 32, else 16), halved '
        "while an epoch would have fewer than 8 steps (not below 16).",
        type='int or "auto"',
    )
    lr: float = 1e-4
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    warmup_epochs: float = 10.0
    patience: int | None = 32

    _module_cls = ExcelFormer
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

        super()._init_module(module, prepared, target, train_idx, seed)
        rng = np.random.default_rng(seed)
        rows = (
            train_idx
            if len(train_idx) <= self._MI_MAX_ROWS
            else rng.choice(train_idx, self._MI_MAX_ROWS, replace=False)
        )
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

        def mixed_loss(module, inputs, y, weight=None):
            tokens = module.embed(*inputs)
            if mix_type == "feature":
                tokens, lam, perm = feat_mix(tokens, beta, module.feature_mi)
            else:
                tokens, lam, perm = hidden_mix(tokens, beta)
            out = module.forward_tokens(tokens).float()
            if weight is not None:  # a mixed row weighs as its two rows do, in the mix's proportions
                weight = lam * weight + (1 - lam) * weight[perm]
            if classifier:  # lam * L(y) + (1 - lam) * L(y')
                return weighted_mean(lam * sample_loss(out, y) + (1 - lam) * sample_loss(out, y[perm]), weight)
            return weighted_mean(sample_loss(out, lam * y + (1 - lam) * y[perm]), weight)  # mixed regression target

        return mixed_loss


_EXCEL_SUMMARY = f"""

    Features are ordered by mutual information with the target, estimated on at most
    {_ExcelFormerParams._MI_MAX_ROWS:,} training rows; categorical columns get learned token embeddings,
    so no target encoding is involved. The training defaults are the paper's."""


class ExcelFormerClassifier(TabularClassifierMixin, _ExcelFormerParams):
    __doc__ = estimator_doc(
        "ExcelFormer classifier: semi-permeable attention over MI-ordered feature tokens." + _EXCEL_SUMMARY,
        _ExcelFormerParams,
        """    >>> from tabular_suite import ExcelFormerClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = ExcelFormerClassifier(d_token=32, n_heads=4, max_epochs=6, lr=1e-3, random_state=0,
    ...                             num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class ExcelFormerRegressor(TabularRegressorMixin, _ExcelFormerParams):
    __doc__ = estimator_doc(
        "ExcelFormer regressor: semi-permeable attention over MI-ordered feature tokens." + _EXCEL_SUMMARY,
        _ExcelFormerParams,
        """    >>> from tabular_suite import ExcelFormerRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = ExcelFormerRegressor(d_token=32, n_heads=4, max_epochs=12, lr=1e-3, random_state=0,
    ...                            num_threads=1, mix_type="hidden").fit(X, y)
    >>> reg.score(X, y) > 0.3
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _TabMParams(TabularEstimator, TabMConfig):
    # The official recipe (the tabm README's starting point and example): AdamW, lr 2e-3, weight
    # decay 3e-4, gradients clipped to norm 1 (the example's and every paper config's
    # gradient_clipping_norm), patience 16. The official code stops on the validation score
    # (accuracy or RMSE of the members' mean prediction): monitor="score". The default follows
    # the loss: on the sure-bet suite's small tables, whose 10% validation rows make accuracy
    # coarse, the score cost 2.2 accuracy points on average (benchmarks/RESULTS.md).
    lr: float = 2e-3
    weight_decay: float = 3e-4
    grad_clip: float | None = 1.0

    _module_cls = TabM

    def _output_kind(self) -> str:
        if not is_classifier(self):
            return "regression"
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def _combine_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return ensemble_logits(out, self._output_kind())

    def _training_objective(self, valid=None, valid_weight=None):
        """Each member is trained on its own loss (their mean); validation, early stopping and
        the reported metric use the ensemble's prediction (the mean of the members' probabilities)."""
        objective = super()._training_objective(valid, valid_weight)
        loss, metric, combine, sample_loss = objective.loss, objective.metric, self._combine_outputs, self._sample_loss
        objective.loss = lambda out, y, *weight: loss(combine(out), y, *weight)
        objective.metric = lambda out, y, *weight: metric(combine(out), y, *weight)

        def members_loss(module, inputs, y, weight=None):
            out = module(*inputs).float()  # (n, k, d_out): every member sees the batch
            k = out.shape[1]
            weight = None if weight is None else weight.repeat_interleave(k)
            return weighted_mean(sample_loss(out.flatten(0, 1), y.repeat_interleave(k)), weight)

        objective.train_loss = members_loss
        return objective


_TABM_SUMMARY = """

    ``k`` MLPs that share most weights (BatchEnsemble), trained jointly on the mean of their losses;
    the prediction is the mean of their probabilities (classification) or values (regression).
    ``num_embeddings="piecewise-linear"`` gives the paper's TabM with piecewise-linear embeddings."""


class TabMClassifier(TabularClassifierMixin, _TabMParams):
    __doc__ = estimator_doc(
        "TabM classifier: an efficient ensemble of MLPs (Gorishniy et al. 2025)." + _TABM_SUMMARY,
        _TabMParams,
        """    >>> from tabular_suite import TabMClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = TabMClassifier(k=8, d_block=64, max_epochs=10, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class TabMRegressor(TabularRegressorMixin, _TabMParams):
    __doc__ = estimator_doc(
        "TabM regressor: an efficient ensemble of MLPs (Gorishniy et al. 2025)." + _TABM_SUMMARY,
        _TabMParams,
        """    >>> from tabular_suite import TabMRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = TabMRegressor(k=8, d_block=64, num_embeddings="piecewise-linear", max_epochs=30, random_state=0,
    ...                     num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _ActivatorParams(TabularEstimator, ActivatorConfig):
    # The authors' recipe: Adam, lr 1e-3, no weight decay.
    weight_decay: float = 0.0

    _module_cls = Activator


_ACTIVATOR_SUMMARY = """

    Feature tokens through blocks whose attention and second MLP are replaced by one GLU MLP
    (``x + W3 (LN(act(W1 LN x)) * LN(W2 LN x))``), then the mean over tokens. As in the authors'
    code the blocks act on each token separately, so the model is additive over features."""


class ActivatorClassifier(TabularClassifierMixin, _ActivatorParams):
    __doc__ = estimator_doc(
        "Activator classifier: GLU-activated MLP blocks over feature tokens (Abdullah & Aydin 2024)."
        + _ACTIVATOR_SUMMARY,
        _ActivatorParams,
        """    >>> from tabular_suite import ActivatorClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = ActivatorClassifier(d_token=16, d_hidden=32, n_blocks=2, max_epochs=10, random_state=0,
    ...                           num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class ActivatorRegressor(TabularRegressorMixin, _ActivatorParams):
    __doc__ = estimator_doc(
        "Activator regressor: GLU-activated MLP blocks over feature tokens (Abdullah & Aydin 2024)."
        + _ACTIVATOR_SUMMARY,
        _ActivatorParams,
        """    >>> from tabular_suite import ActivatorRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = ActivatorRegressor(d_token=16, d_hidden=32, n_blocks=2, max_epochs=30, random_state=0,
    ...                          num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _HourglassMLPParams(TabularEstimator, HourglassMLPConfig):
    # The authors' recipe: AdamW (weight decay 1e-2, torch's default), learning rate decayed linearly to 0.
    weight_decay: float = 1e-2
    scheduler: str = "linear"

    _module_cls = HourglassMLP


_HOURGLASS_SUMMARY = """

    A fixed random projection lifts the input to ``d_wide``; each residual block computes
    ``z + W2 ReLU(W1 BN(z))`` through a ``d_narrow`` bottleneck, the skip path staying wide."""


class HourglassMLPClassifier(TabularClassifierMixin, _HourglassMLPParams):
    __doc__ = estimator_doc(
        "Hourglass MLP classifier: wide-narrow-wide residual blocks (Chen et al. 2025)." + _HOURGLASS_SUMMARY,
        _HourglassMLPParams,
        """    >>> from tabular_suite import HourglassMLPClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = HourglassMLPClassifier(max_epochs=10, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class HourglassMLPRegressor(TabularRegressorMixin, _HourglassMLPParams):
    __doc__ = estimator_doc(
        "Hourglass MLP regressor: wide-narrow-wide residual blocks (Chen et al. 2025)." + _HOURGLASS_SUMMARY,
        _HourglassMLPParams,
        """    >>> from tabular_suite import HourglassMLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = HourglassMLPRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
    True
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _KANParams(TabularEstimator, KANConfig):
    # FastKAN's recipe: AdamW, lr 1e-3, weight decay 1e-4.
    weight_decay: float = 1e-4

    _module_cls = KAN


_KAN_SUMMARY = """

    Every edge carries a learnable univariate function (Gaussian radial basis functions on a
    fixed grid, plus a ``SiLU`` base branch) and every node sums its edges."""


class KANClassifier(TabularClassifierMixin, _KANParams):
    __doc__ = estimator_doc(
        "Kolmogorov-Arnold network classifier, FastKAN's RBF form (Liu et al. 2024; Li 2024)." + _KAN_SUMMARY,
        _KANParams,
        """    >>> from tabular_suite import KANClassifier
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    >>> clf = KANClassifier(max_epochs=10, random_state=0, num_threads=1).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
""",
    )


class KANRegressor(TabularRegressorMixin, _KANParams):
    __doc__ = estimator_doc(
        "Kolmogorov-Arnold network regressor, FastKAN's RBF form (Liu et al. 2024; Li 2024)." + _KAN_SUMMARY,
        _KANParams,
        """    >>> from tabular_suite import KANRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> reg = KANRegressor(max_epochs=30, random_state=0, num_threads=1).fit(X, y)
    >>> reg.score(X, y) > 0.4
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
    """FuxiCTR's training recipe (the defaults below): Adam, embedding L2, gradient clipping,
    lr / 10 (down to 1e-6) on each epoch without validation improvement (AUC for binary
    targets, else the loss) and early stopping after a few such epochs."""

    embedding_l2: float = param(
        1e-5,
        "L2 penalty ``embedding_l2 / 2 * sum ||E||^2`` over the embedding tables, added to the training "
        "loss at every step (FuxiCTR's embedding regularizer); with ``sparse_embeddings`` over the rows "
        "the step looked up (each once) and the numeric vectors.",
    )
    sparse_embeddings: bool = param(
        False,
        "Sparse embedding updates: the categorical tables get sparse gradients and lazy Adam "
        "(``torch.optim.SparseAdam``: only the rows a batch looks up, and their moments, are read and "
        "written) and the embedding L2 covers those rows; a step's cost then follows the batch, not the "
        "vocabulary. False: FuxiCTR's dense Adam and whole-table L2 (the parity setting).",
    )
    max_epochs: int = 100
    batch_size: int = 1024
    weight_decay: float = param(0.0, "AdamW weight decay (FuxiCTR: none, i.e. Adam; embeddings get embedding_l2).")
    scheduler: str = param(
        "plateau",
        'Learning-rate schedule: FuxiCTR\'s "plateau" divides the rate by 10 (down to 1e-6) after each '
        "epoch without a better validation AUC (binary targets; the validation loss otherwise); "
        '"constant", "cosine" or "linear" as for the other models.',
        type='{"constant", "cosine", "linear", "plateau"}',
    )
    patience: int | None = param(
        2,
        "Early stopping: epochs without a better validation AUC (binary targets; the validation loss otherwise) "
        "before stopping; the best weights are restored. None trains for ``max_epochs``.",
    )
    grad_clip: float | None = 10.0

    def _check_params(self) -> None:
        super()._check_params()
        if not (isinstance(self.embedding_l2, (int, float)) and self.embedding_l2 >= 0):
            raise ValueError(f"embedding_l2 must be a number >= 0, got {self.embedding_l2!r}.")

    def _train_config(self, seed: int, n_train: int):
        config = super()._train_config(seed, n_train)
        config.plateau_factor, config.plateau_patience, config.plateau_min_lr = 0.1, 0, 1e-6
        config.sparse_embeddings = bool(self.sparse_embeddings)
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

    def _validator(self, valid, valid_weight=None):
        """FuxiCTR monitors validation AUC (binary tasks): early stopping and lr decay follow it
        (weighted by the validation rows' weights when there are any)."""
        if valid is None or not is_classifier(self) or len(self.classes_) != 2:
            return None
        from sklearn.metrics import roc_auc_score

        *inputs, target = valid
        labels = target.numpy()
        weights = None if valid_weight is None else valid_weight.numpy()

        def evaluate(module):
            # Data-parallel: each rank predicts its share of the rows, and every rank gets them all
            # (a Ranks of the group fit_module joined).
            threads = resolve_num_threads(self.num_threads)
            out = Ranks().predict_shared(
                lambda part: predict_module(
                    module, part, device=self.device, precision=self.precision, num_threads=threads
                ),
                inputs,
                INFERENCE_CHUNK,
            )[:, 0]
            both = 0 < labels.sum() < len(labels)
            auc = float(roc_auc_score(labels, out.numpy(), sample_weight=weights)) if both else 0.5
            losses = F.binary_cross_entropy_with_logits(out, target, reduction="none")
            loss = float(weighted_mean(losses, valid_weight))
            return -auc, {"val_loss": loss, "val_auc": auc}

        return evaluate

    def _train_loss(self):
        if not self.embedding_l2:
            return None
        l2, sample_loss, sparse = self.embedding_l2, self._sample_loss, self.sparse_embeddings

        def regularised(module, inputs, y, weight=None):
            out = module(*inputs).float()
            if sparse:  # the rows this step updates (inputs: x_num, x_cat)
                penalty = 0.5 * l2 * module.embedding.looked_up_squared_norm(inputs[1])
            else:
                penalty = 0.5 * l2 * _SquaredNorm.apply(*module.embedding.tables())
            return weighted_mean(sample_loss(out, y), weight) + penalty

        return regularised


_CTR_SUMMARY = """

    The training defaults follow FuxiCTR: Adam, large batches, gradient-norm clipping, the
    learning rate divided by 10 on a validation plateau and early stopping soon after."""


@dataclass(kw_only=True, repr=False, eq=False)
class _AutoIntParams(_CTRParams, AutoIntConfig):
    # AutoInt+ is an estimator-level switch: the module takes dnn_hidden alone (empty = plain
    # AutoInt); the estimator keeps FuxiCTR's AutoInt+ widths ready behind use_dnn.
    use_dnn: bool = param(
        False,
        "AutoInt+: add a parallel MLP (``dnn_hidden``, ``dnn_dropout``, ``batch_norm``) over the flattened embeddings.",
    )
    dnn_hidden: tuple = param(
        (400, 400, 400), "Widths of AutoInt+'s MLP (used when ``use_dnn=True``).", type="tuple of int"
    )

    _module_cls = AutoInt

    def _module_kwargs(self) -> dict:
        kwargs = super()._module_kwargs()
        kwargs["dnn_hidden"] = tuple(self.dnn_hidden) if self.use_dnn else ()
        return kwargs


class AutoIntClassifier(TabularClassifierMixin, _AutoIntParams):
    __doc__ = estimator_doc(
        "AutoInt / AutoInt+ classifier: self-attention over field embeddings (Song et al. 2019)." + _CTR_SUMMARY,
        _AutoIntParams,
        """    >>> from tabular_suite import AutoIntClassifier
    >>> from tabular_suite.datasets import make_ctr
    >>> data = make_ctr(3_000, n_users=300, n_items=200, seed=0)
    >>> clf = AutoIntClassifier(use_dnn=True, dnn_hidden=(64, 64), random_state=0, num_threads=1).fit(data.X, data.y)
    >>> clf.predict_proba(data.X[:2]).shape
    (2, 2)
""",
    )


class AutoIntRegressor(TabularRegressorMixin, _AutoIntParams):
    __doc__ = estimator_doc(
        "AutoInt / AutoInt+ regressor: self-attention over field embeddings (Song et al. 2019)." + _CTR_SUMMARY,
        _AutoIntParams,
        """    >>> from tabular_suite import AutoIntRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> AutoIntRegressor(max_epochs=5, random_state=0, num_threads=1).fit(X, y).predict(X[:3]).shape
    (3,)
""",
    )


@dataclass(kw_only=True, repr=False, eq=False)
class _FinalMLPParams(_CTRParams, FinalMLPConfig):
    # Column names here; the module takes their positions among its fields (gate_fields_1/2).
    gate_features_1: Any = param(
        None,
        'Columns whose embeddings are the first stream\'s gate context (e.g. ``["user"]``); None = a learned '
        "bias vector.",
        type="list of column names or None",
    )
    gate_features_2: Any = param(
        None, "As ``gate_features_1``, for the second stream's gate.", type="list of column names or None"
    )

    _module_cls = FinalMLP

    def _build_module(self, n_num: int, cardinalities: list[int], d_out: int):
        return FinalMLP(
            n_num=n_num,
            cardinalities=list(cardinalities),
            d_out=d_out,
            **self._module_kwargs(),
            gate_fields_1=self._field_positions(self.gate_features_1, "gate_features_1"),
            gate_fields_2=self._field_positions(self.gate_features_2, "gate_features_2"),
        )


class FinalMLPClassifier(TabularClassifierMixin, _FinalMLPParams):
    __doc__ = estimator_doc(
        "FinalMLP classifier: two gated MLP streams fused bilinearly (Mao et al. 2023)." + _CTR_SUMMARY,
        _FinalMLPParams,
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
    __doc__ = estimator_doc(
        "FinalMLP regressor: two gated MLP streams fused bilinearly (Mao et al. 2023)." + _CTR_SUMMARY,
        _FinalMLPParams,
        """    >>> from tabular_suite import FinalMLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True, as_frame=True)
    >>> FinalMLPRegressor(max_epochs=5, random_state=0, num_threads=1).fit(X, y).predict(X[:3]).shape
    (3,)
""",
    )


# The general backbones join both comparison presets; the CTR models (autoint, finalmlp) join
# "best" or are named. fast_params: smaller models for the "fast" preset.
register_model(
    "mlp",
    "Multilayer perceptron (Gorishniy et al. 2021 baseline)",
    classifier=MLPClassifier,
    regressor=MLPRegressor,
    presets=("fast", "best"),
)
register_model(
    "resnet",
    "ResNet with BatchNorm residual blocks (Gorishniy et al. 2021)",
    classifier=ResNetClassifier,
    regressor=ResNetRegressor,
    presets=("fast", "best"),
)
register_model(
    "ft_transformer",
    "FT-Transformer: feature tokens + transformer (Gorishniy et al. 2021)",
    classifier=FTTransformerClassifier,
    regressor=FTTransformerRegressor,
    presets=("fast", "best"),
    # lr 1e-3 (the paper's 1e-4 is for up to hundreds of epochs): within the fast preset's 40 epochs
    # the smaller model stopped on the epoch cap or a plateau, far behind the MLP on small tables
    # (benchmarks/RESULTS.md, "FT-Transformer in compare()'s fast preset").
    fast_params={"d_token": 64, "n_blocks": 2, "n_heads": 8, "lr": 1e-3},
)
register_model(
    "excelformer",
    "ExcelFormer: semi-permeable attention + Hid-Mix/Feat-Mix (Chen et al. 2024)",
    classifier=ExcelFormerClassifier,
    regressor=ExcelFormerRegressor,
    presets=("fast", "best"),
    fast_params={"d_token": 64, "n_blocks": 2, "n_heads": 8, "warmup_epochs": 2.0, "lr": 1e-3},
)
register_model(
    "autoint",
    "AutoInt / AutoInt+ (use_dnn=True): self-attention over field embeddings (Song et al. 2019)",
    classifier=AutoIntClassifier,
    regressor=AutoIntRegressor,
    presets=("best",),
)
register_model(
    "finalmlp",
    "FinalMLP: two gated MLP streams with bilinear fusion (Mao et al. 2023)",
    classifier=FinalMLPClassifier,
    regressor=FinalMLPRegressor,
    presets=("best",),
)
register_model(
    "tabm",
    "TabM: an efficient ensemble of k MLPs, BatchEnsemble-style (Gorishniy et al. 2025)",
    classifier=TabMClassifier,
    regressor=TabMRegressor,
    presets=("best",),
)
register_model(
    "activator",
    "Activator: GLU-activated MLP blocks in place of attention, over feature tokens (Abdullah & Aydin 2024)",
    classifier=ActivatorClassifier,
    regressor=ActivatorRegressor,
)
register_model(
    "hourglass_mlp",
    "Hourglass MLP: wide-narrow-wide residual blocks after a fixed random lift (Chen et al. 2025)",
    classifier=HourglassMLPClassifier,
    regressor=HourglassMLPRegressor,
)
register_model(
    "kan",
    "Kolmogorov-Arnold network with Gaussian RBF edge functions (FastKAN; Liu et al. 2024)",
    classifier=KANClassifier,
    regressor=KANRegressor,
)
