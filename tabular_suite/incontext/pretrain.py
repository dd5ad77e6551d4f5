"""Pre-training the in-context transformer on the synthetic prior, resumably.

One step draws a batch of synthetic datasets (:class:`~tabular_suite.incontext.prior.SyntheticPrior`),
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..core.files import atomic_path
from ..core.params import param
from ..core.sklearn_glue import resolve_num_threads
from ..nn.pfn import PFNConfig, PFNTransformer
from ..training.device import autocast_dtype, resolve_device, thread_limit
from .prior import IGNORE_LABEL, SyntheticPrior
from .weights import MODEL_KEYS, build_model, load_weights, save_weights

__all__ = ["PretrainConfig", "pretrain", "export_weights"]


@dataclass(kw_only=True)
class PretrainConfig(PFNConfig):
    """Settings of a pre-training run: the model's size (the fields of
    :class:`~tabular_suite.nn.pfn.PFNConfig`, with its defaults), optimisation, curriculum and
    evaluation."""

    steps: int = param(16_000, "Total optimizer steps (the cosine schedule spans them).")
    lr: float = param(5e-4, "Peak AdamW learning rate.")
    weight_decay: float = param(0.01, "AdamW weight decay.")
    warmup_steps: int = param(300, "Linear warm-up steps before the cosine decay.")
    grad_clip: float = param(1.0, "Largest gradient norm; larger gradients are scaled down to it.")
    tokens_per_step: int = param(8192, "Rows (tokens) per optimizer step, over all datasets of the step.")
    min_rows: int = param(128, "Rows per synthetic dataset at the start of the curriculum.")
    max_rows: int = param(1200, "Rows per synthetic dataset at the end of the curriculum.")
    curriculum: float = param(0.4, "Fraction of the steps over which rows per dataset grow from min_rows to max_rows.")
    regression_fraction: float = param(0.2, "Share of steps that draw regression datasets (else classification).")
    discrete_fraction: float = param(
        0.15,
        "Share of synthetic datasets that are discrete rule tables "
        "(logic/genetics-like; 0 = the first two shipped cycles' prior).",
    )
    eval_every: int = param(250, "Steps between evaluations (held-out prior batches + real tables); 0 = none.")
    eval_batches: int = param(8, "Held-out prior batches per task at each evaluation.")
    checkpoint_every: int = param(100, "Steps between checkpoints (also written at the end and at the time limit).")
    seed: int = param(0, "Seeds the prior and the initialisation.")
    precision: str = param("bf16", "bf16 (autocast, also on CPU), fp32, or auto (bf16 on CUDA only).")
    device: str = param("auto", "Torch device; auto = cuda > mps > cpu.")
    num_threads: int | None = param(1, "Torch CPU threads (None: the library's default, see resolve_num_threads).")

    def model_config(self) -> dict:
        return {key: getattr(self, key) for key in MODEL_KEYS}


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
    prior = SyntheticPrior(
        cfg.max_features, cfg.max_classes, discrete_fraction=cfg.discrete_fraction, seed=cfg.seed + 1_000_003
    )
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
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "config": json.dumps(dataclasses.asdict(cfg)),
        "history": json.dumps(history),
    }
    with atomic_path(path) as tmp:  # a killed run never leaves a half-written checkpoint behind
        torch.save(payload, tmp)


def pretrain(
    cfg: PretrainConfig,
    checkpoint: str | os.PathLike,
    *,
    resume: bool = True,
    log: Callable[[str], None] = print,
    time_limit: float | None = None,
    callbacks: tuple[Callable[[int, PFNTransformer], dict], ...] = (),
    init_weights: str | os.PathLike | None = None,
) -> dict:
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
    with thread_limit(resolve_num_threads(cfg.num_threads)):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model_config()).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
        history: dict = {"steps": [], "evals": []}
        step = 0
        if resume and checkpoint.exists():
            state = torch.load(checkpoint, map_location=device, weights_only=True)
            saved = json.loads(state["config"])
            mismatch = {k: (saved[k], getattr(cfg, k)) for k in MODEL_KEYS if saved[k] != getattr(cfg, k)}
            if mismatch:
                raise ValueError(f"checkpoint {checkpoint} has a different model (saved, requested): {mismatch}.")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            step, history = int(state["step"]), json.loads(state["history"])
            log(f"resumed {checkpoint} at step {step}")
        elif init_weights is not None:
            init_model, info = load_weights(init_weights)
            mismatch = {
                k: (init_model.config[k], getattr(cfg, k))
                for k in MODEL_KEYS
                if init_model.config[k] != getattr(cfg, k)
            }
            if mismatch:
                raise ValueError(f"{init_weights} has a different model (saved, requested): {mismatch}.")
            model.load_state_dict(init_model.state_dict())
            history["init_weights"] = {
                "path": str(init_weights),
                "step": info.get("step"),
                "pretrain": info.get("pretrain"),
            }
            log(f"initialised from {init_weights} (pre-trained for {info.get('step')} steps)")
            if cfg.eval_every:  # where the new cycle starts from, on this run's held-out batches
                history["evals"].append({"step": 0, **_evaluate(model, cfg, device, amp)})
                _log_figures(log, history["evals"][-1])
        prior = SyntheticPrior(
            cfg.max_features, cfg.max_classes, discrete_fraction=cfg.discrete_fraction, seed=cfg.seed
        )
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
            history["steps"].append(
                [step, task[0], n_rows, round(loss.item(), 5), None if math.isnan(accuracy) else round(accuracy, 4)]
            )
            if cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                figures = {
                    "step": step,
                    "train_loss": float(np.mean(window)),
                    "seconds_per_step": (time.perf_counter() - tick) / len(window),
                }
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
    >>> from tabular_suite.incontext.weights import load_weights
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
        raise ValueError(
            "Checkpoints to average must hold the same model (sizes differ): " + ", ".join(str(c) for c in checkpoints)
        )
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
