"""The one model file format (a checksummed torch payload of JSON config + tensors) and ``load``.

Layout: ``MAGIC`` (10 bytes) | SHA-256 of the payload (32 bytes) | payload, where the payload
is ``torch.save({"config": <json str>, "tensors": {name: tensor}})``. Loading verifies the
checksum first and then uses ``torch.load(weights_only=True)``, which cannot run code.

The config names the object it describes (``"estimator"``); each family registers a reader
for its names with :func:`register_reader`, and :func:`load` dispatches to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .._version import __version__
from .files import atomic_path
from .sklearn_glue import json_params

__all__ = [
    "write_model_file",
    "read_model_file",
    "estimator_config",
    "MODEL_FILE_MAGIC",
    "FORMAT_VERSION",
    "register_reader",
    "build_checked",
    "load",
    "rebuild",
]

MODEL_FILE_MAGIC = b"TABSUITE\x00\x01"
#: Version of the config layout this library writes and reads (``config["format_version"]``).
FORMAT_VERSION = 1

#: estimator name -> ``reader(config, tensors, *, trusted, source)`` returning the object.
_READERS: dict[str, Callable] = {}


def estimator_config(estimator, fitted: dict) -> dict:
    """The config of a fitted estimator's model file: the format and library versions, the
    estimator's class name, its parameters (JSON-able ones; see
    :func:`~tabular_suite.core.sklearn_glue.json_params`) and ``fitted``, what it learnt.

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> config = estimator_config(Ridge(alpha=2.0), {"coef": [1.0]})
    >>> config["estimator"], config["params"]["alpha"], config["fitted"]
    ('Ridge', 2.0, {'coef': [1.0]})
    """
    return {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "estimator": type(estimator).__name__,
        "params": json_params(estimator),
        "fitted": fitted,
    }


def write_model_file(path: str | os.PathLike, config: dict, tensors: dict[str, torch.Tensor | np.ndarray]) -> Path:
    """Write ``config`` (JSON-able) and ``tensors`` atomically to ``path``. In data-parallel
    training (several ranks of torch.distributed) only rank 0 writes; the others return the path.

    Examples
    --------
    >>> import tempfile
    >>> path = write_model_file(tempfile.mkdtemp() + "/m.tsm", {"a": 1}, {"w": torch.ones(2)})
    >>> read_model_file(path)
    ({'a': 1}, {'w': tensor([1., 1.])})
    """
    from .ranks import is_main_process

    path = Path(path)
    if not is_main_process():  # the ranks hold the same model: one file, from rank 0
        return path
    cpu_tensors = {
        name: (
            torch.from_numpy(np.ascontiguousarray(t)) if isinstance(t, np.ndarray) else t.detach().cpu().contiguous()
        )
        for name, t in tensors.items()
    }
    buffer = io.BytesIO()
    torch.save({"config": json.dumps(config), "tensors": cpu_tensors}, buffer)
    payload = buffer.getvalue()
    # An interrupted save never leaves a half-written model where a good one was.
    with atomic_path(path) as tmp:
        tmp.write_bytes(MODEL_FILE_MAGIC + hashlib.sha256(payload).digest() + payload)
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


def _integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _integers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _integers(v)


def build_checked(
    factory: Callable[[], torch.nn.Module], config, state: dict, source="the model file"
) -> torch.nn.Module:
    """The module ``factory()`` builds from a model file's ``config``, checked against the file's
    tensors ``state`` before any real allocation, with ``state`` loaded.

    A file whose config was edited (its checksum recomputed) could ask for a module far larger
    than the tensors it holds: every integer of ``config`` must be within a few times the
    largest stored dimension (or tensor count), then the module is built on the ``meta``
    device (no memory) and its parameter names and shapes must equal the stored ones. Only
    then is it built for real.

    Examples
    --------
    >>> state = torch.nn.Linear(3, 2).state_dict()
    >>> build_checked(lambda: torch.nn.Linear(3, 2), {"d": 3}, state).weight.shape
    torch.Size([2, 3])
    >>> build_checked(lambda: torch.nn.Linear(3, 4), {"d": 3}, state)
    Traceback (most recent call last):
    ...
    ValueError: the model file: the config does not match the tensors (weight: stored (2, 3), config gives (4, 3); ...
    >>> build_checked(lambda: torch.nn.Linear(3, 2), {"n_blocks": 10**7}, state)
    Traceback (most recent call last):
    ...
    ValueError: the model file: the config asks for a size of 10,000,000 where the tensors hold at most 3 ...
    """
    limit = max([len(state)] + [max(t.shape, default=1) for t in state.values()])
    largest = max(_integers(config), default=0)
    if largest > 4 * limit + 1024:
        raise ValueError(
            f"{source}: the config asks for a size of {largest:,} where the tensors hold at most {limit:,} "
            "(the file was edited or is damaged); refusing to build it."
        )
    with torch.device("meta"):
        planned = factory().state_dict()
    wrong = [
        f"{name}: stored {tuple(state[name].shape) if name in state else 'nothing'}, config gives {tuple(t.shape)}"
        for name, t in planned.items()
        if name not in state or tuple(state[name].shape) != tuple(t.shape)
    ] + [f"{name}: stored, config gives nothing" for name in state if name not in planned]
    if wrong:
        raise ValueError(
            f"{source}: the config does not match the tensors ({'; '.join(wrong[:3])}; {len(wrong)} in all): "
            "the file was edited or is damaged."
        )
    module = factory()
    module.load_state_dict(state)
    return module


def register_reader(name: str, reader: Callable) -> None:
    """Make :func:`load` rebuild files whose config says ``"estimator": name`` with
    ``reader(config, tensors, trusted=..., source=path)``.

    A later registration under the same name replaces the earlier one.

    Examples
    --------
    >>> register_reader("Example", lambda config, tensors, **_: config["a"])
    >>> import tempfile
    >>> load(write_model_file(tempfile.mkdtemp() + "/m.tsm", {"estimator": "Example", "a": 1}, {}))
    1
    """
    _READERS[name] = reader


def load(path, *, trusted: bool = False):
    """Load a model saved with ``est.save(path)``; it predicts on any device.

    The file is verified (checksum) and read with ``torch.load(weights_only=True)``: loading
    never runs code from the file. The one exception is a comparison's ensemble holding a
    scikit-learn model (stored pickled): it loads only with ``trusted=True``.

    Examples
    --------
    >>> import tempfile, numpy as np, tabular_suite
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> est = tabular_suite.MLPRegressor(max_epochs=2, num_threads=1).fit(X, X[:, 0])
    >>> path = tempfile.mkdtemp() + "/model.tsm"
    >>> est.save(path)
    >>> np.array_equal(tabular_suite.load(path).predict(X), est.predict(X))
    True
    """
    config, tensors = read_model_file(path)
    return rebuild(config, tensors, trusted=trusted, source=Path(path))


def rebuild(config: dict, tensors: dict, *, trusted: bool = False, source="the model"):
    """The object a model file's ``(config, tensors)`` describe, by its registered reader
    (:func:`load` without the file; ensembles rebuild their members with it)."""
    written_by = config.get("library_version", "an unknown version")
    if config.get("kind") == "pfn_weights":
        raise ValueError(
            f"{source} holds in-context model weights, not a fitted model: pass it as "
            "TabPFNClassifier(weights=...) / TabPFNRegressor(weights=...)."
        )
    version = config.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{source} was written by tabular_suite {written_by} in model-file format {version!r}; this is "
            f"tabular_suite {__version__}, which reads format {FORMAT_VERSION}: upgrade tabular_suite to load it."
        )
    name = config.get("estimator")
    reader = _READERS.get(name)
    if reader is None:
        raise ValueError(
            f"{source} holds a {name!r} (written by tabular_suite {written_by}), which this version "
            f"({__version__}) cannot read; known models: {', '.join(sorted(_READERS)) or 'none registered'}."
        )
    try:
        return reader(config, tensors, trusted=trusted, source=source)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(
            f"{source} does not describe a valid {name} (written by tabular_suite {written_by}): {exc}"
        ) from None
