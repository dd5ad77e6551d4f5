"""ExcelFormer (Chen et al., KDD'24): semi-permeable attention, GLU FFN, attenuated init.

Differences from the official code, all additive: categorical columns get their own token
embeddings (the official model takes numbers only), and the mutual-information order of the
tokens is stored in the module so a saved model needs nothing else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import param
from .blocks import causal_attention, tanh32
from .embeddings import FeatureTokenizer

__all__ = ["ExcelFormer", "ExcelFormerConfig", "attenuated_kaiming_uniform_", "feat_mix", "hidden_mix"]


@dataclass(kw_only=True, eq=False)
class ExcelFormerConfig:
    """ExcelFormer's hyperparameters, with the paper's defaults."""

    n_blocks: int = param(3, "Number of ExcelFormer blocks.")
    d_token: int = param(256, "Size of every feature token.")
    n_heads: int = param(32, "Attention heads; must divide ``d_token``.")
    attention_dropout: float = param(0.3, "Dropout on the attention probabilities.")
    ffn_dropout: float = param(0.0, "Dropout on the GLU FFN's output.")
    residual_dropout: float = param(0.0, "Dropout on each sub-block's output before the residual addition.")
    init_scale: float = param(
        0.01,
        "Interaction-attenuated initialisation: scale of the Kaiming-uniform bound for "
        "the attention Q/K/V and FFN weights.",
    )


def attenuated_kaiming_uniform_(tensor: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Kaiming-uniform (a=sqrt(5), fan-in) with the bound multiplied by ``scale``.

    ``scale < 1`` is the paper's interaction-attenuated initialisation.
    """
    fan_in = nn.init._calculate_correct_fan(tensor, "fan_in")
    gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    bound = math.sqrt(3.0) * gain * scale / math.sqrt(fan_in)
    with torch.no_grad():
        return tensor.uniform_(-bound, bound)


class _GatedNumericTokens(nn.Module):
    """Per numeric feature: ``(w1 x + b1) * tanh(w2 x + b2)``, (n, k) -> (n, k, d)."""

    def __init__(self, n_features: int, d: int):
        super().__init__()
        self.weight1 = nn.Parameter(torch.empty(n_features, d))
        self.weight2 = nn.Parameter(torch.empty(n_features, d))
        self.bias1 = nn.Parameter(torch.empty(n_features, d))
        self.bias2 = nn.Parameter(torch.empty(n_features, d))
        for p in (self.weight1, self.weight2):
            attenuated_kaiming_uniform_(p)
        for p in (self.bias1, self.bias2):
            nn.init.kaiming_uniform_(p, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-1)
        return torch.addcmul(self.bias1, x, self.weight1) * tanh32(torch.addcmul(self.bias2, x, self.weight2))


class _SemiPermeableAttention(nn.Module):
    """Multi-head attention where token i attends to tokens j <= i (more informative ones)."""

    def __init__(self, d: int, n_heads: int, dropout: float, init_scale: float):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"d_token={d} must be divisible by n_heads={n_heads}.")
        self.n_heads, self.dropout = n_heads, dropout
        self.W_qkv = nn.Linear(d, 3 * d)  # Q, K and V in one matmul
        self.W_out = nn.Linear(d, d) if n_heads > 1 else None
        for w in self.W_qkv.weight.view(3, d, d):
            attenuated_kaiming_uniform_(w, scale=init_scale)
        nn.init.zeros_(self.W_qkv.bias)
        if self.W_out is not None:
            attenuated_kaiming_uniform_(self.W_out.weight)
            nn.init.zeros_(self.W_out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.W_qkv(x).view(n, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        # The semi-permeable mask is exactly a causal mask over the MI-sorted tokens.
        out = causal_attention(q, k, v, self.dropout if self.training else 0.0).reshape(n, t, d)
        return out if self.W_out is None else self.W_out(out)


class _Block(nn.Module):
    def __init__(self, d, n_heads, attention_dropout, ffn_dropout, residual_dropout, init_scale, first):
        super().__init__()
        self.attention_norm = None if first else nn.LayerNorm(d)
        self.attention = _SemiPermeableAttention(d, n_heads, attention_dropout, init_scale)
        self.ffn_norm = nn.LayerNorm(d)
        self.ffn = nn.Linear(d, 2 * d)  # GLU-style: a * tanh(b) from one Linear(d -> 2d)
        attenuated_kaiming_uniform_(self.ffn.weight, scale=init_scale)
        nn.init.zeros_(self.ffn.bias)
        self.ffn_dropout, self.residual_dropout = ffn_dropout, residual_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.attention_norm is None else self.attention_norm(x)
        x = x + F.dropout(self.attention(h), self.residual_dropout, self.training)
        a, b = self.ffn(self.ffn_norm(x)).chunk(2, dim=-1)
        h = F.dropout(a * tanh32(b), self.ffn_dropout, self.training)
        return x + F.dropout(h, self.residual_dropout, self.training)


class ExcelFormer(nn.Module):
    """ExcelFormer over numeric and categorical features.

    Tokens are ordered by ``feature_order`` (descending mutual information with the target,
    set by the estimator) so that the causal mask makes attention semi-permeable: a feature
    sees only features at least as informative as itself. The head maps the feature axis to
    one token (``Linear(n_tokens -> 1)``) then ``LayerNorm -> PReLU -> Linear(d -> d_out)``.

    ``**config``: the fields of :class:`ExcelFormerConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = ExcelFormer(n_num=3, cardinalities=[4], d_out=2, d_token=16, n_heads=4)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    """

    config_class = ExcelFormerConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = ExcelFormerConfig(**config)
        self.config = asdict(cfg)
        d_token = cfg.d_token
        n_tokens = n_num + len(cardinalities)
        self.tokenizer = FeatureTokenizer(n_num, cardinalities, d_token, numeric=_GatedNumericTokens)
        self.register_buffer("feature_order", torch.arange(n_tokens))
        self.register_buffer("feature_mi", torch.full((n_tokens,), 1.0 / max(n_tokens, 1)))
        self.blocks = nn.Sequential(
            *[
                _Block(
                    d_token,
                    cfg.n_heads,
                    cfg.attention_dropout,
                    cfg.ffn_dropout,
                    cfg.residual_dropout,
                    cfg.init_scale,
                    first=(i == 0),
                )
                for i in range(cfg.n_blocks)
            ]
        )
        self.token_head = nn.Linear(n_tokens, 1)
        attenuated_kaiming_uniform_(self.token_head.weight)
        self.head_norm = nn.LayerNorm(d_token)
        self.head_activation = nn.PReLU()
        self.head = nn.Linear(d_token, d_out)
        attenuated_kaiming_uniform_(self.head.weight)

    def set_feature_order(self, mutual_information) -> None:
        """Order tokens by descending ``mutual_information`` (numeric tokens first, then categorical)."""
        mi = torch.as_tensor(mutual_information, dtype=torch.float32).clamp_min(0)
        order = torch.argsort(-mi, stable=True)
        self.feature_order.copy_(order)
        total = mi.sum()
        self.feature_mi.copy_(mi[order] / total if total > 0 else torch.full_like(mi, 1.0 / mi.numel()))

    def embed(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """Tokens (n, n_tokens, d) in mutual-information order."""
        # index_select: its backward (index_add) is faster than that of x[:, order]
        return self.tokenizer(x_num, x_cat).index_select(1, self.feature_order)

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.blocks(tokens)
        x = self.token_head(x.transpose(1, 2)).squeeze(-1)
        return self.head(self.head_activation(self.head_norm(x)))

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.embed(x_num, x_cat))


def _beta_rates(batch: int, beta: float, device) -> torch.Tensor:
    concentration = torch.tensor(float(beta), device=device)
    return torch.distributions.Beta(concentration, concentration).sample((batch, 1))


def feat_mix(tokens: torch.Tensor, beta: float, mi_weights: torch.Tensor):
    """Feat-Mix: each sample swaps a random subset of its feature tokens with a shuffled partner.

    Per sample a rate ``r ~ Beta(beta, beta)``; each feature is kept with probability ``1 - r``.
    The label weight of the sample's own target is the normalised mutual information of the
    features it kept. Returns ``(mixed, lam, perm)``.
    """
    b, f, _ = tokens.shape
    keep = torch.rand(b, f, device=tokens.device) > _beta_rates(b, beta, tokens.device)
    perm = torch.randperm(b, device=tokens.device)
    mixed = torch.where(keep.unsqueeze(-1), tokens, tokens[perm])
    lam = (keep.to(mi_weights.dtype) * mi_weights).sum(1)
    return mixed, lam, perm


def hidden_mix(tokens: torch.Tensor, beta: float):
    """Hid-Mix: each sample takes a random subset of embedding dimensions from a shuffled partner.

    Per sample ``r ~ Beta(beta, beta)``; each dimension (the same for all tokens) is kept with
    probability ``r``, and ``r`` is the label weight of the sample's own target.
    Returns ``(mixed, lam, perm)``.
    """
    b, _, d = tokens.shape
    rates = _beta_rates(b, beta, tokens.device)
    keep = torch.rand(b, d, device=tokens.device) < rates
    perm = torch.randperm(b, device=tokens.device)
    mixed = torch.where(keep.unsqueeze(1), tokens, tokens[perm])
    return mixed, rates[:, 0], perm
