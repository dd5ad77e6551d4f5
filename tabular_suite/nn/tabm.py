"""TabM of "TabM: Advancing Tabular Deep Learning with Parameter-Efficient Ensembling"
(Gorishniy et al., ICLR 2025; the ``tabm`` package): one MLP that imitates an ensemble of
``k`` MLPs, trained in parallel.

Variants (``arch_type``), as in the official code:

- ``"tabm"``: BatchEnsemble linear layers: a weight shared by the members and per-member
  scalings of its input (``r``) and output (``s``) and a per-member bias; only the first
  input scaling is random (random signs, or normal with numeric embeddings), the others
  start at one;
- ``"tabm-mini"``: a plain shared MLP after one per-member random scaling of its input;
- ``"tabm-packed"``: ``k`` independent MLPs computed as one.

Every variant ends in ``k`` separate linear heads. The module returns one prediction per
member, shape (n, k, d_out); :func:`ensemble_logits` combines them (the mean of the members'
probabilities, or of their values in regression). Categorical columns are one-hot encoded
(their learned embeddings would be shared by the members).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import param
from .blocks import Dropout, make_activation
from .num_embeddings import FlatNumEmbeddingConfig, check_num_embeddings, default_d_embedding, make_num_embeddings

__all__ = ["TabM", "TabMConfig", "ensemble_logits", "ARCH_TYPES"]

ARCH_TYPES = ("tabm", "tabm-mini", "tabm-packed")


@dataclass(kw_only=True, eq=False)
class TabMConfig(FlatNumEmbeddingConfig):
    """TabM's hyperparameters with the defaults of the official ``TabM.make``."""

    arch_type: str = param(
        "tabm",
        '"tabm" (BatchEnsemble layers), "tabm-mini" (one per-member input scaling before a shared MLP) or '
        '"tabm-packed" (k independent MLPs).',
        type='{"tabm", "tabm-mini", "tabm-packed"}',
    )
    k: int = param(32, "Ensemble members (trained jointly; the prediction is their mean).")
    n_blocks: int | str = param(
        "auto",
        '``Linear -> activation -> Dropout`` blocks; "auto": 3, or 2 with numeric embeddings.',
        type="int or 'auto'",
    )
    d_block: int = param(512, "Width of every hidden layer.")
    dropout: float = param(0.1, "Dropout after every hidden layer.")
    activation: str = param("relu", "Activation of the hidden layers.", type='{"relu", "gelu", "silu", "tanh"}')
    scaling_init: str = param(
        "auto",
        'Initialisation of the members\' first input scaling: "random-signs", "normal", or "auto" (random signs; '
        "normal with numeric embeddings). All entries of one input feature share one draw, as in the official code.",
        type='{"auto", "random-signs", "normal"}',
    )


def _rsqrt_uniform_(tensor: torch.Tensor, d: int) -> torch.Tensor:
    return nn.init.uniform_(tensor, -(d**-0.5), d**-0.5)


@torch.no_grad()
def _init_scaling_(scaling: torch.Tensor, distribution: str, sections: list[int]) -> None:
    """Per member, one random draw per input feature (a section of ``sections`` entries)."""
    draws = torch.empty(scaling.shape[0], len(sections))
    if distribution == "normal":
        nn.init.normal_(draws)
    else:
        draws.bernoulli_(0.5).mul_(2).sub_(1)
    repeats = torch.tensor(sections, device=draws.device)
    scaling.copy_(draws.repeat_interleave(repeats, dim=1, output_size=scaling.shape[1]))


class BatchEnsembleLinear(nn.Module):
    """``((x * r) @ W.T) * s + b`` with a shared ``W`` and per-member ``r``, ``s``, ``b``:
    (n, k, d_in) -> (n, k, d_out). All biases start equal (one draw shared by the members)."""

    def __init__(self, d_in: int, d_out: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(_rsqrt_uniform_(torch.empty(d_out, d_in), d_in))
        self.r = nn.Parameter(torch.ones(k, d_in))
        self.s = nn.Parameter(torch.ones(k, d_out))
        self.bias = nn.Parameter(_rsqrt_uniform_(torch.empty(d_out), d_in).repeat(k, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The adapters take the activations' dtype: under bf16 autocast the elementwise work stays
        # in bf16 (half the memory traffic) instead of being promoted to fp32 by the parameters.
        z = F.linear(x * self.r.to(x.dtype), self.weight)
        return torch.addcmul(self.bias.to(z.dtype), z, self.s.to(z.dtype))


class EnsembleLinear(nn.Module):
    """``k`` independent linear layers: (n, k, d_in) -> (n, k, d_out)."""

    def __init__(self, d_in: int, d_out: int, k: int):
        super().__init__()
        self.weight = nn.Parameter(_rsqrt_uniform_(torch.empty(k, d_in, d_out), d_in))
        self.bias = nn.Parameter(_rsqrt_uniform_(torch.empty(k, d_out), d_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x.transpose(0, 1), self.weight).transpose(0, 1)


class TabM(nn.Module):
    """TabM: ``k`` MLPs in one module; ``forward`` returns (n, k, d_out).

    ``**config``: the fields of :class:`TabMConfig` (kept as the dict :attr:`config`).

    Examples
    --------
    >>> m = TabM(n_num=3, cardinalities=[4], d_out=2, k=4, d_block=16)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 4, 2])
    >>> len(m.blocks) // 3  # n_blocks="auto": 3 without numeric embeddings
    3
    """

    config_class = TabMConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = TabMConfig(**config)
        check_num_embeddings(cfg.num_embeddings)
        if cfg.arch_type not in ARCH_TYPES:
            raise ValueError(f"arch_type must be one of {', '.join(map(repr, ARCH_TYPES))}, got {cfg.arch_type!r}.")
        if not (isinstance(cfg.k, int) and cfg.k >= 1):
            raise ValueError(f"k must be a positive integer, got {cfg.k!r}.")
        self.config = asdict(cfg)
        # "auto" settings as in the official TabM.make: they depend on the numeric embeddings.
        embedded = cfg.num_embeddings != "none" and n_num > 0
        n_blocks = (2 if embedded else 3) if cfg.n_blocks == "auto" else cfg.n_blocks
        if not (isinstance(n_blocks, int) and n_blocks >= 1):
            raise ValueError(f"n_blocks must be a positive integer or 'auto', got {cfg.n_blocks!r}.")
        scaling_init = ("normal" if embedded else "random-signs") if cfg.scaling_init == "auto" else cfg.scaling_init
        if scaling_init not in ("random-signs", "normal"):
            raise ValueError(f"scaling_init must be 'auto', 'random-signs' or 'normal', got {cfg.scaling_init!r}.")
        d_embedding = cfg.d_embedding or default_d_embedding(cfg.num_embeddings)
        self.k = k = cfg.k

        self.num_encoder = make_num_embeddings(cfg, n_num, d_embedding)
        d_num = d_embedding if self.num_encoder is not None else 1
        self.register_buffer(
            "cat_offsets", torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0), persistent=False
        )
        self.d_cat = sum(cardinalities)
        sections = [d_num] * n_num + list(cardinalities)  # the input entries of each feature
        d_in = sum(sections)

        def linear(d_a: int, d_b: int) -> nn.Module:
            if cfg.arch_type == "tabm":
                return BatchEnsembleLinear(d_a, d_b, k)
            if cfg.arch_type == "tabm-packed":
                return EnsembleLinear(d_a, d_b, k)
            return nn.Linear(d_a, d_b)

        blocks, d = [], d_in
        for _ in range(n_blocks):
            blocks += [linear(d, cfg.d_block), make_activation(cfg.activation), Dropout(cfg.dropout)]
            d = cfg.d_block
        self.blocks = nn.Sequential(*blocks)
        self.input_scaling = None
        if cfg.arch_type == "tabm":
            _init_scaling_(self.blocks[0].r, scaling_init, sections)
        elif cfg.arch_type == "tabm-mini":
            self.input_scaling = nn.Parameter(torch.empty(k, d_in))
            _init_scaling_(self.input_scaling, scaling_init, sections)
        self.head = EnsembleLinear(d, d_out, k)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if x_num.shape[1]:
            parts.append(x_num if self.num_encoder is None else self.num_encoder(x_num).flatten(1))
        if self.d_cat:
            one_hot = x_num.new_zeros(x_cat.shape[0], self.d_cat)
            parts.append(one_hot.scatter_(1, x_cat + self.cat_offsets, 1.0))
        x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        x = x.unsqueeze(1).expand(-1, self.k, -1)  # every member sees the same row
        if self.input_scaling is not None:
            x = x * self.input_scaling.to(x.dtype)
        return self.head(self.blocks(x))


def ensemble_logits(out: torch.Tensor, kind: str) -> torch.Tensor:
    """Combine the members' outputs (n, k, d) into one (n, d): the logits of the mean of their
    probabilities (``kind`` "binary": sigmoid, "multiclass": softmax), or the mean value
    ("regression"). ``sigmoid``/``softmax`` of the result is the members' mean probability.

    >>> out = torch.tensor([[[0.0], [20.0]]])  # members' logits: p = 0.5 and ~1
    >>> round(float(torch.sigmoid(ensemble_logits(out, "binary"))), 6)
    0.75
    """
    if kind == "regression":
        return out.mean(1)
    log_k = torch.log(torch.tensor(float(out.shape[1]), device=out.device))
    if kind == "binary":
        log_p = torch.logsumexp(F.logsigmoid(out), dim=1) - log_k
        log_q = torch.logsumexp(F.logsigmoid(-out), dim=1) - log_k
        return log_p - log_q
    return torch.logsumexp(torch.log_softmax(out, dim=-1), dim=1) - log_k
