"""SASRecRecommender: next-item recommendation from interaction sequences."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..core.model_file import build_checked, estimator_config, read_model_file, write_model_file
from ..core.params import param, params_doc
from ..core.registry import register_model
from ..core.sklearn_glue import derive_seed, module_on_cpu, resolve_num_threads
from ..nn.blocks import full_softmax_cross_entropy
from ..nn.sasrec import SASRec, SASRecConfig
from ..training.device import resolve_device, thread_limit
from ..training.distributed import Ranks
from ..training.engine import Objective, TrainConfig, TrainingParams, fit_module, predict_module, seeded
from .interactions import ItemSequences, check_interaction_columns, interaction_sequences
from .metrics import PROTOCOLS, protocol_label, ranking_metrics

__all__ = ["SASRecRecommender"]

_LOSSES = ("bce", "ce", "sampled_softmax")
# Users scored at once when ranking (a chunk of scores is chunk x n_items floats).
_SCORE_CHUNK = 1024


class _LastState(torch.nn.Module):
    """Inference wrapper: item-id windows -> the state after each window's last item."""

    def __init__(self, model: SASRec):
        super().__init__()
        self.model = model

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.model.last_state(seq)


_SUMMARY = """SASRec (Kang & McAuley 2018): a causal transformer over each user's item sequence.

    ``fit`` takes an interaction table (pandas, polars or pyarrow) with a user column, an
    item column (values of any hashable type) and optionally a timestamp column; each user's
    items are ordered by timestamp (ties keep row order) or by row order. ``precision="auto"``
    autocasts to bf16 on CUDA only: SASRec's products are too small for bf16 to pay on a CPU (on
    an AMX Xeon, Games at the paper's setting: 2.73 s an epoch in bf16 against 2.45 in fp32, HR@10
    0.7409 against 0.7433; benchmarks/RESULTS.md, "Precision"). ``precision="bf16"`` autocasts on
    CPU too."""

_EXAMPLES = """    >>> import pandas as pd
    >>> log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": list("abcabd")})
    >>> rec = SASRecRecommender(maxlen=4, max_epochs=2, validation=False, num_threads=1, random_state=0)
    >>> rec.fit(log).recommend([1], k=1).columns.tolist()
    ['user_id', 'item_id', 'score', 'rank']
"""


@dataclass(kw_only=True, repr=False, eq=False)
class SASRecRecommender(BaseEstimator, TrainingParams, SASRecConfig):
    # The architecture's fields and defaults come from SASRecConfig, the training settings from
    # TrainingParams (SASRec's own recipe overrides some defaults below).
    user_col: str = param("user_id", "Column of the user ids.")
    item_col: str = param("item_id", "Column of the item ids.")
    time_col: str | None = param(None, "Column of the timestamps; None orders each user's items by row order.")
    loss: str = param(
        "bce",
        "\"bce\": the paper's, one negative per position drawn from items outside the user's training "
        'history. "ce": full softmax cross-entropy over all items (SASRec+, much stronger under full '
        'ranking). "sampled_softmax": softmax over the true item and ``n_negatives`` uniformly drawn items '
        "shared by the batch.",
        type='{"bce", "ce", "sampled_softmax"}',
    )
    n_negatives: int = param(256, 'Negatives for ``loss="sampled_softmax"``.')
    max_epochs: int = 200
    batch_size: int = 128
    beta2: float = param(0.98, "Adam's second-moment decay (the paper's 0.98).")
    weight_decay: float = 0.0
    patience: int | None = param(
        10,
        "Early stopping on validation NDCG@10: epochs without improvement before stopping; the best weights "
        "are restored. None trains for ``max_epochs``.",
    )
    validation: bool = param(True, "Hold out each user's last item (users with at least 3 items) for early stopping.")
    validation_protocol: str = param(
        "full",
        "Ranking protocol of the validation metric (see :mod:`tabular_suite.recsys.metrics`).",
        type='{"full", "sampled"}',
    )
    validation_users: int | None = param(
        10000, "Validate on at most this many random users (None: all), as in SASRec+."
    )
    random_state: Any = param(
        None, "Seeds initialisation, negative sampling, shuffling and dropout.", type="int, RandomState or None"
    )
    verbose: int = param(0, "1 shows a progress bar with the losses.")
    callbacks: Any = param(
        None,
        "Extra :class:`~tabular_suite.training.Callback` objects called by the engine.",
        type="list of Callback or None",
    )

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}.")
        if self.validation_protocol not in PROTOCOLS:
            raise ValueError(f"validation_protocol must be one of {PROTOCOLS}, got {self.validation_protocol!r}.")
        for name in ("maxlen", "hidden_units", "num_blocks", "num_heads", "n_negatives"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not (isinstance(self.dropout, numbers.Real) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        if not (isinstance(self.beta2, numbers.Real) and 0 <= self.beta2 < 1):
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2!r}.")

    def _build_module(self, n_items: int) -> SASRec:
        return SASRec(n_items, **{f.name: getattr(self, f.name) for f in fields(SASRecConfig)})

    # --------------------------------------------------------------------- fit
    def fit(self, interactions, y=None, *, items=None):
        """Fit on an interaction table (``y`` is ignored).

        ``items`` optionally lists the whole catalogue: items without interactions yet
        become recommendable (and rankable in :meth:`evaluate`).

        Returns
        -------
        self
        """
        self._check_params()
        seqs = interaction_sequences(interactions, self.user_col, self.item_col, self.time_col, items=items)
        seed = derive_seed(self.random_state)
        lengths = seqs.lengths
        hold = (lengths >= 3).astype(np.int64) if self.validation else np.zeros_like(lengths)
        trainable = np.flatnonzero(lengths - hold >= 2)
        if len(trainable) == 0:
            raise ValueError(
                "No user has two or more interactions to learn from: SASRec needs sequences "
                f"(found {seqs.n_users} users with at most {int(lengths.max())} interactions)."
            )
        seq_in = seqs.windows(self.maxlen, drop_last=hold[trainable] + 1, users=trainable)
        seq_next = seqs.windows(self.maxlen, drop_last=hold[trainable], skip_first=1, users=trainable)
        train = [torch.from_numpy(trainable), torch.from_numpy(seq_in), torch.from_numpy(seq_next)]

        # Items each user interacted with in training, as sorted user * (n_items + 1) + item keys.
        position = np.arange(len(seqs.item_ids)) - np.repeat(seqs.indptr[:-1], lengths)
        in_train = position < np.repeat(lengths - hold, lengths)
        user_of = np.repeat(np.arange(seqs.n_users), lengths)
        self._history_keys = torch.from_numpy(
            np.unique(user_of[in_train] * (seqs.n_items + 1) + seqs.item_ids[in_train])
        )
        self._targets_per_batch = float((seq_next > 0).sum()) / len(trainable) * min(self.batch_size, len(trainable))

        config = TrainConfig.from_params(
            self,
            precision=self._precision(),
            betas=(0.9, self.beta2),
            num_threads=resolve_num_threads(self.num_threads),
            seed=seed,
            verbose=self.verbose,
        )
        self.sequences_ = seqs
        objective = Objective(loss=None, metric=None, metric_name="ndcg", train_loss=self._train_loss)
        valid_users = np.flatnonzero(hold)
        if len(valid_users) and self.validation_users is not None and len(valid_users) > self.validation_users:
            valid_users = np.sort(np.random.default_rng(seed).choice(valid_users, self.validation_users, replace=False))
        if len(valid_users):
            objective.evaluate = self._validator(seqs, valid_users, seed)
        try:
            with seeded(seed, config.device):
                module = self._build_module(seqs.n_items)
                state = fit_module(
                    module,
                    train,
                    objective,
                    config,
                    None,
                    list(self.callbacks or ()),
                    lengths=torch.from_numpy((seq_in > 0).sum(1)),
                )
        finally:
            del self._history_keys, self._targets_per_batch
        self.module_ = module
        self.users_ = seqs.users
        self.items_ = seqs.items
        self.history_ = state.history
        self.best_epoch_ = state.best_epoch
        self.n_params_ = sum(p.numel() for p in module.parameters())
        return self

    def _train_loss(self, module: SASRec, inputs, target: torch.Tensor) -> torch.Tensor:
        users, seq = inputs
        width = int((seq > 0).sum(1).max())  # batches hold similar lengths: cut the padding
        seq, target = seq[:, :width], target[:, :width]
        real = target > 0
        states = module(seq)[real]  # only real positions: no work on padding
        positives = target[real]
        items = module.item_embedding
        pos_logit = (states * items(positives)).sum(-1)
        # Batches hold similar lengths, so a per-batch mean would give a batch of short
        # sequences as much weight as one of long ones: sum over targets, divided by the
        # average targets per batch, weights every target equally as random batches do.
        reduction, scale = "sum", self._targets_per_batch
        if self.loss == "bce":
            negatives = self._negatives(users.unsqueeze(1).expand_as(target)[real], module.n_items)
            neg_logit = (states * items(negatives)).sum(-1)
            return (
                F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit), reduction=reduction)
                + F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit), reduction=reduction)
            ) / scale
        if self.loss == "ce":
            # id 0 (padding) is never a class; chunked, so no (targets x items) logits are stored
            return full_softmax_cross_entropy(states, items.weight[1:], positives - 1) / scale
        negatives = torch.randint(1, module.n_items + 1, (self.n_negatives,), device=seq.device)
        neg_logit = states @ items(negatives).T.to(states.dtype)
        neg_logit = neg_logit.masked_fill(negatives.unsqueeze(0) == positives.unsqueeze(1), float("-inf"))
        logits = torch.cat([pos_logit.unsqueeze(1), neg_logit], 1).float()
        return F.cross_entropy(logits, torch.zeros_like(positives), reduction=reduction) / scale

    def _negatives(self, users: torch.Tensor, n_items: int) -> torch.Tensor:
        """One uniform item per entry, redrawn while it is in that user's training history."""
        keys = self._history_keys.to(users.device)
        negatives = torch.randint(1, n_items + 1, users.shape, device=users.device)
        for _ in range(100):  # a user who saw every item keeps a seen one after 100 draws
            codes = users * (n_items + 1) + negatives
            found = keys[torch.searchsorted(keys, codes).clamp_(max=len(keys) - 1)] == codes
            n_bad = int(found.sum())
            if n_bad == 0:
                break
            negatives[found] = torch.randint(1, n_items + 1, (n_bad,), device=users.device)
        return negatives

    def _validator(self, seqs: ItemSequences, users: np.ndarray, seed: int):
        windows = seqs.windows(self.maxlen, drop_last=1, users=users)
        targets = seqs.item_ids[seqs.indptr[users + 1] - 1]
        history = _Histories(seqs, users, drop_last=1)
        protocol = self.validation_protocol
        candidates = None
        if protocol == "sampled":
            candidates = _sampled_candidates(history, targets, seqs.n_items, 100, np.random.default_rng(seed))

        def evaluate(module):
            def ranked(rows):  # the target ranks of a run of validation users
                a, b = (int(rows[0][0]), int(rows[0][-1]) + 1) if len(rows[0]) else (0, 0)
                seen = _Histories(seqs, users[a:b], drop_last=1)
                part = None if candidates is None else candidates[a:b]
                return torch.from_numpy(self._ranks(module, windows[a:b], targets[a:b], seen, part))

            # Data-parallel: each rank ranks its share of the users (runs of 256), every rank gets them all.
            positions = Ranks().predict_shared(ranked, [torch.arange(len(targets))], 256).numpy()
            metrics = ranking_metrics(positions, 10)
            return -metrics["NDCG@10"], {f"val_{k}": v for k, v in metrics.items()}

        return evaluate

    # ----------------------------------------------------------------- scoring
    def _precision(self) -> str:
        """``precision`` with "auto" resolved: bf16 on CUDA, fp32 elsewhere (see the class docstring)."""
        if self.precision == "auto" and resolve_device(self.device).type != "cuda":
            return "fp32"
        return self.precision

    def _states(self, module: SASRec, windows: np.ndarray) -> torch.Tensor:
        return predict_module(
            _LastState(module),
            [torch.from_numpy(windows)],
            device=self.device,
            precision=self._precision(),
            num_threads=resolve_num_threads(self.num_threads),
        )

    @torch.inference_mode()
    def _ranks(self, module, windows, targets, history: _Histories, candidates=None) -> np.ndarray:
        """0-based rank of each target (``inf`` when it cannot be ranked)."""
        states = self._states(module, windows)
        weight = module.item_embedding.weight.detach().float().cpu()
        targets = torch.as_tensor(targets)
        ranks = np.full(len(targets), np.inf)
        with thread_limit(resolve_num_threads(self.num_threads)):
            for start in range(0, len(targets), _SCORE_CHUNK):
                rows = slice(start, start + _SCORE_CHUNK)
                s, t = states[rows], targets[rows]
                if candidates is not None:
                    scores = torch.einsum("bd,bnd->bn", s, weight[torch.as_tensor(candidates[rows])])
                    r = (scores[:, 1:] > scores[:, :1]).sum(1).numpy().astype(np.float64)
                else:
                    scores = s @ weight.T
                    own = scores.gather(1, t.unsqueeze(1))
                    scores[:, 0] = float("-inf")
                    history.mask(scores, start)
                    seen = torch.isinf(scores.gather(1, t.unsqueeze(1))).squeeze(1)
                    r = (scores > own).sum(1).numpy().astype(np.float64)
                    r[seen.numpy()] = np.inf  # a seen item is never recommended again
                r[(t == 0).numpy()] = np.inf  # target item unknown at fit
                ranks[rows] = r
        return ranks

    def _top_k(self, windows: np.ndarray, history: _Histories | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        states = self._states(self.module_, windows)
        weight = self.module_.item_embedding.weight.detach().float().cpu()
        k = min(k, len(self.items_))
        items, scores = [], []
        with torch.inference_mode(), thread_limit(resolve_num_threads(self.num_threads)):
            for start in range(0, len(windows), _SCORE_CHUNK):
                s = states[start : start + _SCORE_CHUNK] @ weight.T
                s[:, 0] = float("-inf")
                if history is not None:
                    history.mask(s, start)
                top = s.topk(k, dim=1)
                items.append(top.indices.numpy())
                scores.append(top.values.numpy())
        return np.concatenate(items), np.concatenate(scores)

    def _recommendation_table(self, keys, key_name: str, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        k = ids.shape[1]
        keep = np.isfinite(scores).ravel()
        return pd.DataFrame(
            {
                key_name: np.repeat(np.asarray(keys, dtype=object), k)[keep],
                self.item_col: self.items_[np.maximum(ids.ravel() - 1, 0)][keep],
                "score": scores.ravel()[keep],
                "rank": np.tile(np.arange(1, k + 1), len(ids))[keep],
            }
        ).reset_index(drop=True)

    def _user_indices(self, users) -> np.ndarray:
        check_is_fitted(self, "module_")
        if np.isscalar(users) or users is None:
            users = [users]
        users = list(users)
        idx = pd.Index(self.users_).get_indexer(pd.Index(users)) if users else np.zeros(0, dtype=np.int64)
        unknown = [u for u, i in zip(users, idx) if i < 0]
        if unknown:
            raise ValueError(
                f"{len(unknown)} user(s) were not seen at fit, e.g. {unknown[:5]}: use "
                "recommend_for_sequences(item_lists) for users without a fitted history."
            )
        return idx.astype(np.int64)

    # -------------------------------------------------------------- public use
    def recommend(self, users, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` next items for users seen at fit, from their whole fitted history.

        Returns a DataFrame with columns (user column, item column, ``score``, ``rank``);
        ``rank`` starts at 1. ``exclude_seen`` drops items the user already interacted with.

        Examples
        --------
        >>> import pandas as pd
        >>> log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": ["a", "b", "c", "a", "d"]})
        >>> rec = SASRecRecommender(max_epochs=1, validation=False, num_threads=1, random_state=0).fit(log)
        >>> sorted(rec.recommend([2], k=2)["item_id"])  # items user 2 has not seen
        ['b', 'c']
        """
        idx = self._user_indices(users)
        _check_k(k)
        windows = self.sequences_.windows(self.maxlen, users=idx)
        history = _Histories(self.sequences_, idx) if exclude_seen else None
        ids, scores = self._top_k(windows, history, k)
        return self._recommendation_table(self.users_[idx], self.user_col, ids, scores)

    def recommend_for_sequences(self, sequences, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` next items for item sequences of users not seen at fit (no retraining).

        ``sequences`` is a list of item lists (oldest first). Items unknown at fit are
        skipped with a warning. Returns columns ``sequence`` (position in the list), the
        item column, ``score`` and ``rank``.

        Examples
        --------
        >>> import pandas as pd
        >>> log = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": ["a", "b", "c", "a", "d"]})
        >>> rec = SASRecRecommender(max_epochs=1, validation=False, num_threads=1, random_state=0).fit(log)
        >>> rec.recommend_for_sequences([["a", "b"]], k=1)["sequence"].tolist()
        [0]
        """
        check_is_fitted(self, "module_")
        _check_k(k)
        if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
            raise TypeError("sequences must be a list of item lists, e.g. [['a', 'b'], ['c']].")
        encoded, n_unknown = [], 0
        for i, seq in enumerate(sequences):
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
                raise TypeError(f"sequences[{i}] must be a list of items, got {type(seq).__name__}.")
            ids = self.sequences_.encode_items(list(seq))
            n_unknown += int((ids == 0).sum())
            ids = ids[ids > 0]
            if len(ids) == 0:
                raise ValueError(f"sequences[{i}] has no item known to the model; it needs at least one.")
            encoded.append(ids)
        if n_unknown:
            warnings.warn(f"{n_unknown} item(s) unknown at fit were skipped.", UserWarning, stacklevel=2)
        lengths = np.array([len(s) for s in encoded], dtype=np.int64)
        seqs = ItemSequences(
            users=np.arange(len(encoded)),
            items=self.items_,
            indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            item_ids=np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int64),
        )
        history = _Histories(seqs, np.arange(len(encoded))) if exclude_seen else None
        ids, scores = self._top_k(seqs.windows(self.maxlen), history, k)
        return self._recommendation_table(np.arange(len(encoded)), "sequence", ids, scores)

    def evaluate(self, test, protocol: str = "full", k: int = 10, n_negatives: int = 100, random_state=0) -> dict:
        """HR@k and NDCG@k of the next items in ``test`` given each user's fitted history.

        ``test`` holds (user, item) rows, e.g. the test part of
        :func:`tabular_suite.recsys.metrics.leave_one_out_split` (the model fitted on train +
        validation). ``protocol``: "full" ranks among all items (the user's items excluded);
        "sampled" among ``n_negatives`` uniformly drawn items the user has not seen (the
        SASRec paper's). Target items unknown at fit count as misses.

        Returns
        -------
        dict with ``protocol`` (a description), ``users``, ``HR@k``, ``NDCG@k``.
        """
        check_is_fitted(self, "module_")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
        _check_k(k)
        df = check_interaction_columns(test, {"user": self.user_col, "item": self.item_col}, name="test")
        idx = self._user_indices(df[self.user_col].tolist())
        targets = self.sequences_.encode_items(df[self.item_col].tolist())
        if (targets == 0).any():
            warnings.warn(
                f"{int((targets == 0).sum())} test item(s) unknown at fit count as misses.", UserWarning, stacklevel=2
            )
        history = _Histories(self.sequences_, idx)
        candidates = None
        if protocol == "sampled":
            candidates = _sampled_candidates(
                history, targets, len(self.items_), n_negatives, np.random.default_rng(random_state)
            )
        ranks = self._ranks(self.module_, self.sequences_.windows(self.maxlen, users=idx), targets, history, candidates)
        return {"protocol": protocol_label(protocol, n_negatives), "users": len(ranks), **ranking_metrics(ranks, k)}

    def score(self, test, y=None) -> float:
        """NDCG@10 under full ranking on ``test`` (higher is better)."""
        return self.evaluate(test, protocol="full", k=10)["NDCG@10"]

    # ------------------------------------------------------------- persistence
    def __getstate__(self):
        return module_on_cpu(super().__getstate__())

    def save(self, path) -> None:
        """Save to one file (weights, vocabularies and histories; no pickle).

        Users and items must be strings, integers, floats or booleans to be saved.
        """
        check_is_fitted(self, "module_")
        fitted = {
            "users": _json_values(self.users_, "user"),
            "items": _json_values(self.items_, "item"),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
        }
        config = estimator_config(self, fitted)
        tensors = {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        tensors["indptr"] = self.sequences_.indptr
        tensors["item_ids"] = self.sequences_.item_ids
        write_model_file(path, config, tensors)

    @classmethod
    def _from_state(cls, config: dict, tensors: dict) -> SASRecRecommender:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = cls(**config["params"])
        fitted = config["fitted"]
        est.users_ = np.asarray(fitted["users"], dtype=None if _homogeneous(fitted["users"]) else object)
        est.items_ = np.asarray(fitted["items"], dtype=None if _homogeneous(fitted["items"]) else object)
        est.sequences_ = ItemSequences(est.users_, est.items_, tensors["indptr"].numpy(), tensors["item_ids"].numpy())
        module = build_checked(
            lambda: est._build_module(len(est.items_)),
            {f.name: getattr(est, f.name) for f in fields(SASRecConfig)},
            {k[7:]: v for k, v in tensors.items() if k.startswith("module.")},
            source="the SASRecRecommender file",
        )
        est.module_ = module.eval()
        est.history_, est.best_epoch_ = fitted["history"], fitted["best_epoch"]
        est.n_params_ = sum(p.numel() for p in module.parameters())
        return est

    @classmethod
    def load(cls, path) -> SASRecRecommender:
        """Load a recommender saved with :meth:`save`."""
        return cls._from_state(*read_model_file(path))


class _Histories:
    """The items each evaluated user has interacted with, for masking scores in chunks."""

    def __init__(self, seqs: ItemSequences, users: np.ndarray, drop_last: int = 0):
        self.seqs, self.users, self.drop_last = seqs, users, drop_last

    def items(self, row: int) -> np.ndarray:
        u = self.users[row]
        return self.seqs.item_ids[self.seqs.indptr[u] : self.seqs.indptr[u + 1] - self.drop_last]

    def mask(self, scores: torch.Tensor, start: int) -> None:
        """Set the scores of seen items to -inf for rows ``start..start + len(scores)``."""
        users = self.users[start : start + len(scores)]
        begin = self.seqs.indptr[users]
        rows, _, items = self.seqs.spans(begin, self.seqs.indptr[users + 1] - self.drop_last - begin)
        scores[torch.from_numpy(rows), torch.from_numpy(items)] = float("-inf")


def _sampled_candidates(history: _Histories, targets: np.ndarray, n_items: int, n: int, rng) -> np.ndarray:
    """Rows of [target, n distinct items uniformly drawn among those the user has not seen]."""
    out = np.zeros((len(targets), n + 1), dtype=np.int64)
    out[:, 0] = targets
    for row in range(len(targets)):
        seen = np.union1d(history.items(row), targets[row : row + 1])
        if n_items - len(np.setdiff1d(seen, [0])) < n:
            raise ValueError(
                f"Sampled evaluation needs {n} unseen items per user, but a user has seen "
                f"{len(seen)} of the {n_items} items; lower n_negatives or use protocol='full'."
            )
        picked = np.zeros(0, dtype=np.int64)
        while len(picked) < n:
            draw = rng.integers(1, n_items + 1, size=2 * n)
            draw = draw[~np.isin(draw, seen)]
            picked = np.concatenate([picked, draw])
            _, first = np.unique(picked, return_index=True)
            picked = picked[np.sort(first)]
        out[row, 1:] = picked[:n]
    return out


def _check_k(k) -> None:
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")


def _json_values(values: np.ndarray, what: str) -> list:
    out = values.tolist()
    bad = next((v for v in out if not isinstance(v, (str, int, float, bool))), None)
    if bad is not None:
        raise ValueError(
            f"Cannot save: {what} values must be str, int, float or bool, got {type(bad).__name__} ({bad!r})."
        )
    return out


def _homogeneous(values: list) -> bool:
    return len({type(v) for v in values}) <= 1 and not (values and isinstance(values[0], str))


_COLUMNS = ("user_col", "item_col", "time_col")
SASRecRecommender.__doc__ = (
    f"{_SUMMARY}\n\n    Parameters\n    ----------\n"
    f"{params_doc(SASRecRecommender, skip=[f.name for f in fields(SASRecRecommender) if f.name not in _COLUMNS])}\n"
    f"{params_doc(SASRecRecommender, skip=_COLUMNS)}\n\n    Examples\n    --------\n{_EXAMPLES}"
)

register_model(
    "sasrec",
    "SASRec: self-attentive next-item recommendation (Kang & McAuley 2018)",
    recommender=SASRecRecommender,
    family="recommendation",
)
