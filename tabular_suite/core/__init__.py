"""The core every layer above builds on; it imports nothing above it.

- :mod:`.model_file`: the one checksummed file format, and :func:`load` with a reader per model,
- :mod:`.registry`: model names -> estimator classes,
- :mod:`.sklearn_glue`: tags, seeds, thread counts and parameters shared by every estimator.
"""

from .model_file import load, read_model_file, register_reader, write_model_file
from .registry import ModelSpec, get_model, list_models, make_estimator, register_model
from .sklearn_glue import derive_seed, json_params, resolve_num_threads, table_tags

__all__ = [
    "load",
    "read_model_file",
    "write_model_file",
    "register_reader",
    "ModelSpec",
    "get_model",
    "list_models",
    "make_estimator",
    "register_model",
    "derive_seed",
    "json_params",
    "resolve_num_threads",
    "table_tags",
]
