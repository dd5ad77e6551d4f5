"""The in-context model's weights file: the model config and its weights in about a byte per
parameter (int8 matrices with per-row scales), in the library's one model file format."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import torch

from ..core.model_file import build_checked, read_model_file, write_model_file
from ..nn.pfn import PFNConfig, PFNTransformer

__all__ = [
    "DEFAULT_WEIGHTS",
    "MODEL_KEYS",
    "build_model",
    "compact_tensors",
    "model_from_tensors",
    "save_weights",
    "load_weights",
]

#: The pre-trained weights shipped with the package (see the README for how they were made).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "pretrained" / "pfn_small.tsm"
#: The config entries that define a :class:`PFNTransformer` (the fields of :class:`PFNConfig`).
MODEL_KEYS = tuple(f.name for f in fields(PFNConfig))


def build_model(model_config: dict) -> PFNTransformer:
    """A fresh :class:`PFNTransformer` from the model part of a config (other entries are ignored).

    Every :class:`PFNConfig` field must be present: a weights file states the model it holds.

    >>> build_model({"max_features": 4, "max_classes": 3, "d_model": 8, "n_heads": 2, "n_layers": 1, "d_ffn": 16,
    ...              "n_bins": 8, "step": 100}).config["d_model"]
    8
    """
    missing = [key for key in MODEL_KEYS if key not in model_config]
    if missing:
        raise ValueError(f"The model config lacks {', '.join(missing)} (it needs every field of PFNConfig).")
    return PFNTransformer(**{key: model_config[key] for key in MODEL_KEYS})


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
    model = build_checked(lambda: build_model(model_config), model_config, state, source="the in-context weights")
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


def load_weights(path: str | os.PathLike) -> tuple[PFNTransformer, dict]:
    """Load an :func:`export_weights` file (checksummed, ``weights_only``) as an fp32 model."""
    config, tensors = read_model_file(path)
    if config.get("kind") != "pfn_weights":
        raise ValueError(f"{path} is not a PFN weights file (written by export_weights).")
    return model_from_tensors(config["model"], tensors), config
