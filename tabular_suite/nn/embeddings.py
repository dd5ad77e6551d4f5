"""Feature tokenizers: numeric and categorical features to vectors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CategoricalEmbeddings", "NumericTokenizer", "FeatureTokenizer", "FieldEmbedding"]


def _uniform_(tensor: torch.Tensor, d: int) -> None:
    bound = 1.0 / math.sqrt(d)
    nn.init.uniform_(tensor, -bound, bound)


class CategoricalEmbeddings(nn.Module):
    """One embedding table per categorical column, stored as a single table with offsets.

    Input ``x_cat`` (n, n_cat) holds per-column codes in ``[0, cardinality)``; the output is
    (n, n_cat, d). ``bias=True`` adds a learned per-column bias (FT-Transformer tokens).

    Examples
    --------
    >>> emb = CategoricalEmbeddings([3, 5], d=4)
    >>> emb(torch.tensor([[0, 4]])).shape
    torch.Size([1, 2, 4])
    """

    def __init__(self, cardinalities: list[int], d: int, bias: bool = False):
        super().__init__()
        offsets = torch.tensor([0] + list(cardinalities[:-1]), dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.embedding = nn.Embedding(max(sum(cardinalities), 1), d)
        self.bias = nn.Parameter(torch.empty(len(cardinalities), d)) if bias else None
        _uniform_(self.embedding.weight, d)
        if self.bias is not None:
            _uniform_(self.bias, d)

    def forward(self, x_cat: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x_cat + self.offsets)
        return x if self.bias is None else x + self.bias


class NumericTokenizer(nn.Module):
    """Per-feature linear tokens ``x_i * w_i + b_i`` (FT-Transformer): (n, k) -> (n, k, d)."""

    def __init__(self, n_features: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_features, d))
        self.bias = nn.Parameter(torch.empty(n_features, d))
        _uniform_(self.weight, d)
        _uniform_(self.bias, d)

    def forward(self, x_num: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, x_num.unsqueeze(-1), self.weight)


class FeatureTokenizer(nn.Module):
    """Numeric + categorical features to a sequence of tokens (n, n_num + n_cat, d).

    ``numeric`` is the module class that tokenizes numeric features, called as
    ``numeric(n_num, d)`` (FT-Transformer's linear tokens by default).
    """

    def __init__(self, n_num: int, cardinalities: list[int], d: int, numeric: type[nn.Module] = NumericTokenizer):
        super().__init__()
        self.numeric = numeric(n_num, d) if n_num else None
        self.categorical = CategoricalEmbeddings(cardinalities, d, bias=True) if cardinalities else None
        self.n_tokens = n_num + len(cardinalities)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.numeric is not None:
            parts.append(self.numeric(x_num))
        if self.categorical is not None:
            parts.append(self.categorical(x_cat))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class FlatInput(nn.Module):
    """Numeric features (or their flattened embeddings, from ``num_encoder``: (n, f) -> (n, f, d))
    concatenated with flattened categorical embeddings (MLP, ResNet)."""

    def __init__(self, n_num: int, cardinalities: list[int], d_embedding: int, num_encoder: nn.Module | None = None):
        super().__init__()
        self.categorical = CategoricalEmbeddings(cardinalities, d_embedding) if cardinalities else None
        self.num_encoder = num_encoder
        d_num = n_num * (1 if num_encoder is None else num_encoder.d_embedding)
        self.d_out = d_num + len(cardinalities) * d_embedding

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        if self.num_encoder is not None:
            x_num = self.num_encoder(x_num).flatten(1)
        if self.categorical is None:
            return x_num
        return torch.cat([x_num, self.categorical(x_cat).flatten(1)], dim=1)


class FieldEmbedding(nn.Module):
    """CTR-style field embeddings (AutoInt, FinalMLP): (n, n_num + n_cat, d).

    Each categorical field has its own table (stored as one table with offsets, so 10^5-10^6
    ids per field are plain sparse lookups; codes 0 and 1 are the data layer's missing and
    unseen ids); a numeric field is its value times a learned vector, without bias.
    Initialised as in FuxiCTR: tables N(0, ``init_std``), numeric vectors Xavier-normal
    (those of a ``Linear(1, d)``: std ``sqrt(2 / (1 + d))``).

    Examples
    --------
    >>> emb = FieldEmbedding(n_num=2, cardinalities=[1_000_000, 7], d=16)
    >>> emb(torch.ones(3, 2), torch.tensor([[999_999, 6]] * 3)).shape
    torch.Size([3, 4, 16])
    """

    def __init__(self, n_num: int, cardinalities: list[int], d: int, init_std: float = 1e-4):
        super().__init__()
        self.numeric = nn.Parameter(torch.empty(n_num, d)) if n_num else None
        self.categorical = CategoricalEmbeddings(cardinalities, d) if cardinalities else None
        if self.numeric is not None:
            nn.init.normal_(self.numeric, std=(2.0 / (1 + d)) ** 0.5)
        if self.categorical is not None:
            nn.init.normal_(self.categorical.embedding.weight, std=init_std)
        self.n_fields = n_num + len(cardinalities)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.numeric is not None:
            parts.append(x_num.unsqueeze(-1) * self.numeric)
        if self.categorical is not None:
            parts.append(self.categorical(x_cat))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def looked_up_squared_norm(self, x_cat: torch.Tensor) -> torch.Tensor:
        """The squared norm of the numeric vectors and of the table rows ``x_cat`` looks up
        (each row once): the embedding L2 of a step that updates only those rows. With a
        sparse table its gradient is sparse too.

        >>> emb = FieldEmbedding(n_num=0, cardinalities=[4, 3], d=2)
        >>> x_cat = torch.tensor([[1, 2], [1, 0]])
        >>> rows = emb.categorical.embedding.weight[[1, 4 + 2, 4 + 0]]
        >>> torch.allclose(emb.looked_up_squared_norm(x_cat), rows.pow(2).sum())
        True
        """
        total = torch.zeros((), device=x_cat.device)
        if self.numeric is not None:
            total = total + self.numeric.float().pow(2).sum()
        if self.categorical is not None:
            table = self.categorical.embedding
            ids = torch.unique(x_cat + self.categorical.offsets)
            total = total + F.embedding(ids, table.weight, sparse=table.sparse).float().pow(2).sum()
        return total

    def tables(self) -> list[torch.Tensor]:
        """The embedding parameters (for FuxiCTR-style embedding L2 regularisation)."""
        return [
            t
            for t in (self.numeric, None if self.categorical is None else self.categorical.embedding.weight)
            if t is not None
        ]
