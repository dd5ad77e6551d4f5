"""MLP of "Revisiting Deep Learning Models for Tabular Data" (Gorishniy et al., 2021), with the
generator pass of bidirectional learning (Pontes-Filho & Liwicki, 2018)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.params import param
from .blocks import make_activation
from .embeddings import FlatInput
from .num_embeddings import FlatNumEmbeddingConfig, make_flat_num_embeddings

__all__ = ["MLP", "MLPConfig"]


@dataclass(kw_only=True, eq=False)
class MLPConfig(FlatNumEmbeddingConfig):
    """The MLP's hyperparameters, with the paper's defaults (no numeric embeddings)."""

    n_blocks: int = param(3, "Number of ``Linear -> activation -> Dropout`` blocks.")
    d_block: int = param(256, "Width of every hidden layer.")
    dropout: float = param(0.1, "Dropout after every hidden layer.")
    activation: str = param(
        "relu", "Activation of the hidden layers.", type='{"relu", "gelu", "silu", "tanh", "sigmoid"}'
    )
    cat_embedding_dim: int = param(8, "Size of the learned embedding of each categorical column.")
    bidirectional: bool = param(
        False,
        "Classifiers: bidirectional learning (Pontes-Filho & Liwicki 2018). Each batch also trains the same weights, "
        "transposed and with their own biases, as a generator from the class to the input (one Adam step on the "
        "reconstruction loss, then the classifier's step). Needs ``num_embeddings='none'``.",
    )


class MLP(nn.Module):
    """``(Linear -> ReLU -> Dropout) x n_blocks -> Linear``.

    Categorical columns enter as learned embeddings of size ``cat_embedding_dim``,
    concatenated with the numeric features (or their embeddings, ``num_embeddings``).
    ``**config``: the fields of :class:`MLPConfig` (kept, with the defaults filled in, as the dict
    :attr:`config`). With ``bidirectional=True`` the module also has :meth:`generate` and
    :meth:`reconstruction_loss`.

    Examples
    --------
    >>> m = MLP(n_num=3, cardinalities=[4], d_out=2, n_blocks=2, d_block=16)
    >>> m(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
    torch.Size([5, 2])
    >>> m.config["dropout"]
    0.1
    """

    config_class = MLPConfig  # the dataclass of the ``**config`` hyperparameters

    def __init__(self, n_num: int, cardinalities: list[int], d_out: int, **config):
        super().__init__()
        cfg = MLPConfig(**config)
        self.config = asdict(cfg)
        self.input = FlatInput(n_num, cardinalities, cfg.cat_embedding_dim, make_flat_num_embeddings(cfg, n_num))
        layers, d_in = [], self.input.d_out
        for _ in range(cfg.n_blocks):
            layers += [nn.Linear(d_in, cfg.d_block), make_activation(cfg.activation), nn.Dropout(cfg.dropout)]
            d_in = cfg.d_block
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(d_in, d_out)
        self.generator_bias = None
        if cfg.bidirectional:
            # The generator's own bias at the input of every linear layer, zero at the start (the paper's).
            self.generator_bias = nn.ParameterList(
                [nn.Parameter(torch.zeros(linear.in_features)) for linear in self._linears()]
            )
            self.n_num, self.cardinalities = n_num, list(cardinalities)

    def _linears(self) -> list[nn.Linear]:
        return [m for m in self.blocks if isinstance(m, nn.Linear)] + [self.head]

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.input(x_num, x_cat)))

    def generate(self, code: torch.Tensor) -> torch.Tensor:
        """The generator pass: class codes (n, d_out) (one-hot; +-1 for a binary classifier's one
        logit) through the transposed layers, last to first, with the generator's biases and the
        hidden activation (no dropout), to the flat input (n, n_num + n_cat * cat_embedding_dim).

        Examples
        --------
        >>> m = MLP(n_num=2, cardinalities=[3], d_out=1, n_blocks=1, d_block=4, bidirectional=True)
        >>> m.generate(torch.tensor([[1.0], [-1.0]])).shape
        torch.Size([2, 10])
        """
        if self.generator_bias is None:
            raise RuntimeError("This MLP has no generator; build it with bidirectional=True.")
        activation = make_activation(self.config["activation"])
        h = code
        for i, linear in reversed(list(enumerate(self._linears()))):
            h = h @ linear.weight + self.generator_bias[i]
            if i > 0:
                h = activation(h)
        return h

    def reconstruction_loss(self, x_hat: torch.Tensor, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        """The generator's loss, averaged over the input columns: the squared error of each
        numeric feature, and for each categorical column the cross-entropy of its code under the
        logits ``x_hat_j @ E_j.T`` (its embedding table ``E_j``, the transpose of its lookup).

        Examples
        --------
        >>> m = MLP(n_num=2, cardinalities=[3], d_out=3, n_blocks=1, d_block=4, bidirectional=True)
        >>> x_num, x_cat = torch.zeros(2, 2), torch.tensor([[0], [2]])
        >>> m.reconstruction_loss(m.generate(torch.eye(3)[:2]), x_num, x_cat).shape  # a scalar to minimise
        torch.Size([])
        """
        if self.input.num_encoder is not None:
            raise ValueError(
                "bidirectional=True generates the input through the transposed layers, which numeric embeddings "
                f"do not have; set num_embeddings='none' (got {self.config['num_embeddings']!r})."
            )
        n_num, cardinalities = self.n_num, self.cardinalities
        total = (x_hat[:, :n_num].float() - x_num.float()).square().mean(0).sum()
        if cardinalities:
            table = self.input.categorical.embedding.weight
            slots = x_hat[:, n_num:].unflatten(1, (len(cardinalities), -1))
            start = 0
            for j, cardinality in enumerate(cardinalities):
                logits = slots[:, j] @ table[start : start + cardinality].T
                total = total + F.cross_entropy(logits.float(), x_cat[:, j])
                start += cardinality
        return total / (n_num + len(cardinalities))
