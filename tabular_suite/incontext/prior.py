"""Synthetic tabular datasets drawn on the fly: the prior the in-context model is trained on.

Each dataset comes from a random structural causal model in the spirit of TabPFN v1
(Hollmann et al. 2023): a few *causes* (normal, uniform, heavy-tailed or categorical noise)
are pushed through a random layered graph. A layer is either a sparse random MLP layer
(random activation, additive noise) or a layer of random oblivious decision trees (the
step-function structure real tables and gradient-boosted trees favour). Features are read
from randomly chosen hidden nodes and the target from another one (``causal``), or the
features are the causes themselves and the target the last layer (a Bayesian-NN prior).
The features are then warped (skew, rounding, ordinal categories with permuted codes),
some values are removed, and the target is cut into classes at random thresholds with the
class ids permuted, or standardised for regression.

A ``discrete_fraction`` of the datasets are *discrete rule* tables instead (the logic and
genetics sets of PMLB: monks, tic-tac-toe, car, parity, epistasis): every feature is a code of
2-5 levels and the target a sum of a few pure interactions of the relevant codes (random
look-up tables of 1-4 codes, equality of two codes, parity of binary tests), so that its
signal may have no marginal effect at all.

Everything is seeded: ``SyntheticPrior(seed).sample(step, ...)`` returns the same batch
for the same step, so a resumed pre-training run sees the data it would have seen.

Examples
--------
>>> prior = SyntheticPrior(max_features=20, seed=0)
>>> batch = prior.sample(step=0, batch_size=4, n_rows=64, n_train=48)
>>> batch.x.shape, batch.y.shape, batch.task
(torch.Size([4, 64, 20]), torch.Size([4, 64]), 'classification')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["PriorBatch", "SyntheticPrior", "IGNORE_LABEL"]

IGNORE_LABEL = -100  # test rows whose class never occurs among the training rows

_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.1 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "identity": lambda z: z,
    "sin": np.sin,
    "abs": np.abs,
    "square": lambda z: np.minimum(z * z, 25.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))),
}
_ACTIVATION_NAMES = list(_ACTIVATIONS)
# Smooth, mostly monotone activations dominate (real tables rarely hold high-frequency
# relations; stacked sin/square layers made most datasets unlearnable from 256 rows).
_ACTIVATION_PROBS = np.array([0.2, 0.2, 0.15, 0.15, 0.12, 0.02, 0.04, 0.02, 0.1])


@dataclass
class PriorBatch:
    """A batch of synthetic datasets that share a row count and a train/test split.

    ``x`` is ``(batch, rows, max_features)`` with NaN for missing values and zeros in the
    unused feature slots (``n_features`` per dataset); ``y`` holds class ids (as floats, and
    :data:`IGNORE_LABEL` for test rows of a class absent from the training rows) or the
    standardised regression target; the first ``n_train`` rows are the training rows.
    """

    x: torch.Tensor
    y: torch.Tensor
    n_features: torch.Tensor
    n_classes: torch.Tensor
    n_train: int
    task: str


def _standardise(values: np.ndarray) -> np.ndarray:
    mean = values.mean(axis=0, keepdims=True)
    std = values.std(axis=0, keepdims=True)
    return (values - mean) / np.where(std > 1e-8, std, 1.0)


class SyntheticPrior:
    """Random causal-model datasets for pre-training (see the module docstring).

    Parameters
    ----------
    max_features, max_classes : int
        Upper bounds of the datasets drawn (feature slots and class ids of the model).
    tree_fraction : float
        Probability that a dataset's graph is built of tree layers; ``mixed_fraction`` of
        the rest mixes tree and MLP layers; the remainder is pure MLP.
    causal_fraction : float
        Probability that features are hidden nodes (else the causes, a Bayesian-NN prior).
    missing_fraction : float
        Probability that a dataset has missing values.
    noise_range : (float, float)
        Range of the log-uniform noise scale added at every node (nodes have unit variance).
    min_keep : float
        Smallest fraction of nonzero weights in a sparse MLP layer.
    discrete_fraction : float
        Probability that a dataset is a discrete rule table (see the module docstring).
    seed : int
        Seeds every batch together with its ``step``.
    """

    def __init__(
        self,
        max_features: int = 100,
        max_classes: int = 10,
        *,
        tree_fraction: float = 0.35,
        mixed_fraction: float = 0.2,
        causal_fraction: float = 0.75,
        missing_fraction: float = 0.25,
        noise_range: tuple[float, float] = (1e-4, 0.3),
        min_keep: float = 0.1,
        discrete_fraction: float = 0.0,
        seed: int = 0,
    ):
        if max_features < 1 or max_classes < 2:
            raise ValueError("max_features must be >= 1 and max_classes >= 2.")
        self.max_features = max_features
        self.max_classes = max_classes
        self.tree_fraction = tree_fraction
        self.mixed_fraction = mixed_fraction
        self.causal_fraction = causal_fraction
        self.missing_fraction = missing_fraction
        self.noise_range = noise_range
        self.min_keep = min_keep
        self.discrete_fraction = discrete_fraction
        self.seed = seed

    # -- public -------------------------------------------------------------------------
    def sample(
        self,
        step: int,
        batch_size: int,
        n_rows: int,
        n_train: int,
        task: str = "classification",
        n_features: int | None = None,
    ) -> PriorBatch:
        """Draw ``batch_size`` datasets of ``n_rows`` rows (the first ``n_train`` for training)."""
        if task not in ("classification", "regression"):
            raise ValueError(f"task must be 'classification' or 'regression', got {task!r}.")
        if not 0 < n_train < n_rows:
            raise ValueError(f"n_train must be in (0, n_rows), got {n_train} of {n_rows}.")
        rng = np.random.default_rng([self.seed, step])
        x = np.zeros((batch_size, n_rows, self.max_features), dtype=np.float32)
        y = np.zeros((batch_size, n_rows), dtype=np.float32)
        feats = np.zeros(batch_size, dtype=np.int64)
        classes = np.zeros(batch_size, dtype=np.int64)
        for b in range(batch_size):
            n_feat = n_features or self._n_features(rng)
            xb, target = self._dataset(rng, n_rows, n_feat)
            if task == "classification":
                y[b], classes[b] = self._classes(rng, target, n_train)
            else:
                y[b] = self._regression_target(rng, target, n_train)
            x[b, :, :n_feat] = xb
            feats[b] = n_feat
        return PriorBatch(
            torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(feats), torch.from_numpy(classes), n_train, task
        )

    # -- dataset structure --------------------------------------------------------------
    def _n_features(self, rng) -> int:
        # Log-uniform on [1, max]: small tables are common, wide ones still seen often.
        return int(min(self.max_features, np.floor(np.exp(rng.uniform(0.0, np.log(self.max_features + 1))))))

    def _causes(self, rng, n_rows: int, n_causes: int) -> np.ndarray:
        out = np.empty((n_rows, n_causes), dtype=np.float64)
        kinds = rng.choice(4, size=n_causes, p=[0.5, 0.25, 0.1, 0.15])
        for j, kind in enumerate(kinds):
            if kind == 0:
                out[:, j] = rng.normal(rng.normal(0, 1), np.exp(rng.normal(0, 0.5)), n_rows)
            elif kind == 1:
                out[:, j] = rng.uniform(-1.7, 1.7, n_rows)
            elif kind == 2:
                out[:, j] = rng.standard_exponential(n_rows) ** rng.uniform(0.5, 2.0)
            else:
                k = int(rng.integers(2, 8))
                probs = rng.dirichlet(np.ones(k))
                out[:, j] = rng.normal(0, 1, k)[rng.choice(k, size=n_rows, p=probs)]
        return out

    def _mlp_layer(self, rng, h: np.ndarray, width: int, activation: str, noise: float) -> np.ndarray:
        fan_in = h.shape[1]
        keep = rng.uniform(self.min_keep, 1.0) if rng.random() < 0.7 else 1.0
        mask = rng.random((fan_in, width)) < keep
        mask[rng.integers(0, fan_in, width), np.arange(width)] = True  # every node has a parent
        w = rng.normal(0, 1, (fan_in, width)) * mask / np.sqrt(max(1.0, keep * fan_in))
        z = h @ (w * np.exp(rng.normal(0, 0.3))) + rng.normal(0, 0.3, width)
        z = _ACTIVATIONS[activation](z)
        z = z + rng.normal(0, 1, z.shape) * noise * np.exp(rng.normal(0, 0.5, width))
        return _standardise(z)

    def _tree_layer(self, rng, h: np.ndarray, width: int, noise: float) -> np.ndarray:
        # Each node is a sum of random oblivious trees (one split feature and threshold per
        # level), so the leaf index is a few comparisons: vectorised over nodes and trees.
        n_rows, fan_in = h.shape
        n_trees = int(rng.integers(1, 5))
        depth = int(rng.integers(1, 6))
        feature = rng.integers(0, fan_in, (width, n_trees, depth))
        rows = rng.integers(0, n_rows, (width, n_trees, depth))
        threshold = h[rows, feature]  # thresholds at observed values
        bits = h[:, feature] > threshold  # (rows, width, trees, depth)
        leaf = (bits * (1 << np.arange(depth))).sum(-1)
        values = rng.normal(0, 1, (width, n_trees, 1 << depth))
        z = np.take_along_axis(values[None], leaf[..., None], axis=-1)[..., 0].sum(-1)
        z = z + rng.normal(0, 1, z.shape) * noise
        return _standardise(z)

    def _dataset(self, rng, n_rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        # (no draw when the fraction is 0: the batches of priors without it stay the same)
        if self.discrete_fraction and rng.random() < self.discrete_fraction:
            return self._discrete_dataset(rng, n_rows, n_features)
        causal = rng.random() < self.causal_fraction
        n_layers = int(rng.integers(1, 5))
        width = int(np.exp(rng.uniform(np.log(4), np.log(64))))
        if causal:
            width = max(width, int(np.ceil((n_features + 1) / n_layers)) + 1)
        n_causes = n_features if not causal else int(rng.integers(1, width + 1))
        u = rng.random()
        p_tree = 1.0 if u < self.tree_fraction else (0.5 if u < self.tree_fraction + self.mixed_fraction else 0.0)
        activation = _ACTIVATION_NAMES[rng.choice(len(_ACTIVATION_NAMES), p=_ACTIVATION_PROBS)]
        per_layer_activation = rng.random() < 0.3
        noise = float(np.exp(rng.uniform(*np.log(self.noise_range))))
        causes = self._causes(rng, n_rows, n_causes)
        h = _standardise(causes)
        hidden = []
        for _ in range(n_layers):
            if rng.random() < p_tree:
                h = self._tree_layer(rng, h, width, noise)
            else:
                act = (
                    _ACTIVATION_NAMES[rng.choice(len(_ACTIVATION_NAMES), p=_ACTIVATION_PROBS)]
                    if per_layer_activation
                    else activation
                )
                h = self._mlp_layer(rng, h, width, act, noise)
            hidden.append(h)
        if causal:
            nodes = np.concatenate(hidden, axis=1)
            n_nodes = nodes.shape[1]
            if rng.random() < 0.7:  # the target is an effect: taken from the last layer
                target_node = int(rng.integers(n_nodes - width, n_nodes))
            else:
                target_node = int(rng.integers(0, n_nodes))
            others = np.delete(np.arange(n_nodes), target_node)
            chosen = rng.choice(others, size=n_features, replace=False)
            x, target = nodes[:, chosen], nodes[:, target_node]
        else:
            x, target = causes, hidden[-1][:, int(rng.integers(width))]
        return self._warp_features(rng, x), target

    def _discrete_dataset(self, rng, n_rows: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        u = rng.random()
        if u < 0.3:
            levels = np.full(n_features, 2)
        elif u < 0.5:
            levels = np.full(n_features, 3)
        else:
            levels = rng.integers(2, 6, n_features)
        alpha = float(np.exp(rng.uniform(np.log(0.5), np.log(20.0))))  # skewed .. near-uniform codes
        codes = np.empty((n_rows, n_features), dtype=np.int64)
        for j, k in enumerate(levels):
            codes[:, j] = rng.choice(k, size=n_rows, p=rng.dirichlet(np.full(k, alpha)))
        relevant = rng.choice(n_features, size=int(rng.integers(1, min(n_features, 8) + 1)), replace=False)
        target = np.zeros(n_rows)
        for _ in range(int(rng.integers(1, 5))):
            kind = rng.choice(3, p=[0.6, 0.2, 0.2])
            if kind == 1 and len(relevant) >= 2:  # two codes agree (monks: a1 == a2)
                a, b = rng.choice(relevant, size=2, replace=False)
                term = (codes[:, a] == codes[:, b]).astype(np.float64)
            elif kind == 2:  # parity of binary tests on up to 6 codes
                feats = rng.choice(relevant, size=int(rng.integers(1, min(len(relevant), 6) + 1)), replace=False)
                tests = codes[:, feats] >= rng.integers(1, levels[feats])
                term = tests.sum(1) % 2.0
            else:  # a random table of 1-4 codes: main effects and interactions of any shape
                feats = rng.choice(relevant, size=int(rng.integers(1, min(len(relevant), 4) + 1)), replace=False)
                table = rng.normal(0, 1, int(np.prod(levels[feats])))
                term = table[np.ravel_multi_index(tuple(codes[:, feats].T), tuple(levels[feats]))]
            std = term.std()
            target += np.exp(rng.normal(0, 0.5)) * (term - term.mean()) / (std if std > 1e-8 else 1.0)
        target += rng.normal(0, 1, n_rows) * float(np.exp(rng.uniform(np.log(1e-3), np.log(1.0))))
        # codes as most files hold them: 0.., 1.., or spaced; some tables add continuous noise columns
        x = codes * float(rng.choice([1.0, 1.0, 2.0, 10.0])) + float(rng.integers(0, 2))
        x = x.astype(np.float64)
        if rng.random() < 0.2:
            noise_cols = rng.random(n_features) < rng.uniform(0, 0.5)
            noise_cols[relevant] = False
            x[:, noise_cols] = rng.normal(0, 1, (n_rows, int(noise_cols.sum())))
        return x.astype(np.float32), target

    # -- feature and target post-processing ---------------------------------------------
    def _warp_features(self, rng, x: np.ndarray) -> np.ndarray:
        n_rows, n_features = x.shape
        x = x.copy()
        p_skew, p_round = rng.uniform(0, 0.5), rng.uniform(0, 0.3)
        p_categorical = 0.0 if rng.random() < 0.5 else rng.uniform(0, 0.6)
        for j in range(n_features):
            col = x[:, j]
            if rng.random() < p_categorical:
                k = int(rng.integers(2, 11)) if rng.random() < 0.8 else int(rng.integers(11, 30))
                cuts = np.sort(col[rng.integers(0, n_rows, k - 1)])
                col = rng.permutation(k)[np.searchsorted(cuts, col)].astype(np.float64)
            else:
                if rng.random() < p_skew:  # skewed, positive measurements (amounts, counts)
                    col = np.exp(rng.uniform(0.3, 2.0) * _standardise(col[:, None])[:, 0])
                if rng.random() < p_round:
                    col = np.round(col * np.exp(rng.uniform(0, 3)))
                col = col * np.exp(rng.normal(0, 2)) + rng.normal(0, 3)
            x[:, j] = col
        if rng.random() < self.missing_fraction:
            rate = rng.uniform(0.0, 0.4, n_features) * (rng.random(n_features) < 0.5)
            if rng.random() < 0.7:  # missing completely at random
                missing = rng.random(x.shape) < rate
            else:  # missing where the value is high: not at random
                ranks = x.argsort(0).argsort(0) / max(1, n_rows - 1)
                missing = ranks > 1.0 - rate
            x[missing] = np.nan
        return x.astype(np.float32)

    def _classes(self, rng, target: np.ndarray, n_train: int) -> tuple[np.ndarray, int]:
        n_classes = 2 if rng.random() < 0.5 or self.max_classes == 2 else int(rng.integers(3, self.max_classes + 1))
        cuts = np.sort(target[rng.choice(len(target), size=n_classes - 1, replace=False)])
        labels = np.searchsorted(cuts, target)
        labels = rng.permutation(n_classes)[labels]
        # Classes seen among the training rows get ids 0..k-1 in a random order; test rows
        # of an unseen class are ignored by the loss (at inference every class has context).
        present = np.unique(labels[:n_train])
        remap = np.full(n_classes, IGNORE_LABEL, dtype=np.int64)
        remap[present] = rng.permutation(len(present))
        return remap[labels].astype(np.float32), len(present)

    def _regression_target(self, rng, target: np.ndarray, n_train: int) -> np.ndarray:
        if rng.random() < 0.3:
            target = np.exp(rng.uniform(0.3, 1.5) * target)
        target = target + rng.normal(0, 1, target.shape) * 0.1 * rng.random()
        train = target[:n_train]
        std = train.std()
        return ((target - train.mean()) / (std if std > 1e-8 else 1.0)).astype(np.float32)
