"""Pre-training the in-context transformer on the synthetic prior, resumably.

One step draws a batch of synthetic datasets (:class:`~tabular_suite.pfn.priors.SyntheticPrior`),
feeds each dataset's training rows as context and minimises the cross-entropy of its test
rows (class labels, or the bin of the standardised target for regression). AdamW, linear
warm-up then cosine decay, gradient clipping, bf16 autocast on CPU and CUDA. A size curriculum
grows the rows per dataset from ``min_rows`` to ``max_rows`` over the first ``curriculum``
fraction of the steps while the tokens per step stay about constant.

Everything a step draws is seeded by ``(seed, step)``, and the checkpoint (written atomically
every ``checkpoint_every`` steps) holds the model, the optimizer and the history: a run
killed at any point continues with ``resume=True`` exactly where its last checkpoint was.
:func:`export_weights` turns a checkpoint into the small file the estimators load
(int8 matrices with per-row scales, see :func:`compact_tensors`).

Examples
--------
>>> import tempfile, os
>>> cfg = PretrainConfig(steps=2, d_model=16, n_heads=2, n_layers=1, d_ffn=32, max_features=8,
...                      tokens_per_step=256, min_rows=64, max_rows=64, eval_every=0, checkpoint_every=1)
>>> ckpt = os.path.join(tempfile.mkdtemp(), "run.pt")
>>> history = pretrain(cfg, ckpt, log=lambda msg: None)
>>> len(history["steps"]), os.path.exists(ckpt)
(2, True)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..estimators.persistence import read_model_file, write_model_file
from ..nn.pfn import PFNTransformer
from ..training.device import autocast_dtype, resolve_device, thread_limit
from .priors import IGNORE_LABEL, SyntheticPrior

__all__ = ["PretrainConfig", "pretrain", "export_weights", "load_weights", "save_weights", "build_model",
           "compact_tensors", "model_from_tensors",
           "real_data_callback"]

_MODEL_KEYS = ("max_features", "max_classes", "d_model", "n_heads", "n_layers", "d_ffn", "n_bins")


@dataclass
class PretrainConfig:
    """Settings of a pre-training run (model size, optimisation, curriculum, evaluation)."""

    steps: int = 16_000
    max_features: int = 100
    max_classes: int = 10
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 6
    d_ffn: int = 512
    n_bins: int = 96
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 300
    grad_clip: float = 1.0
    tokens_per_step: int = 8192
    min_rows: int = 128
    max_rows: int = 1200
    curriculum: float = 0.4
    regression_fraction: float = 0.2
    discrete_fraction: float = 0.15
    eval_every: int = 250
    eval_batches: int = 8
    checkpoint_every: int = 100
    seed: int = 0
    precision: str = "bf16"
    device: str = "auto"
    num_threads: int | None = 1

    def model_config(self) -> dict:
        return {key: getattr(self, key) for key in _MODEL_KEYS}


def build_model(model_config: dict) -> PFNTransformer:
    """A fresh :class:`PFNTransformer` from the model part of a config."""
    return PFNTransformer(**{key: model_config[key] for key in _MODEL_KEYS})


def _schedule(cfg: PretrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _batch_shape(cfg: PretrainConfig, step: int) -> tuple[str, int, int, int]:
    """Task, datasets, rows and training rows of ``step`` (seeded by the step)."""
    rng = np.random.default_rng([cfg.seed, step, 7])
    grown = min(1.0, step / max(1.0, cfg.curriculum * cfg.steps))
    top = cfg.min_rows + grown * (cfg.max_rows - cfg.min_rows)
    n_rows = int(rng.integers(cfg.min_rows, int(top) + 1)) // 32 * 32 or 32
    n_train = int(rng.integers(max(8, n_rows // 16), max(9, int(0.85 * n_rows))))
    task = "regression" if rng.random() < cfg.regression_fraction else "classification"
    return task, max(1, cfg.tokens_per_step // n_rows), n_rows, n_train


def _loss(model: PFNTransformer, batch, device, amp) -> tuple[torch.Tensor, float]:
    x, y = batch.x.to(device), batch.y.to(device)
    regression = batch.task == "regression"
    n_train = batch.n_train
    with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
        logits = model(x, y[:, :n_train], None if regression else batch.n_classes.to(device), regression)
    logits = logits.float().flatten(0, 1)
    target = y[:, n_train:].flatten()
    if regression:
        borders = model.bin_borders
        target = torch.bucketize(target.clamp(borders[0], borders[-1]), borders[1:-1])
        return F.cross_entropy(logits, target), float("nan")
    target = target.long()
    loss = F.cross_entropy(logits, target, ignore_index=IGNORE_LABEL)
    keep = target != IGNORE_LABEL
    accuracy = (logits.argmax(-1)[keep] == target[keep]).float().mean().item()
    return loss, accuracy


def _evaluate(model, cfg: PretrainConfig, device, amp) -> dict:
    """Loss and accuracy on fixed held-out prior batches (a seed no training step uses)."""
    prior = SyntheticPrior(cfg.max_features, cfg.max_classes, discrete_fraction=cfg.discrete_fraction,
                           seed=cfg.seed + 1_000_003)
    out = {}
    model.eval()
    with torch.no_grad():
        for task in ("classification", "regression"):
            losses, accs = [], []
            for i in range(cfg.eval_batches):
                n_rows = 512
                batch = prior.sample(i, max(1, cfg.tokens_per_step // n_rows), n_rows, 256 + 32 * (i % 4) - 64, task)
                loss, acc = _loss(model, batch, device, amp)
                losses.append(loss.item())
                accs.append(acc)
            out[f"eval_{task}_loss"] = float(np.mean(losses))
            if task == "classification":
                out["eval_accuracy"] = float(np.mean(accs))
    model.train()
    return out


def _log_figures(log: Callable[[str], None], figures: dict) -> None:
    log(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


def _save_checkpoint(path: Path, model, optimizer, step: int, cfg: PretrainConfig, history: dict) -> None:
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
               "config": json.dumps(dataclasses.asdict(cfg)), "history": json.dumps(history)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)  # a killed run never leaves a half-written checkpoint behind
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pretrain(cfg: PretrainConfig, checkpoint: str | os.PathLike, *, resume: bool = True,
             log: Callable[[str], None] = print, time_limit: float | None = None,
             callbacks: tuple[Callable[[int, PFNTransformer], dict], ...] = (),
             init_weights: str | os.PathLike | None = None) -> dict:
    """Pre-train (or continue pre-training) a :class:`PFNTransformer`; returns the history.

    ``checkpoint`` is written every ``cfg.checkpoint_every`` steps and at the end; with
    ``resume=True`` an existing checkpoint is continued (its config must match ``cfg``'s
    model). ``time_limit`` (seconds) stops early after a checkpoint, for runs split over
    sessions. ``callbacks`` are called at every evaluation with ``(step, model)`` and return
    extra figures for the history (e.g. accuracy on real datasets). ``init_weights`` (a
    :func:`save_weights` file, e.g. the shipped one) starts a new run from those weights instead
    of a random initialisation: a second warm-up + cosine cycle (the optimizer starts fresh); it
    is ignored when an existing checkpoint is continued.
    """
    checkpoint = Path(checkpoint)
    device = resolve_device(cfg.device)
    amp = autocast_dtype(cfg.precision, device)
    start_time = time.perf_counter()
    with thread_limit(cfg.num_threads):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model_config()).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
        history: dict = {"steps": [], "evals": []}
        step = 0
        if resume and checkpoint.exists():
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            saved = json.loads(state["config"])
            mismatch = {k: (saved[k], getattr(cfg, k)) for k in _MODEL_KEYS if saved[k] != getattr(cfg, k)}
            if mismatch:
                raise ValueError(f"checkpoint {checkpoint} has a different model (saved, requested): {mismatch}.")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            step, history = int(state["step"]), json.loads(state["history"])
            log(f"resumed {checkpoint} at step {step}")
        elif init_weights is not None:
            init_model, info = load_weights(init_weights)
            mismatch = {k: (init_model.config[k], getattr(cfg, k)) for k in _MODEL_KEYS
                        if init_model.config[k] != getattr(cfg, k)}
            if mismatch:
                raise ValueError(f"{init_weights} has a different model (saved, requested): {mismatch}.")
            model.load_state_dict(init_model.state_dict())
            history["init_weights"] = {"path": str(init_weights), "step": info.get("step"),
                                       "pretrain": info.get("pretrain")}
            log(f"initialised from {init_weights} (pre-trained for {info.get('step')} steps)")
            if cfg.eval_every:  # where the new cycle starts from, on this run's held-out batches
                history["evals"].append({"step": 0, **_evaluate(model, cfg, device, amp)})
                _log_figures(log, history["evals"][-1])
        prior = SyntheticPrior(cfg.max_features, cfg.max_classes, discrete_fraction=cfg.discrete_fraction, seed=cfg.seed)
        model.train()
        window: list[float] = []
        tick = time.perf_counter()
        while step < cfg.steps:
            task, n_sets, n_rows, n_train = _batch_shape(cfg, step)
            batch = prior.sample(step, n_sets, n_rows, n_train, task)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * _schedule(cfg, step)
            loss, accuracy = _loss(model, batch, device, amp)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            window.append(loss.item())
            history["steps"].append([step, task[0], n_rows, round(loss.item(), 5),
                                     None if math.isnan(accuracy) else round(accuracy, 4)])
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                figures = {"step": step, "train_loss": float(np.mean(window)),
                           "seconds_per_step": (time.perf_counter() - tick) / len(window)}
                figures.update(_evaluate(model, cfg, device, amp))
                for callback in callbacks:
                    model.eval()
                    with torch.no_grad():
                        figures.update(callback(step, model))
                    model.train()
                history["evals"].append(figures)
                _log_figures(log, figures)
                window, tick = [], time.perf_counter()
            out_of_time = time_limit is not None and time.perf_counter() - start_time > time_limit
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
                _save_checkpoint(checkpoint, model, optimizer, step, cfg, history)
            if out_of_time:
                log(f"time limit reached at step {step}; continue with resume=True")
                break
    return history


def compact_tensors(model: PFNTransformer) -> dict[str, torch.Tensor]:
    """The model's weights in about a byte per parameter, for files that ship or are saved.

    Matrices become int8 with one fp16 scale per row (symmetric, per output channel); other
    floating tensors fp16; the regression bin borders stay fp32. :func:`model_from_tensors`
    inverts it.
    """
    out = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        if not t.is_floating_point() or name == "bin_borders":
            out[name] = t
        elif t.ndim == 2:
            scale = t.abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
            out[f"{name}.int8"] = torch.round(t / scale).to(torch.int8)
            out[f"{name}.scale"] = scale.half()
        else:
            out[name] = t.half()
    return out


def model_from_tensors(model_config: dict, tensors: dict[str, torch.Tensor]) -> PFNTransformer:
    """An fp32 :class:`PFNTransformer` (eval mode) from :func:`compact_tensors` output."""
    state = {}
    for name, t in tensors.items():
        if name.endswith(".scale"):
            continue
        if name.endswith(".int8"):
            base = name[:-5]
            state[base] = t.float() * tensors[f"{base}.scale"].float()
        else:
            state[name] = t.float() if t.is_floating_point() else t
    model = build_model(model_config)
    model.load_state_dict(state)
    return model.eval()


def save_weights(model: PFNTransformer, path: str | os.PathLike, *, info: dict | None = None) -> Path:
    """Write ``model`` as a small inference file: its config and :func:`compact_tensors`.

    >>> import tempfile
    >>> model = PFNTransformer(max_features=4, d_model=8, n_heads=2, n_layers=1, d_ffn=16)
    >>> path = save_weights(model, tempfile.mkdtemp() + "/w.tsm")
    >>> load_weights(path)[0].config == model.config
    True
    """
    config = {"kind": "pfn_weights", "model": model.config, **(info or {})}
    return write_model_file(path, config, compact_tensors(model))


def export_weights(checkpoint, path: str | os.PathLike) -> Path:
    """Write a pre-training checkpoint's model as a small inference file (see :func:`save_weights`).

    Several checkpoints of one model (e.g. successive cycles, each started from the one
    before) are averaged parameter by parameter, a "model soup": the shipped weights are
    the mean of the fourth and fifth cycles', better than either on the benchmarks.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> cfg = PretrainConfig(steps=1, max_features=8, d_model=16, n_heads=2, n_layers=1, d_ffn=32, n_bins=16,
    ...                      tokens_per_step=256, min_rows=64, max_rows=96, eval_every=0, device="cpu")
    >>> for seed in (0, 1):
    ...     _ = pretrain(dataclasses.replace(cfg, seed=seed), f"{d}/run{seed}.pt", log=lambda m: None)
    >>> load_weights(export_weights(f"{d}/run0.pt", f"{d}/one.tsm"))[1]["step"]
    1
    >>> load_weights(export_weights([f"{d}/run0.pt", f"{d}/run1.pt"], f"{d}/soup.tsm"))[1]["step"]
    [1, 1]
    """
    checkpoints = [checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else list(checkpoint)
    if not checkpoints:
        raise ValueError("Give at least one checkpoint to export.")
    states = [torch.load(c, map_location="cpu", weights_only=True) for c in checkpoints]
    configs = [json.loads(state["config"]) for state in states]
    models = [build_model(cfg) for cfg in configs]
    if any(m.config != models[0].config for m in models):
        raise ValueError("Checkpoints to average must hold the same model (sizes differ): "
                         + ", ".join(str(c) for c in checkpoints))
    for model, state in zip(models, states):
        model.load_state_dict(state["model"])
    model = models[0]
    if len(models) > 1:
        tensors = [m.state_dict() for m in models]
        with torch.no_grad():
            for name, param in tensors[0].items():
                if param.is_floating_point():
                    param.copy_(torch.stack([t[name] for t in tensors]).mean(0))
    steps = [int(state["step"]) for state in states]
    return save_weights(model, path, info={"pretrain": configs[-1], "step": steps[0] if len(steps) == 1 else steps})


def load_weights(path: str | os.PathLike) -> tuple[PFNTransformer, dict]:
    """Load an :func:`export_weights` file (checksummed, ``weights_only``) as an fp32 model."""
    config, tensors = read_model_file(path)
    if config.get("kind") != "pfn_weights":
        raise ValueError(f"{path} is not a PFN weights file (written by export_weights).")
    return model_from_tensors(config["model"], tensors), config


def real_data_callback(tables, *, max_train_rows: int = 500, n_estimators: int = 1, seed: int = 0):
    """A :func:`pretrain` callback: ROC AUC of the model in training on real tables.

    ``tables`` is a list of ``(name, X, y)`` classification tables; each is split 50/50
    (stratified, at most ``max_train_rows`` context rows) and scored with
    :class:`~tabular_suite.estimators.incontext.TabPFNClassifier` using the in-memory model.
    Returns ``real_auc_mean`` and ``auc_<name>`` per table.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from ..estimators.incontext import TabPFNClassifier

    splits = []
    for name, X, y in tables:
        y = np.asarray(y)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
        if len(y_tr) > max_train_rows:
            X_tr, _, y_tr, _ = train_test_split(X_tr, y_tr, train_size=max_train_rows, stratify=y_tr, random_state=seed)
        splits.append((name, X_tr, X_te, y_tr, y_te))

    def callback(step: int, model: PFNTransformer) -> dict:
        out = {}
        for name, X_tr, X_te, y_tr, y_te in splits:
            clf = TabPFNClassifier(weights=model, n_estimators=n_estimators, random_state=seed,
                                   num_threads=torch.get_num_threads(), device=str(next(model.parameters()).device))
            proba = clf.fit(X_tr, y_tr).predict_proba(X_te)
            if len(clf.classes_) == 2:
                out[f"auc_{name}"] = float(roc_auc_score(y_te, proba[:, 1]))
            else:
                out[f"auc_{name}"] = float(roc_auc_score(y_te, proba, multi_class="ovo", labels=clf.classes_))
        out["real_auc_mean"] = float(np.mean(list(out.values())))
        return out

    return callback
