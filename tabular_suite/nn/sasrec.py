"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Sequences are **right-padded** with item id 0. Positions are counted as in the official
left-padded code (the most recent item always has position ``maxlen - 1``), so with the
causal mask no real item ever attends to padding: this is the official model's key masking,
without a padding mask in the attention kernel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..core.params import param
from .blocks import causal_attention, dropout

__all__ = ["SASRec", "SASRecConfig"]

_NORMS = ("original", "pre", "post")
_INITS = ("xavier", "normal")


@dataclass(kw_only=True, eq=False)
class SASRecConfig:
    """SASRec's hyperparameters, with the paper's defaults for sparse data."""

    maxlen: int = param(50, "Most recent items the model looks at (the paper: 200 for MovieLens-1M, 50 otherwise).")
    hidden_units: int = param(50, "Size of the item and position embeddings and of every block.")
    num_blocks: int = param(2, "Number of self-attention blocks.")
    num_heads: int = param(1, "Attention heads; must divide ``hidden_units``.")
    dropout: float = param(
        0.5,
        "Dropout on the embeddings, the attention probabilities and in the FFN (the paper: "
        "0.2 for MovieLens-1M, 0.5 for the sparser Amazon data).",
    )
    norm: str = param(
        "original",
        'Residual/LayerNorm layout; "original" is the official code\'s (normalised queries).',
        type='{"original", "pre", "post"}',
    )
    init: str = param(
        "xavier",
        "Weight initialisation: Xavier-normal matrices as the official PyTorch port, or "
        "N(0, 0.02) matrices and zero biases as RecBole and SASRec+ (with 10^4-10^5 items, "
        "Xavier gives item embeddings a standard deviation near 0.005, N(0, 0.02) four times "
        "more).",
        type='{"xavier", "normal"}',
    )


class SASRecBlock(nn.Module):
    """Causal self-attention + point-wise FFN, with the chosen residual/LayerNorm layout.

    ``"original"`` (official code): ``q = LN(x)``, ``x = q + Attn(q, x, x)``,
    ``x = x' + FFN(x')`` with ``x' = LN(x)``. ``"pre"``: ``x + Attn(LN(x))``,
    ``x + FFN(LN(x))``. ``"post"``: ``LN(x + Attn(x))``, ``LN(x + FFN(x))``.
    """

    def __init__(self, d: int, n_heads: int, dropout: float, norm: str):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"hidden_units ({d}) must be divisible by num_heads ({n_heads}).")
        self.n_heads, self.norm, self.dropout = n_heads, norm, dropout
        self.attn_norm = nn.LayerNorm(d, eps=1e-8)
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.ffn_norm = nn.LayerNorm(d, eps=1e-8)
        self.ffn_in = nn.Linear(d, d)
        self.ffn_out = nn.Linear(d, d)

    def _attention(self, x_q: torch.Tensor, x_kv: torch.Tensor) -> torch.Tensor:
        n, t, d = x_q.shape
        h = self.n_heads
        q = self.q(x_q).view(n, t, h, d // h)
        k, v = self.kv(x_kv).view(n, t, 2, h, d // h).unbind(2)
        p = self.dropout if self.training else 0.0
        # Dropout on the attention probabilities only, as torch's MultiheadAttention in the port.
        return self.out(causal_attention(q, k, v, p).reshape(n, t, d))

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """Point-wise FFN (the official conv1d pair): linear, dropout, ReLU, linear, dropout."""
        p = self.dropout if self.training else 0.0
        return dropout(self.ffn_out(dropout(self.ffn_in(x), p).relu_()), p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "original":
            q = self.attn_norm(x)
            x = q + self._attention(q, x)
            x = self.ffn_norm(x)
            return x + self.ffn(x)
        if self.norm == "pre":
            y = self.attn_norm(x)
            x = x + self._attention(y, y)
            return x + self.ffn(self.ffn_norm(x))
        x = self.attn_norm(x + self._attention(x, x))
        return self.ffn_norm(x + self.ffn(x))


class SASRec(nn.Module):
    """Item + learned positional embeddings, causal self-attention blocks, final LayerNorm.

    ``forward(seq)`` maps right-padded item ids ``(batch, maxlen)`` (0 = padding, real items
    first) to hidden states ``(batch, maxlen, d)``; the score of item ``i`` after position
    ``t`` is the dot product of state ``t`` with the shared item embedding ``i``
    (:meth:`scores`).

    Parameters
    ----------
    n_items : int
        Number of real items (ids 1..n_items).
    **config
        The fields of :class:`SASRecConfig` (kept, with the defaults filled in, as the dict
        :attr:`config`).

    Examples
    --------
    >>> model = SASRec(n_items=100, maxlen=5)
    >>> states = model(torch.tensor([[3, 7, 0, 0, 0]]))
    >>> states.shape, model.scores(model.last_state(torch.tensor([[3, 7, 0, 0, 0]]))).shape
    (torch.Size([1, 5, 50]), torch.Size([1, 101]))
    """

    config_class = SASRecConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_items: int, **config):
        super().__init__()
        cfg = SASRecConfig(**config)
        self.config = asdict(cfg)
        norm, init, hidden_units = cfg.norm, cfg.init, cfg.hidden_units
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}.")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}.")
        self.n_items, self.maxlen, self.d = n_items, cfg.maxlen, hidden_units
        self.item_embedding = nn.Embedding(n_items + 1, hidden_units, padding_idx=0)
        self.position_embedding = nn.Embedding(cfg.maxlen, hidden_units)
        self.dropout = cfg.dropout
        self.blocks = nn.ModuleList(
            SASRecBlock(hidden_units, cfg.num_heads, cfg.dropout, norm) for _ in range(cfg.num_blocks)
        )
        # The official code ends every layout with a LayerNorm; "post" already ends normalised.
        self.final_norm = nn.LayerNorm(hidden_units, eps=1e-8) if norm != "post" else nn.Identity()
        for name, p in self.named_parameters():
            if "norm" in name:
                continue
            if init == "xavier" and p.ndim > 1:  # the official PyTorch port
                nn.init.xavier_normal_(p)
            elif init == "normal" and p.ndim > 1:  # RecBole / SASRec+: N(0, 0.02) weights, zero biases
                nn.init.normal_(p, 0.0, 0.02)
            elif init == "normal":
                nn.init.zeros_(p)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        t = seq.shape[1]
        if t > self.maxlen:
            raise ValueError(f"Sequences have {t} positions but the model was built for maxlen={self.maxlen}.")
        mask = seq > 0
        lengths = mask.sum(1, keepdim=True)
        # Official positions: the last real item sits at maxlen - 1 whatever the length.
        positions = (torch.arange(t, device=seq.device) + (self.maxlen - lengths)).clamp_(0, self.maxlen - 1)
        x = self.item_embedding(seq) * self.d**0.5 + self.position_embedding(positions)
        x = dropout(x, self.dropout, self.training) * mask.unsqueeze(-1)
        for block in self.blocks:
            x = block(x) * mask.unsqueeze(-1)
        return self.final_norm(x)

    def last_state(self, seq: torch.Tensor) -> torch.Tensor:
        """The hidden state after each sequence's last real item, shape ``(batch, d)``."""
        states = self(seq)
        last = (seq > 0).sum(1).clamp_(min=1) - 1
        return states[torch.arange(seq.shape[0], device=seq.device), last]

    def scores(self, states: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of ``items`` (``(batch, n)`` ids; None = every id, 0 included) for ``states``."""
        weight = self.item_embedding.weight
        if items is None:
            return states @ weight.T.to(states.dtype)
        return torch.einsum("bd,bnd->bn", states, weight[items].to(states.dtype))
