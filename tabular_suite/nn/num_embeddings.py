"""Embeddings of numeric features ("On Embeddings for Numerical Features in Tabular Deep
Learning", Gorishniy et al., NeurIPS 2022; the ``rtdl_num_embeddings`` package).

Each numeric feature (a scalar) becomes a vector before the backbone, chosen by one
parameter, ``num_embeddings``:

- ``"periodic"`` (PLR): ``ReLU(Linear([cos(2 pi c x), sin(2 pi c x)]))`` with trainable
  frequencies ``c ~ N(0, frequency_init_scale)`` and one linear layer per feature;
- ``"periodic-lite"``: the same with one linear layer shared by all features;
- ``"piecewise-linear"``: the piecewise-linear encoding (PLE) over bins from training
  quantiles, then a linear layer per feature, plus a linear embedding of the raw value
  (the package's version "B", which TabM uses);
- ``"piecewise-linear-tree"``: the same with target-aware bins, the split points of a
  decision tree fitted per feature on the target.

Bins are fitted on the training rows by the estimator (:meth:`PiecewiseLinearEmbeddings.fit_bins`)
and stored in the module's buffers, so a saved model predicts without the training data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.params import param

__all__ = [
    "NUM_EMBEDDINGS",
    "NumEmbeddingConfig",
    "FlatNumEmbeddingConfig",
    "PeriodicEmbeddings",
    "PiecewiseLinearEmbeddings",
    "compute_bins",
    "make_num_embeddings",
    "make_flat_num_embeddings",
]

NUM_EMBEDDINGS = ("none", "periodic", "periodic-lite", "piecewise-linear", "piecewise-linear-tree")


@dataclass(kw_only=True, eq=False)
class NumEmbeddingConfig:
    """The numeric-embedding settings shared by the backbones (defaults of ``rtdl_num_embeddings``)."""

    num_embeddings: str = param(
        "none",
        'Embedding of each numeric feature before the backbone: "periodic" (PLR), "periodic-lite" (one '
        'linear layer shared by the features), "piecewise-linear" (quantile bins) or '
        '"piecewise-linear-tree" (bins from decision-tree splits on the target); "none" feeds the scaled '
        "values as they are (Gorishniy et al. 2022).",
        type='{"none", "periodic", "periodic-lite", "piecewise-linear", "piecewise-linear-tree"}',
    )
    n_frequencies: int = param(48, 'Periodic embeddings: frequencies per feature ("k" in the paper).')
    frequency_init_scale: float = param(
        0.01, 'Periodic embeddings: std of the initial frequencies ("sigma"; the most important setting).'
    )
    n_bins: int = param(48, "Piecewise-linear embeddings: at most this many bins per feature (fewer with few rows).")


@dataclass(kw_only=True, eq=False)
class FlatNumEmbeddingConfig(NumEmbeddingConfig):
    """:class:`NumEmbeddingConfig` for backbones that flatten the feature vectors (MLP, ResNet, TabM)."""

    d_embedding: int | None = param(
        None, "Size of each numeric feature's embedding; None: 24 for periodic, 16 for piecewise-linear."
    )


def default_d_embedding(kind: str) -> int:
    """The package's default size for an embedding kind (the TabM paper's 16 for piecewise-linear)."""
    return 24 if kind.startswith("periodic") else 16


def check_num_embeddings(kind: str) -> None:
    if kind not in NUM_EMBEDDINGS:
        raise ValueError(f"num_embeddings must be one of {', '.join(map(repr, NUM_EMBEDDINGS))}, got {kind!r}.")


def _rsqrt_uniform_(tensor: torch.Tensor, d: int) -> torch.Tensor:
    return nn.init.uniform_(tensor, -(d**-0.5), d**-0.5)


class _PerFeatureLinear(nn.Module):
    """One linear layer per feature: (n, f, d_in) -> (n, f, d_out)."""

    def __init__(self, n_features: int, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(_rsqrt_uniform_(torch.empty(n_features, d_in, d_out), d_in))
        self.bias = nn.Parameter(_rsqrt_uniform_(torch.empty(n_features, d_out), d_in)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.bmm(x.transpose(0, 1), self.weight).transpose(0, 1)
        return x if self.bias is None else x + self.bias


class PeriodicEmbeddings(nn.Module):
    """Periodic embeddings with a linear layer and ReLU (PLR): (n, f) -> (n, f, d).

    ``lite=True`` shares the linear layer between the features (the "lite" variant).

    Examples
    --------
    >>> m = PeriodicEmbeddings(3, 24)
    >>> m(torch.randn(5, 3)).shape
    torch.Size([5, 3, 24])
    """

    def __init__(
        self,
        n_features: int,
        d_embedding: int,
        *,
        n_frequencies: int = 48,
        frequency_init_scale: float = 0.01,
        lite: bool = False,
    ):
        super().__init__()
        if not frequency_init_scale > 0:
            raise ValueError(f"frequency_init_scale must be > 0, got {frequency_init_scale!r}.")
        sigma, self.d_embedding = frequency_init_scale, d_embedding
        self.frequencies = nn.Parameter(torch.empty(n_features, n_frequencies))
        nn.init.trunc_normal_(self.frequencies, 0.0, sigma, a=-3 * sigma, b=3 * sigma)
        self.linear = (
            nn.Linear(2 * n_frequencies, d_embedding)
            if lite
            else _PerFeatureLinear(n_features, 2 * n_frequencies, d_embedding)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (2 * math.pi) * self.frequencies * x.unsqueeze(-1)
        return torch.relu(self.linear(torch.cat([torch.cos(z), torch.sin(z)], dim=-1)))


def compute_bins(
    x: np.ndarray,
    n_bins: int,
    *,
    y: np.ndarray | None = None,
    regression: bool = False,
    min_samples_leaf: int = 64,
    min_impurity_decrease: float = 1e-4,
) -> list[np.ndarray]:
    """Bin edges per column of ``x`` (n, f): quantiles, or with ``y`` the split points of a
    decision tree with at most ``n_bins`` leaves fitted on each column and the target (plus
    the column's minimum and maximum), as ``rtdl_num_embeddings.compute_bins``.

    A column with one distinct value gets one bin around it. Non-finite values are ignored.

    Examples
    --------
    >>> x = np.arange(100.0).reshape(-1, 1)
    >>> compute_bins(x, 4)[0].tolist()
    [0.0, 24.75, 49.5, 74.25, 99.0]
    >>> x = np.arange(200.0).reshape(-1, 1)  # leaves need 64 rows: the tree splits once
    >>> compute_bins(x, 4, y=(x[:, 0] >= 100).astype(int))[0].tolist()
    [0.0, 99.5, 199.0]
    """
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2, got {n_bins!r}.")
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    out = []
    for j in range(x.shape[1]):
        column = x[:, j].astype(np.float64)
        finite = np.isfinite(column)
        column = column[finite]
        if column.size == 0 or column.min() == column.max():
            value = float(column[0]) if column.size else 0.0
            out.append(np.array([value - 0.5, value + 0.5]))
            continue
        if y is None:
            edges = np.unique(np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1)))
        else:
            tree_cls = DecisionTreeRegressor if regression else DecisionTreeClassifier
            tree = (
                tree_cls(
                    max_leaf_nodes=n_bins,
                    min_samples_leaf=min_samples_leaf,
                    min_impurity_decrease=min_impurity_decrease,
                    random_state=0,
                )
                .fit(column.reshape(-1, 1), np.asarray(y)[finite])
                .tree_
            )
            splits = tree.threshold[tree.children_left != tree.children_right]
            edges = np.unique(np.concatenate([[column.min(), column.max()], splits]))
        out.append(edges)
    return out


class PiecewiseLinearEmbeddings(nn.Module):
    """Piecewise-linear embeddings, version "B" of ``rtdl_num_embeddings``: (n, f) -> (n, f, d).

    ``x * w + b`` (a linear embedding of the raw value) plus a per-feature linear layer,
    initialised at zero, over the piecewise-linear encoding of ``x``: for a feature with bins
    ``[e_0, e_1), ..., [e_{m-1}, e_m]``, the vector that is 1 for the bins below ``x``, its
    fractional position ``(x - e_i) / (e_{i+1} - e_i)`` in its bin and 0 above (the first and
    last components extrapolate below ``e_0`` and above ``e_m``). Features share one layout of
    ``n_bins`` channels: a feature with fewer bins has zero channels before its last one.
    :meth:`fit` computes the bins from training rows (quantiles, or with ``target_aware`` the
    splits of a decision tree on the target); until then every feature has the single bin [0, 1].

    Examples
    --------
    >>> m = PiecewiseLinearEmbeddings(2, 8, n_bins=4)
    >>> m.fit_bins([np.array([0.0, 1.0, 2.0]), np.array([-1.0, 0.0, 1.0, 2.0, 3.0])])
    >>> m.encode(torch.tensor([[1.5, 0.5]]))
    tensor([[[1.0000, 0.0000, 0.0000, 0.5000],
             [1.0000, 0.5000, 0.0000, 0.0000]]])
    >>> m(torch.randn(5, 2)).shape
    torch.Size([5, 2, 8])
    """

    def __init__(self, n_features: int, d_embedding: int, *, n_bins: int = 48, target_aware: bool = False):
        super().__init__()
        if not (isinstance(n_bins, int) and n_bins >= 2):
            raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}.")
        self.d_embedding, self.target_aware = d_embedding, target_aware
        # The encoding is a fixed affine map per channel followed by clamps (rtdl's fast form).
        self.register_buffer("encoding_weight", torch.zeros(n_features, n_bins))
        self.register_buffer("encoding_bias", torch.zeros(n_features, n_bins))
        self.register_buffer("single_bin", torch.ones(n_features, dtype=torch.bool))
        self.encoding_weight[:, -1] = 1.0
        self.raw_embedding = _LinearEmbeddings(n_features, d_embedding)
        self.linear = _PerFeatureLinear(n_features, n_bins, d_embedding, bias=False)
        nn.init.zeros_(self.linear.weight)

    @property
    def n_bins(self) -> int:
        return self.encoding_weight.shape[1]

    def fit(self, x: np.ndarray, y: np.ndarray | None = None, *, regression: bool = False) -> None:
        """Bins from the training rows ``x`` (n, f) (and the target ``y`` when ``target_aware``);
        at most ``n_bins``, and fewer than the number of rows."""
        n_bins = max(2, min(self.n_bins, len(x) - 1))
        self.fit_bins(compute_bins(x, n_bins, y=y if self.target_aware else None, regression=regression))

    @torch.no_grad()
    def fit_bins(self, bins: list[np.ndarray]) -> None:
        """Set the bin edges, one increasing array per feature (at most ``n_bins + 1`` edges)."""
        if len(bins) != self.encoding_weight.shape[0]:
            raise ValueError(f"Expected bins for {self.encoding_weight.shape[0]} features, got {len(bins)}.")
        self.encoding_weight.zero_()
        self.encoding_bias.zero_()
        for i, edges in enumerate(bins):
            edges = np.asarray(edges, dtype=np.float64)
            m = len(edges) - 1
            if not 1 <= m <= self.n_bins or np.any(np.diff(edges) <= 0):
                raise ValueError(f"Feature {i}: need 2 to {self.n_bins + 1} increasing bin edges, got {edges}.")
            width = np.diff(edges)
            w, b = 1.0 / width, -edges[:-1] / width
            channels = [*range(m - 1), self.n_bins - 1]  # the last bin always in the last channel
            self.encoding_weight[i, channels] = torch.as_tensor(w, dtype=torch.float32)
            self.encoding_bias[i, channels] = torch.as_tensor(b, dtype=torch.float32)
            self.single_bin[i] = m == 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The piecewise-linear encoding (n, f) -> (n, f, n_bins)."""
        z = torch.addcmul(self.encoding_bias, self.encoding_weight, x.unsqueeze(-1))
        first = z[..., :1].clamp_max(1.0)
        middle = z[..., 1:-1].clamp(0.0, 1.0)
        # A single bin extrapolates both ways (its padding channels are 0 whatever x is).
        last = torch.where(self.single_bin.unsqueeze(-1), z[..., -1:], z[..., -1:].clamp_min(0.0))
        return torch.cat([first, middle, last], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.raw_embedding(x) + self.linear(self.encode(x))


class _LinearEmbeddings(nn.Module):
    """``x_i * w_i + b_i`` per feature: (n, f) -> (n, f, d)."""

    def __init__(self, n_features: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(_rsqrt_uniform_(torch.empty(n_features, d), d))
        self.bias = nn.Parameter(_rsqrt_uniform_(torch.empty(n_features, d), d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, self.weight, x.unsqueeze(-1))


def make_flat_num_embeddings(config: FlatNumEmbeddingConfig, n_features: int) -> nn.Module | None:
    """:func:`make_num_embeddings` of size ``config.d_embedding`` (None: the kind's default size).

    >>> cfg = FlatNumEmbeddingConfig(num_embeddings="piecewise-linear")
    >>> make_flat_num_embeddings(cfg, 3).d_embedding
    16
    """
    return make_num_embeddings(config, n_features, config.d_embedding or default_d_embedding(config.num_embeddings))


def make_num_embeddings(config: NumEmbeddingConfig, n_features: int, d_embedding: int) -> nn.Module | None:
    """The numeric-embedding module ``config.num_embeddings`` asks for (None for ``"none"``).

    >>> cfg = NumEmbeddingConfig(num_embeddings="periodic-lite")
    >>> type(make_num_embeddings(cfg, 3, 8)).__name__
    'PeriodicEmbeddings'
    """
    kind = config.num_embeddings
    check_num_embeddings(kind)
    if kind == "none" or n_features == 0:
        return None
    if kind.startswith("periodic"):
        return PeriodicEmbeddings(
            n_features,
            d_embedding,
            n_frequencies=config.n_frequencies,
            frequency_init_scale=config.frequency_init_scale,
            lite=kind == "periodic-lite",
        )
    return PiecewiseLinearEmbeddings(
        n_features, d_embedding, n_bins=config.n_bins, target_aware=kind == "piecewise-linear-tree"
    )
