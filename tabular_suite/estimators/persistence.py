"""The one model file format: a checksummed torch payload of JSON config + tensors.

Layout: ``MAGIC`` (10 bytes) | SHA-256 of the payload (32 bytes) | payload, where the payload
is ``torch.save({"config": <json str>, "tensors": {name: tensor}})``. Loading verifies the
checksum first and then uses ``torch.load(weights_only=True)``, which cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["write_model_file", "read_model_file", "MODEL_FILE_MAGIC"]

MODEL_FILE_MAGIC = b"TABSUITE\x00\x01"


def write_model_file(path: str | os.PathLike, config: dict, tensors: dict[str, torch.Tensor | np.ndarray]) -> Path:
    """Write ``config`` (JSON-able) and ``tensors`` atomically to ``path``.

    Examples
    --------
    >>> import tempfile
    >>> path = write_model_file(tempfile.mkdtemp() + "/m.tsm", {"a": 1}, {"w": torch.ones(2)})
    >>> read_model_file(path)
    ({'a': 1}, {'w': tensor([1., 1.])})
    """
    path = Path(path)
    cpu_tensors = {
        name: (torch.from_numpy(np.ascontiguousarray(t)) if isinstance(t, np.ndarray) else t.detach().cpu().contiguous())
        for name, t in tensors.items()
    }
    buffer = io.BytesIO()
    torch.save({"config": json.dumps(config), "tensors": cpu_tensors}, buffer)
    payload = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file in the same folder, then rename: an interrupted save never
    # leaves a half-written model where a good one was.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MODEL_FILE_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and verify a file written by :func:`write_model_file`.

    Raises ``ValueError`` naming the file when it is missing, not a tabular_suite model,
    truncated or modified.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Model file not found: {path}")
    data = path.read_bytes()
    header = len(MODEL_FILE_MAGIC) + 32
    if not data.startswith(MODEL_FILE_MAGIC):
        raise ValueError(f"{path} is not a tabular_suite model file (wrong header).")
    if len(data) < header:
        raise ValueError(f"{path} is truncated: the model file is incomplete.")
    digest, payload = data[len(MODEL_FILE_MAGIC) : header], data[header:]
    if hashlib.sha256(payload).digest() != digest:
        raise ValueError(f"{path} is corrupted or was modified (checksum mismatch); re-save the model.")
    try:
        obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        return json.loads(obj["config"]), obj["tensors"]
    except Exception as exc:  # any failure here means the file is not what it claims to be
        raise ValueError(f"{path} could not be decoded as a tabular_suite model: {exc}") from None
