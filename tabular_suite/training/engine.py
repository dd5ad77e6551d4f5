"""The one training loop for every gradient-trained model.

Batches are index slices of tensors already on the device; there is no per-row Dataset.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from ..core.params import param
from ..core.sklearn_glue import resolve_num_threads
from .callbacks import Callback, ProgressBar
from .device import autocast_dtype, resolve_device, thread_limit
from .distributed import Ranks, init_from_env

__all__ = [
    "TrainingParams",
    "TrainConfig",
    "Objective",
    "TrainState",
    "ChunkedData",
    "fit_module",
    "predict_module",
    "seeded",
    "weighted_mean",
]


@dataclass(kw_only=True, eq=False)
class TrainingParams:
    """The user-facing training settings, each with its one default.

    :class:`TrainConfig` and the estimators inherit them; an estimator whose model has its
    own recipe overrides a default in its class (e.g. ExcelFormer's ``max_epochs=500``).
    ``eq=False``: estimators inheriting the fields keep identity equality and hashing.
    """

    max_epochs: int = param(300, "Upper bound on training epochs.")
    batch_size: int = param(256, "Training rows per optimisation step.")
    lr: float = param(1e-3, "AdamW learning rate.")
    weight_decay: float = param(1e-5, "AdamW weight decay (no decay on biases, norms and embeddings).")
    scheduler: str = param(
        "constant",
        'Learning-rate schedule after ``warmup_epochs`` of linear warm-up: "constant", "cosine" or "linear" '
        '(decay to 0 at ``max_epochs``) or "plateau" (halved after max(2, patience // 4) epochs without a '
        "better validation loss or score).",
        type='{"constant", "cosine", "linear", "plateau"}',
    )
    warmup_epochs: float = param(0.0, "Epochs of linear learning-rate warm-up (may be fractional).")
    patience: int | None = param(
        16,
        "Early stopping: epochs without a better validation loss (or score: ``monitor``) before stopping; "
        "the best weights are restored. None trains for ``max_epochs``.",
    )
    grad_clip: float | None = param(None, "Clip the gradient norm to this value.")
    device: str = param(
        "auto",
        '"auto" picks cuda > mps > cpu, or any torch device string. Models fitted on one device predict on any other.',
    )
    precision: str = param(
        "auto",
        '"auto" = bf16 autocast on CUDA and on CPUs with AVX512-BF16 or AMX (TabM on an AMX Xeon: fit 2.3x '
        'and prediction 3.0x as fast, the same accuracy; benchmarks/RESULTS.md, "Precision"), fp32 elsewhere; '
        '"bf16" forces it, "fp32" turns it off.',
        type='{"auto", "bf16", "fp32"}',
    )
    num_threads: int | None = param(
        None,
        "Torch CPU threads during fit/predict (restored afterwards). None = all cores but one, or "
        "``TABULAR_SUITE_NUM_THREADS``.",
    )
    per_process_batch: bool = param(
        False,
        "Data-parallel training (torchrun, ``--workers``, Ray): each process takes ``batch_size`` rows a "
        "step, so a step takes N times the rows and an epoch N times fewer steps (DistributedDataParallel's "
        "usual recipe; a process's fixed cost per step is spread over more rows), instead of "
        "``batch_size / N`` (the one-process schedule, the default). One process: no effect.",
    )
    checkpoint: str | None = param(
        None,
        "A file the training state (weights, optimizer, schedule, early-stopping state, history) is saved "
        "to after every epoch; a fit that finds it resumes after its last epoch (an interrupted run, or a "
        "data-parallel worker restarted by torchrun), and deletes it once training ends. None: no checkpoint.",
        type="path or None",
    )


@dataclass(kw_only=True)
class TrainConfig(TrainingParams):
    """Everything :func:`fit_module` needs: the :class:`TrainingParams` plus engine-only settings."""

    plateau_factor: float = param(0.5, '"plateau": the lr multiplier when the validation criterion stalls.')
    plateau_patience: int | None = param(
        None, '"plateau": epochs without improvement before a reduction (None: max(2, patience // 4)).'
    )
    plateau_min_lr: float = param(0.0, '"plateau": the lr is not reduced below this.')
    monitor: str = param(
        "loss",
        'What early stopping, the best epoch kept and the "plateau" schedule follow on ``valid``: "loss" '
        '(the objective\'s loss) or "score" (its ``metric``, higher or lower is better as the objective '
        "says). An objective's ``evaluate`` replaces both.",
        type='{"loss", "score"}',
    )
    betas: tuple[float, float] = param((0.9, 0.999), "AdamW's (beta1, beta2).")
    seed: int = param(0, "Seed of the batch order.")
    verbose: int = param(0, "1 shows a progress bar with the losses.")
    sparse_embeddings: bool = param(
        False,
        "Categorical embedding tables (:class:`~tabular_suite.nn.embeddings.CategoricalEmbeddings`) get "
        "sparse gradients and lazy Adam updates (``torch.optim.SparseAdam``): a step reads and writes "
        "only the rows its batch looked up, and their moments; AdamW updates the other parameters.",
    )

    @classmethod
    def from_params(cls, params: TrainingParams, **settings) -> TrainConfig:
        """The config with the :class:`TrainingParams` values of ``params`` (e.g. an estimator),
        ``settings`` replacing some of them or setting the engine-only ones.

        >>> TrainConfig.from_params(TrainingParams(lr=0.01), seed=3).lr
        0.01
        """
        values = {f.name: getattr(params, f.name) for f in fields(TrainingParams)}
        return cls(**{**values, **settings})

    def __post_init__(self):
        if self.scheduler not in ("constant", "cosine", "linear", "plateau"):
            raise ValueError(f"scheduler must be 'constant', 'cosine', 'linear' or 'plateau', got {self.scheduler!r}.")
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience!r}.")
        if self.monitor not in ("loss", "score"):
            raise ValueError(f"monitor must be 'loss' or 'score', got {self.monitor!r}.")


@dataclass
class Objective:
    """What the engine minimises and reports.

    ``loss(outputs, target)`` returns a scalar tensor; ``metric(outputs, target)`` returns a
    float named ``metric_name`` (e.g. accuracy or RMSE in original units: reported, and followed
    by early stopping with ``TrainConfig.monitor="score"``, which needs ``higher_is_better``: its
    direction).
    ``train_loss(module, inputs, target)``, when given, replaces ``loss(module(*inputs),
    target)`` for training batches: the hook for batch strategies such as mixing
    augmentations or negative sampling, which need the module and not just its outputs.
    With per-row weights (:func:`fit_module`'s ``train_weight`` / ``valid_weight``) both are
    called with the batch's weights as a fourth (``train_loss``) or third (``loss``) argument
    and return the weighted mean (see :func:`weighted_mean`); so is ``metric`` on weighted
    validation rows.
    ``evaluate(module)``, when given, validates without ``valid`` tensors (e.g. ranking
    metrics): it returns ``(criterion, logs)``, the criterion being minimised by early
    stopping (e.g. ``-NDCG``) and ``logs`` extra values for the epoch's history.
    """

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metric: Callable[[torch.Tensor, torch.Tensor], float]
    metric_name: str
    train_loss: Callable[[nn.Module, list, torch.Tensor], torch.Tensor] | None = None
    evaluate: Callable[[nn.Module], tuple[float, dict]] | None = None
    higher_is_better: bool | None = None


@dataclass
class TrainState:
    module: nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    epoch: int = 0
    history: list = field(default_factory=list)
    best_epoch: int | None = None
    criterion: float | None = None  # the last epoch's validation criterion, minimised (loss, -score, -AUC)
    stop: bool = False
    step_scheduler: object = None
    plateau: object = None
    sparse_optimizer: object = None  # SparseAdam over the sparse embedding tables (config.sparse_embeddings)


def weighted_average(values: torch.Tensor, weight: torch.Tensor | None) -> float:
    """The mean of ``values``, weighted by ``weight`` when given (a validation metric: unlike
    :func:`weighted_mean`, whatever the weights' scale).

    >>> weighted_average(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 1.0]))
    0.75
    """
    if weight is None:
        return float(values.mean())
    weight = weight.to(values.dtype)
    return float((values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny))


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``values.mean()``, or with per-row ``weight`` the mean of ``weight * values``: with weights
    of mean 1 over the training rows (the estimators normalise them so), a row of weight 2
    counts as twice that row in expectation, and the learning rate keeps its meaning.

    >>> float(weighted_mean(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])))
    3.0
    """
    if weight is None:
        return values.mean()
    return (values * weight.to(values.dtype)).mean()


@contextlib.contextmanager
def seeded(seed: int, device: str | torch.device = "cpu"):
    """Seed torch's global RNGs for the block and restore the caller's RNG state afterwards."""
    device = resolve_device(device)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda" if devices else "cpu"):
        torch.manual_seed(seed)
        yield


def _param_groups(module: nn.Module, weight_decay: float, exclude=()) -> list[dict]:
    """No weight decay on biases, norms, embeddings, tokens and periodic frequencies (rtdl's recipe)."""
    decay, no_decay = [], []
    skip = {id(p) for p in exclude}
    for name, p in module.named_parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        exempt = (
            p.ndim < 2
            or name.endswith("bias")  # also per-member biases (TabM)
            or any(k in name for k in ("tokenizer", "embedding", "norm", "cls", "frequencies"))
        )
        (no_decay if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _sparse_tables(module: nn.Module, sparse: bool) -> list[nn.Parameter]:
    """Set every categorical embedding table's ``sparse`` flag; the tables made sparse."""
    from ..nn.embeddings import CategoricalEmbeddings

    tables = []
    for m in module.modules():
        if isinstance(m, CategoricalEmbeddings):
            m.embedding.sparse = sparse
            if sparse and m.embedding.weight.requires_grad:
                tables.append(m.embedding.weight)
    return tables


def clip_grad_norm(parameters, max_norm: float) -> torch.Tensor:
    """``nn.utils.clip_grad_norm_`` that also takes sparse gradients (coalesced: an index at
    most once); the same total norm and scaling as the dense gradients would have.

    >>> e = nn.Embedding(10, 2, sparse=True)
    >>> e(torch.tensor([1, 1, 3])).sum().backward()
    >>> e.weight.grad = e.weight.grad.coalesce()
    >>> dense = e.weight.grad.to_dense()
    >>> float(clip_grad_norm([e.weight], 1.0)) == float(dense.norm())
    True
    >>> torch.allclose(e.weight.grad.to_dense(), dense / dense.norm(), atol=1e-6)
    True
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not any(g.is_sparse for g in grads):
        return nn.utils.clip_grad_norm_(parameters, max_norm)
    values = [g._values() if g.is_sparse else g for g in grads]
    total = torch.stack([torch.linalg.vector_norm(v.float()) for v in values]).norm()
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for v in values:
        v.mul_(coef.to(v.dtype))
    return total


def _step_schedule(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warmup = int(config.warmup_epochs * steps_per_epoch)
    total = max(config.max_epochs * steps_per_epoch, warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        if config.scheduler == "linear":
            return max(0.0, 1 - (step - warmup) / (total - warmup))
        return 1.0

    return factor


def _bucket_by_length(order: torch.Tensor, lengths: torch.Tensor, batch_size: int, generator) -> torch.Tensor:
    """Reorder a shuffled ``order`` so that consecutive ``batch_size`` slices hold rows of
    similar length: pools of 50 batches are sorted by length, then full batches are shuffled
    (the usual bucketing of sequence models). The trailing partial batch stays last."""
    pool = 50 * batch_size
    pieces = [p[torch.argsort(lengths[p], stable=True)] for p in order.split(pool)]
    order = torch.cat(pieces)
    n_full = len(order) // batch_size * batch_size
    batches = order[:n_full].view(-1, batch_size)[torch.randperm(n_full // batch_size, generator=generator)]
    return torch.cat([batches.reshape(-1), order[n_full:]])


#: Rows per inference chunk. Every chunk is padded to exactly this size so each row's
#: prediction is bit-identical whatever else is predicted with it (BLAS kernels differ by
#: matrix size); 256 rows keeps CPU throughput near its peak for all our models.
INFERENCE_CHUNK = 256


@torch.inference_mode()
def predict_module(
    module: nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    device: str | torch.device = "auto",
    precision: str = "auto",
    batch_size: int = INFERENCE_CHUNK,
    num_threads: int | None = None,
) -> torch.Tensor:
    """Run ``module`` in eval mode over ``inputs`` in fixed-size chunks; float32 outputs on CPU.

    Examples
    --------
    >>> out = predict_module(nn.Linear(2, 1), [torch.zeros(10, 2)], device="cpu")
    >>> out.shape
    torch.Size([10, 1])
    """
    device = resolve_device(device)
    amp = autocast_dtype(precision, device)
    n = inputs[0].shape[0]
    with thread_limit(resolve_num_threads(num_threads)):
        module.to(device).eval()
        chunks = []
        for start in range(0, n, batch_size):
            batch = [t[start : start + batch_size].to(device, non_blocking=True) for t in inputs]
            rows = batch[0].shape[0]
            if rows < batch_size:
                batch = [torch.cat([t, t.new_zeros((batch_size - rows, *t.shape[1:]))]) for t in batch]
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                chunks.append(module(*batch)[:rows].float())
        out = torch.cat(chunks) if chunks else torch.empty(0)
        return out.cpu()


class ChunkedData:
    """Training data that does not fit in memory: an iterable of chunks, each a list
    ``(*inputs, target)`` of CPU tensors, re-iterated once per epoch.

    ``chunks(epoch)`` yields the chunks of one epoch (an implementation should vary their
    order with ``epoch``); ``n_rows`` is the number of rows per epoch (for schedules).
    The engine shuffles rows within each chunk. In data-parallel training the engine sets
    ``shard = (rank, world size)``: an implementation yields only this rank's share of the
    chunks (one that ignores it gives every rank all of them).
    """

    n_rows: int
    shard: tuple[int, int] = (0, 1)

    def chunks(self, epoch: int):  # pragma: no cover - interface
        raise NotImplementedError


def _signature(module: nn.Module) -> dict:
    return {name: list(t.shape) for name, t in module.state_dict().items()}


#: What a resumed fit must share with the fit that wrote the checkpoint (the seed: its
#: validation rows, batch order and dropout; the others: the optimisation it continues).
_RESUMED_SETTINGS = (
    "seed",
    "lr",
    "weight_decay",
    "batch_size",
    "scheduler",
    "warmup_epochs",
    "patience",
    "grad_clip",
    "monitor",
)


def _settings(config: TrainConfig) -> dict:
    return {name: getattr(config, name) for name in _RESUMED_SETTINGS}


def checkpoint_seed(path) -> int | None:
    """The seed of the fit that wrote the checkpoint at ``path`` (None: no checkpoint there, or
    one written before checkpoints held it): a fit with ``random_state=None`` resumes with it,
    on the same validation rows."""
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True).get("settings", {}).get("seed")


def data_fingerprint(*parts) -> str:
    """A digest of the tensors a checkpoint was written for (training and validation rows, their
    weights; rows streamed from files: their number): a fit on other rows, e.g. another fold of
    a grid search whose clones share a checkpoint path, must not resume it.

    >>> a = [torch.zeros(3, 2), torch.ones(3)]
    >>> data_fingerprint(a, None) == data_fingerprint([t.clone() for t in a], None) != data_fingerprint(a, a)
    True
    """
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, ChunkedData):
            digest.update(f"streamed {part.n_rows}".encode())
            continue
        for tensor in [part] if isinstance(part, torch.Tensor) else part or ():
            digest.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def _save_checkpoint(
    path: Path, state: TrainState, tracking: tuple, generator: torch.Generator, config: TrainConfig, data: str
) -> None:
    """The training state after an epoch, written atomically (a crash leaves the previous one),
    with the random streams of the batch order and of dropout (a resumed fit continues them),
    the settings a resumed fit must share (:data:`_RESUMED_SETTINGS`) and the
    :func:`data_fingerprint` of its rows."""
    from ..core.files import atomic_path

    best_loss, best_weights, bad_epochs, stopped = tracking
    payload = {
        "format": 1,
        "signature": _signature(state.module),
        "settings": _settings(config),
        "data": data,
        "module": state.module.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "sparse_optimizer": None if state.sparse_optimizer is None else state.sparse_optimizer.state_dict(),
        "step_scheduler": None if state.step_scheduler is None else state.step_scheduler.state_dict(),
        "plateau": None if state.plateau is None else state.plateau.state_dict(),
        "epoch": state.epoch,
        "history": [
            {k: v if v is None or isinstance(v, (bool, int, str)) else float(v) for k, v in h.items()}
            for h in state.history
        ],  # plain numbers: the file loads with weights_only
        "best_epoch": state.best_epoch,
        "best": [float(best_loss), best_weights, bad_epochs, bool(stopped)],
        "random": [generator.get_state(), torch.get_rng_state()],
        "cuda_random": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _resume(path: Path, state: TrainState, generator: torch.Generator, config: TrainConfig, data: str) -> tuple:
    """Load a checkpoint into ``state`` (module, optimizers, schedules, epoch, history) and the
    random streams; returns the early-stopping state ``(best loss, best weights, epochs without
    improvement, stopped)``. A checkpoint of another model, of a fit with other settings
    (:data:`_RESUMED_SETTINGS`: its optimizer state would bring back its learning rate) or on
    other rows (:func:`data_fingerprint` ``data``) is an error."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("signature") != _signature(state.module):
        raise ValueError(
            f"The checkpoint {path} holds another model (other layers or sizes): delete it, or give this "
            "fit another checkpoint path."
        )
    if payload.get("data", data) != data:  # (a checkpoint before fingerprints is not compared)
        raise ValueError(
            f"The checkpoint {path} was written by a fit on other rows (another fold of a search whose fits "
            "share one checkpoint path?): give each fit its own checkpoint, or delete it to start again."
        )
    saved, here = payload.get("settings"), _settings(config)
    if saved is not None:  # (checkpoints before ``monitor`` followed the loss)
        saved = {"monitor": "loss", **saved}
    changed = [  # (a setting a checkpoint predates is not compared)
        f"{k} {saved[k]!r} there, {here[k]!r} here"
        for k in here
        if saved is not None and k in saved and saved[k] != here[k]
    ]
    if changed:
        raise ValueError(
            f"The checkpoint {path} was written by a fit with other settings ({'; '.join(changed)}): resume with "
            "the same settings (and random_state), or delete the checkpoint to start again."
        )
    device = next(state.module.parameters()).device
    state.module.load_state_dict(payload["module"])
    state.optimizer.load_state_dict(payload["optimizer"])
    for name in ("sparse_optimizer", "step_scheduler", "plateau"):
        if payload[name] is not None and getattr(state, name) is not None:
            getattr(state, name).load_state_dict(payload[name])
    for optimizer in (state.optimizer, state.sparse_optimizer):  # a sharded run saved views of one storage
        for values in [] if optimizer is None else optimizer.state.values():
            for key, value in values.items():
                if isinstance(value, torch.Tensor) and value.untyped_storage().nbytes() > value.nbytes:
                    values[key] = value.clone()  # (keeps only its own values alive)
    state.epoch, state.history, state.best_epoch = payload["epoch"], payload["history"], payload["best_epoch"]
    best_loss, best_weights, bad_epochs, stopped = payload["best"]
    generator.set_state(payload["random"][0])
    torch.set_rng_state(payload["random"][1])
    cuda_states = payload.get("cuda_random", [])
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    if best_weights is not None:
        best_weights = {k: v.to(device) for k, v in best_weights.items()}
    return best_loss, best_weights, bad_epochs, stopped


def _epoch_batches(train, epoch: int, streamed: bool, lengths, config, ranks, generator, device):
    """One epoch's training batches (lists of tensors, weights last when given) of this rank:
    each chunk's rows shuffled (by length buckets with ``lengths``); in memory, this rank's
    equal share of the epoch's order (streamed data is shared out by its chunks). Streamed, the
    rows a chunk leaves over (fewer than a batch) open the next chunk's batches, so that every
    batch but the epoch's last has the same size: each new batch size costs the matrix
    libraries new kernels, and memory they keep (oneDNN, bf16: about 5 MB a size for a small
    MLP; a chunk's odd last batch made the 10M-row stream's peak RSS grow by ~500 MB)."""
    size = ranks.batch_size(config.batch_size, config.per_process_batch)
    leftover = None
    for chunk in train.chunks(epoch) if streamed else [train]:
        if streamed:
            chunk = [t.to(device, non_blocking=True) for t in chunk]
        rows = chunk[0].shape[0]
        order = torch.randperm(rows, generator=generator)
        if lengths is not None and not streamed:
            order = _bucket_by_length(order, lengths, min(config.batch_size, rows), generator)
        if not streamed:
            order = ranks.shard(order)  # data-parallel: this rank's share of the epoch
        rows = len(order)
        if rows == 0:
            continue
        order = order.to(device)
        if streamed:
            shuffled = [t[order] for t in chunk]
            if leftover is not None:
                shuffled = [torch.cat([old, new]) for old, new in zip(leftover, shuffled)]
            n_full = shuffled[0].shape[0] // size * size
            for begin in range(0, n_full, size):
                yield [t[begin : begin + size] for t in shuffled]
            leftover = [t[n_full:] for t in shuffled] if n_full < shuffled[0].shape[0] else None
            continue
        batch_size = min(size, rows)
        # A trailing batch of one row is skipped (rows are reshuffled every epoch):
        # BatchNorm cannot train on it and its gradient would be pure noise.
        n_used = rows - 1 if rows % batch_size == 1 and rows > batch_size else rows
        for begin in range(0, n_used, batch_size):
            idx = order[begin : min(begin + batch_size, n_used)]
            yield [t[idx] for t in chunk]
    if leftover is not None and leftover[0].shape[0] > 1:  # the epoch's last batch (one row: skipped, as above)
        yield leftover


def fit_module(
    module: nn.Module,
    train: Sequence[torch.Tensor] | ChunkedData,
    objective: Objective,
    config: TrainConfig,
    valid: Sequence[torch.Tensor] | None = None,
    callbacks: Sequence[Callback] = (),
    lengths: torch.Tensor | None = None,
    state: TrainState | None = None,
    *,
    train_weight: torch.Tensor | None = None,
    valid_weight: torch.Tensor | None = None,
) -> TrainState:
    """Train ``module`` in place; returns the final :class:`TrainState` with the history.

    ``train``/``valid`` are sequences ``(*inputs, target)`` of tensors with equal first
    dimension, or for ``train`` a :class:`ChunkedData` streamed chunk by chunk. With
    ``valid`` and ``config.patience``, training stops when the validation loss (or score:
    ``config.monitor``) has not improved for ``patience`` epochs and the best weights are restored. ``lengths`` (one per
    training row, e.g. real tokens of a padded sequence) makes each batch hold rows of
    similar length, so a batch strategy can trim the padding. ``state`` (a previous call's
    result) continues training with its optimizer and schedule: ``config.max_epochs`` more
    epochs (``partial_fit``). ``train_weight`` / ``valid_weight``: a weight per training /
    validation row, passed with each batch to the objective's losses (in-memory data only).

    Examples
    --------
    >>> X, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> obj = Objective(nn.functional.mse_loss, lambda o, t: float(((o - t) ** 2).mean()), "mse")
    >>> state = fit_module(nn.Linear(3, 1), (X, y), obj, TrainConfig(max_epochs=2, device="cpu"))
    >>> len(fit_module(state.module, (X, y), obj, TrainConfig(max_epochs=1, device="cpu"), state=state).history)
    3
    """
    if config.monitor == "score" and objective.evaluate is None and objective.higher_is_better is None:
        raise ValueError('monitor="score" needs the objective\'s higher_is_better (is a larger metric better?).')
    device = resolve_device(config.device)
    amp = autocast_dtype(config.precision, device)
    init_from_env()  # under torchrun: data-parallel over the group's processes
    ranks = Ranks()
    callbacks = list(callbacks) + ([ProgressBar()] if config.verbose and ranks.rank == 0 else [])
    streamed = isinstance(train, ChunkedData)
    if streamed and train_weight is not None:
        raise ValueError("Row weights need in-memory training data, not ChunkedData.")
    n = train.n_rows if streamed else train[0].shape[0]
    batch_size = min(config.batch_size * (ranks.world if config.per_process_batch else 1), n)  # a step's rows
    steps_per_epoch = math.ceil((n - 1 if n % batch_size == 1 and n > batch_size else n) / batch_size)

    num_threads = resolve_num_threads(config.num_threads)
    with thread_limit(num_threads):
        module.to(device)
        if not streamed:
            train = [t.to(device) for t in train]
            if train_weight is not None:  # sliced with the batch, split off below
                train.append(train_weight.to(device))
        sparse_tables = _sparse_tables(module, config.sparse_embeddings)
        ranks.broadcast_module(module)
        new_fit = state is None
        if state is None:
            # The fused kernel: one pass over all parameters (the per-tensor loop is a visible share of a CPU step).
            optimizer = torch.optim.AdamW(
                _param_groups(module, config.weight_decay, exclude=sparse_tables),
                lr=config.lr,
                betas=config.betas,
                fused=device.type in ("cpu", "cuda"),
            )
            state = TrainState(module, optimizer, config)
            if sparse_tables:
                state.sparse_optimizer = torch.optim.SparseAdam(sparse_tables, lr=config.lr, betas=config.betas)
            if config.scheduler == "plateau":
                wait = (
                    config.plateau_patience
                    if config.plateau_patience is not None
                    else max(2, (config.patience or 16) // 4)
                )
                # Improvement = strictly lower than the best, the early-stopping rule. (The default
                # relative threshold flips direction for negative criteria such as -AUC: an epoch a
                # little below the best AUC would count as an improvement.)
                state.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                    optimizer,
                    factor=config.plateau_factor,
                    patience=wait,
                    threshold=0.0,
                    threshold_mode="abs",
                    min_lr=config.plateau_min_lr,
                )
            else:
                state.step_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer, _step_schedule(config, steps_per_epoch)
                )
        optimizer, step_scheduler, plateau = state.optimizer, state.step_scheduler, state.plateau
        sparse_optimizer = state.sparse_optimizer
        best_loss, best_weights, bad_epochs = math.inf, None, 0
        last_epoch = state.epoch + config.max_epochs  # partial_fit: max_epochs more
        checkpoint = Path(config.checkpoint) if config.checkpoint and new_fit else None
        data = None if checkpoint is None else data_fingerprint(train, valid, valid_weight)  # (train holds its weights)
        generator = torch.Generator().manual_seed(config.seed + state.epoch)
        # Resume (max_epochs in all) when rank 0 sees the checkpoint: every rank does, or none (the
        # path must be one all ranks read, e.g. a shared disk); rank 0's weights are broadcast after.
        if checkpoint is not None and ranks.from_main(checkpoint.exists()):
            best_loss, best_weights, bad_epochs, stopped = _resume(checkpoint, state, generator, config, data)
            last_epoch = state.epoch if stopped else config.max_epochs
            ranks.broadcast_module(module)
        state.stop, first_epoch = False, state.epoch + 1
        parameters = list(module.parameters())  # (once: every step averages and clips them)
        # Only callbacks that override on_batch_end are called per batch (a deadline, say).
        batch_callbacks = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]
        for cb in callbacks:
            cb.on_train_begin(state)
        # Streamed shares (row groups) differ in size: the ranks agree before each step that all have rows.
        synced = streamed and ranks.active
        if synced:
            train.shard = (ranks.rank, ranks.world)
        try:
            for epoch in range(first_epoch, last_epoch + 1):
                started = time.perf_counter()
                module.train()
                total, n_seen = torch.zeros((), device=device), 0
                batches = _epoch_batches(train, epoch, streamed, lengths, config, ranks, generator, device)
                batch = next(batches, None)
                if synced and not ranks.all_have(batch is not None):  # some rank has no rows this epoch
                    batch = None
                while batch is not None:
                    # The next batch is fetched first: whether this rank has one travels with the
                    # gradients (streamed shares differ in size, and the ranks stop together).
                    following = next(batches, None)
                    weighted = (batch.pop(),) if train_weight is not None else ()  # the rows' weights
                    *inputs, target = batch
                    with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                        if objective.train_loss is not None:
                            loss = objective.train_loss(module, inputs, target, *weighted).float()
                        else:
                            loss = objective.loss(module(*inputs).float(), target, *weighted)
                    optimizer.zero_grad(set_to_none=True)
                    if sparse_optimizer is not None:
                        sparse_optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    for table in sparse_tables:  # one entry per row (SparseAdam and the norm need it)
                        if table.grad is not None:
                            table.grad = table.grad.coalesce()
                    all_have_next = ranks.average_gradients(
                        parameters, sparse_tables, has_next=(following is not None) if synced else None
                    )
                    if config.grad_clip:
                        clip_grad_norm(parameters, config.grad_clip)
                    if sparse_optimizer is not None:  # at the scheduled learning rate
                        for group in sparse_optimizer.param_groups:
                            group["lr"] = optimizer.param_groups[0]["lr"]
                    ranks.step([optimizer, sparse_optimizer], sparse_tables)
                    if step_scheduler is not None:
                        step_scheduler.step()
                    rows = target.shape[0]
                    total += loss.detach() * rows
                    n_seen += rows
                    if batch_callbacks and ranks.any(any([cb.on_batch_end(state) for cb in batch_callbacks])):
                        state.stop = True
                        break
                    batch = following if all_have_next is not False else None
                n_seen = ranks.total(n_seen)  # rows of all ranks
                train_loss = ranks.total(float(total)) / max(n_seen, 1)
                ranks.broadcast_buffers(module)  # rank 0's BatchNorm statistics (say) everywhere
                if not math.isfinite(train_loss):
                    raise RuntimeError(
                        f"Training diverged at epoch {epoch} (loss {train_loss}); lower lr or set grad_clip."
                    )
                logs = {"epoch": epoch, "train_loss": train_loss}
                validation_started = time.perf_counter()
                if objective.evaluate is not None:
                    module.eval()
                    criterion, extra = objective.evaluate(module)
                    logs.update(extra)
                elif valid is not None:
                    *v_inputs, v_target = valid
                    # Each rank predicts its share of the rows (whole inference chunks: the same
                    # figures as one process), and every rank gets all of them.
                    v_out = ranks.predict_shared(
                        lambda part: predict_module(
                            module, part, device=device, precision=config.precision, num_threads=num_threads
                        ),
                        v_inputs,
                        INFERENCE_CHUNK,
                    )
                    v_weighted = () if valid_weight is None else (valid_weight,)
                    val_loss = float(objective.loss(v_out, v_target, *v_weighted))
                    score = objective.metric(v_out, v_target, *v_weighted)
                    logs["val_loss"], logs[f"val_{objective.metric_name}"] = val_loss, score
                    criterion = val_loss  # (minimised)
                    if config.monitor == "score":
                        criterion = -score if objective.higher_is_better else score
                if valid is not None or objective.evaluate is not None:
                    criterion, logs = ranks.from_main((criterion, logs))  # the ranks decide alike
                    state.criterion = criterion
                    if plateau is not None:
                        plateau.step(criterion)
                    if criterion < best_loss:
                        best_loss, bad_epochs, state.best_epoch = criterion, 0, epoch
                        best_weights = {k: v.detach().clone() for k, v in module.state_dict().items()}
                    else:
                        bad_epochs += 1
                    if config.patience is not None and bad_epochs >= config.patience:
                        state.stop = True
                logs["lr"] = optimizer.param_groups[0]["lr"]
                logs["seconds"] = time.perf_counter() - started
                if valid is not None or objective.evaluate is not None:
                    logs["val_seconds"] = time.perf_counter() - validation_started
                if streamed:
                    logs["rows_per_s"] = n_seen / logs["seconds"]
                state.epoch = epoch
                state.history.append(logs)
                for cb in callbacks:
                    if cb.on_epoch_end(state, logs):
                        state.stop = True
                if ranks.any(state.stop):
                    state.stop = True
                if checkpoint is not None and ranks.rank == 0:
                    tracked = (best_loss, best_weights, bad_epochs, state.stop)
                    _save_checkpoint(checkpoint, state, tracked, generator, config, data)
                if state.stop:
                    break
        finally:
            ranks.release()  # (a sharded update's parameters lived in shared memory)
            for cb in callbacks:
                cb.on_train_end(state)
        if best_weights is not None:
            module.load_state_dict(best_weights)
        if best_weights is None:
            state.best_epoch = state.epoch
        module.eval()
        if checkpoint is not None:
            ranks.any(False)  # a barrier: every rank is past reading the checkpoint
            if ranks.rank == 0:
                checkpoint.unlink(missing_ok=True)  # trained to the end: nothing to resume
        return state
