"""Prior-data fitted network: a row-token transformer that predicts from a context table.

Every row is one token: its features (standardised on the training rows, outliers squashed,
missing values set to 0 with a missing-indicator per feature, padded to ``max_features`` and
rescaled so the input variance does not depend on the feature count) go through one linear
layer; training rows add an embedding of their label. Training rows attend to training rows;
test rows attend to training rows only, so a test row never sees another test row and the
predictions do not depend on how test rows are batched. The training rows' keys and values
are computed once per layer (:meth:`PFNTransformer.context`) and test rows are then processed
in chunks against them (:meth:`PFNTransformer.predict`): memory grows linearly with the number
of test rows. Classification has up to ``max_classes`` logits (unused ones masked);
regression predicts a distribution over fixed bins of the standardised target (a "bar
distribution"), from which :func:`bar_mean` and :func:`bar_quantile` read point predictions.

Examples
--------
>>> import torch
>>> model = PFNTransformer(max_features=8, d_model=32, n_heads=2, n_layers=2, d_ffn=64)
>>> x, y = torch.randn(3, 40, 8), torch.randint(0, 2, (3, 30)).float()
>>> model(x, y, n_classes=torch.tensor([2, 2, 2])).shape  # logits of the 10 test rows
torch.Size([3, 10, 10])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import param

__all__ = ["PFNTransformer", "PFNConfig", "default_bin_borders", "bar_mean", "bar_quantile"]

_SQUASH_AT = 4.0
_CPU_SCORE_CHUNK = 1 << 20  # scores per chunk of CPU bf16 inference attention (2 MB)


def default_bin_borders(n_bins: int = 96, limit: float = 10.0) -> torch.Tensor:
    """Bin borders on the standardised target: normal quantiles inside, ``±limit`` outside.

    >>> b = default_bin_borders(8)
    >>> len(b), float(b[0]), float(b[-1])
    (9, -10.0, 10.0)
    """
    probs = torch.linspace(0.002, 0.998, n_bins - 1, dtype=torch.float64)
    inner = math.sqrt(2.0) * torch.erfinv(2 * probs - 1)
    return torch.cat(
        [torch.tensor([-limit], dtype=torch.float64), inner, torch.tensor([limit], dtype=torch.float64)]
    ).float()


def bar_mean(probs: torch.Tensor, borders: torch.Tensor) -> torch.Tensor:
    """Mean of a bar distribution (uniform density inside each bin)."""
    centers = (borders[1:] + borders[:-1]) / 2
    return probs @ centers.to(probs.dtype)


def bar_quantile(probs: torch.Tensor, borders: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile of a bar distribution (linear inside the bin where the CDF crosses q)."""
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, torch.full((*cdf.shape[:-1], 1), q, dtype=cdf.dtype, device=cdf.device))
    idx = idx.clamp(max=probs.shape[-1] - 1)
    below = torch.where(idx > 0, cdf.gather(-1, (idx - 1).clamp(min=0)), torch.zeros_like(idx, dtype=cdf.dtype))
    p_bin = probs.gather(-1, idx).clamp(min=1e-12)
    frac = ((q - below) / p_bin).clamp(0, 1)
    lo, hi = borders[:-1].to(cdf.dtype)[idx], borders[1:].to(cdf.dtype)[idx]
    return (lo + frac * (hi - lo)).squeeze(-1)


def _row_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention of query rows to context rows: fused SDPA, except on CPU with bf16 or with
    gradients, which use two batched matmuls with the softmax in the matmuls' dtype (the CPU
    flash kernel's backward dominated a training step, casting bf16 scores to fp32 and back
    cost as much again, and in bf16 inference its forward was well above the two matmuls'
    time; scores are rounded to bf16)."""
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v)
    if not (torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)):
        if q.dtype != torch.bfloat16:
            return F.scaled_dot_product_attention(q, k, v)
        # Query rows in chunks, so the scores of a chunk stay in cache (and memory bounded).
        out = torch.empty_like(q)
        k_t, v = k.contiguous().transpose(-1, -2), v.contiguous()  # (once, not per chunk)
        rows = max(1, _CPU_SCORE_CHUNK // max(1, k.shape[-2] * q.shape[1]))
        for b in range(q.shape[0]):
            for start in range(0, q.shape[2], rows):
                qc = q[b, :, start : start + rows] * q.shape[-1] ** -0.5
                torch.matmul(torch.softmax(torch.matmul(qc, k_t[b]), -1), v[b], out=out[b, :, start : start + rows])
        return out
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-1, -2))
    return torch.matmul(torch.softmax(scores, -1), v)


class _Layer(nn.Module):
    """Pre-norm transformer layer whose keys and values come from the training rows only."""

    def __init__(self, d_model: int, n_heads: int, d_ffn: int):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ffn), nn.GELU(), nn.Linear(d_ffn, d_model))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, d = t.shape
        return t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)

    def _attend(self, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        a = _row_attention(self._heads(q), k, v)
        h = h + self.out(a.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1))
        return h + self.ffn(self.norm2(h))

    def forward_context(self, h: torch.Tensor):
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)
        k, v = self._heads(k), self._heads(v)
        return self._attend(h, q, k, v), (k, v)

    def forward_query(self, h: torch.Tensor, kv) -> torch.Tensor:
        d = h.shape[-1]
        q = F.linear(self.norm1(h), self.qkv.weight[:d], self.qkv.bias[:d])
        return self._attend(h, q, *kv)


@dataclass(kw_only=True, eq=False)
class PFNConfig:
    """The in-context transformer's size (a weights file stores these values as its model config)."""

    max_features: int = param(100, "Feature slots; datasets with fewer features are zero-padded.")
    max_classes: int = param(10, "Class logits; datasets use the first ``n_classes`` of them.")
    d_model: int = param(256, "Transformer width (size of every row token).")
    n_heads: int = param(4, "Attention heads; must divide ``d_model``.")
    n_layers: int = param(6, "Number of transformer layers.")
    d_ffn: int = param(512, "Feed-forward width of the layers and of the output heads.")
    n_bins: int = param(96, "Bins of the regression output distribution (borders in ``bin_borders``).")


class PFNTransformer(nn.Module):
    """Row-token in-context transformer for classification and (binned) regression.

    Parameters
    ----------
    **config
        The fields of :class:`PFNConfig`; :attr:`config` keeps them, with the defaults
        filled in, as the dict a weights file stores.
    """

    config_class = PFNConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, **config):
        super().__init__()
        cfg = PFNConfig(**config)
        self.config = asdict(cfg)
        max_features, max_classes, d_model, n_heads = cfg.max_features, cfg.max_classes, cfg.d_model, cfg.n_heads
        d_ffn, n_bins = cfg.d_ffn, cfg.n_bins
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads}).")
        self.max_features, self.max_classes = max_features, max_classes
        self.x_encoder = nn.Linear(2 * max_features, d_model)
        self.class_embedding = nn.Embedding(max_classes, d_model)
        self.value_encoder = nn.Linear(1, d_model)
        self.layers = nn.ModuleList(_Layer(d_model, n_heads, d_ffn) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.class_head = nn.Sequential(nn.Linear(d_model, d_ffn), nn.GELU(), nn.Linear(d_ffn, max_classes))
        self.value_head = nn.Sequential(nn.Linear(d_model, d_ffn), nn.GELU(), nn.Linear(d_ffn, n_bins))
        self.register_buffer("bin_borders", default_bin_borders(n_bins))

    # -- inputs ------------------------------------------------------------------------
    def feature_stats(self, x_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-dataset, per-feature mean, inverse std (NaN-aware) and the input rescaling."""
        observed = ~torch.isnan(x_train)
        filled = torch.where(observed, x_train, 0.0)
        count = observed.sum(1, keepdim=True).clamp(min=1)
        mean = filled.sum(1, keepdim=True) / count
        var = (torch.where(observed, x_train - mean, 0.0) ** 2).sum(1, keepdim=True) / count
        inv_std = torch.where(var > 1e-12, var.clamp(min=1e-12).rsqrt(), 0.0)
        used = (observed.any(1) & (var[:, 0] > 1e-12)).sum(-1).clamp(min=1)
        scale = (self.max_features / used.to(x_train.dtype)).sqrt()[:, None, None]
        return mean, inv_std, scale

    def embed_rows(self, x: torch.Tensor, stats) -> torch.Tensor:
        mean, inv_std, scale = stats
        missing = torch.isnan(x)
        z = (torch.where(missing, 0.0, x) - mean) * inv_std
        # Squash outliers beyond 4 sd logarithmically instead of letting them dominate.
        z = torch.where(z.abs() > _SQUASH_AT, z.sign() * (_SQUASH_AT + torch.log1p(z.abs() - _SQUASH_AT)), z)
        z = torch.where(missing, 0.0, z) * scale
        return self.x_encoder(torch.cat([z, missing.to(z.dtype)], dim=-1))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        if n > self.max_features:
            raise ValueError(f"at most {self.max_features} features per forward pass, got {n}.")
        return F.pad(x, (0, self.max_features - n)) if n < self.max_features else x

    # -- forward -----------------------------------------------------------------------
    def context(self, x_train: torch.Tensor, y_train: torch.Tensor, regression: bool = False) -> dict:
        """Run the training rows through every layer and keep what test rows attend to.

        ``x_train`` is ``(datasets, rows, features)`` (NaN = missing), ``y_train`` holds
        class ids or standardised targets.
        """
        x_train = self._pad(x_train.float())
        stats = self.feature_stats(x_train)
        h = self.embed_rows(x_train, stats)
        if regression:
            h = h + self.value_encoder(y_train.unsqueeze(-1).to(h.dtype))
        else:
            h = h + self.class_embedding(y_train.long())
        kvs = []
        for layer in self.layers:
            h, kv = layer.forward_context(h)
            kvs.append(kv)
        return {"stats": stats, "kv": kvs, "regression": regression}

    def predict(self, x_test: torch.Tensor, context: dict, n_classes: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of test rows given a :meth:`context` (class logits or bin logits)."""
        h = self.embed_rows(self._pad(x_test.float()), context["stats"])
        for layer, kv in zip(self.layers, context["kv"]):
            h = layer.forward_query(h, kv)
        h = self.norm(h)
        if context["regression"]:
            return self.value_head(h)
        logits = self.class_head(h)
        if n_classes is not None:
            unused = torch.arange(self.max_classes, device=logits.device) >= n_classes.to(logits.device)[:, None]
            logits = logits.masked_fill(unused[:, None, :], float("-inf"))
        return logits

    def forward(
        self, x: torch.Tensor, y_train: torch.Tensor, n_classes: torch.Tensor | None = None, regression: bool = False
    ) -> torch.Tensor:
        """Logits of the rows after the first ``y_train.shape[1]`` (the test rows)."""
        n_train = y_train.shape[1]
        ctx = self.context(x[:, :n_train], y_train, regression)
        return self.predict(x[:, n_train:], ctx, n_classes)
