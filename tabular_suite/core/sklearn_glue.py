"""What every estimator family shares with scikit-learn: tags, seeds, thread counts, params as JSON."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["table_tags", "derive_seed", "resolve_num_threads", "json_params", "module_on_cpu"]


def table_tags(tags):
    """sklearn tags of an estimator that takes raw tables: NaN, categorical and string columns."""
    tags.input_tags.allow_nan = True
    tags.input_tags.categorical = True
    tags.input_tags.string = True
    tags.non_deterministic = False
    return tags


def derive_seed(random_state) -> int:
    """The one seed a fit draws from ``random_state`` (int, RandomState or None), as sklearn does.

    Everything random in a fit (initialisation, splits, shuffling, dropout) derives from it,
    so two fits with the same integer ``random_state`` are identical.

    Examples
    --------
    >>> derive_seed(0) == derive_seed(0)
    True
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


def resolve_num_threads(num_threads: int | None = None) -> int:
    """The CPU threads a call uses: ``num_threads``, or the default when it is None.

    The default is ``TABULAR_SUITE_NUM_THREADS`` when set, otherwise all cores but one
    (capped at 16): on small machines an oversubscribed torch thread pool can slow
    small-batch training down by an order of magnitude. The result is passed down to what
    runs the work; nothing reads torch's global setting back.

    Examples
    --------
    >>> resolve_num_threads(2)
    2
    """
    if num_threads is not None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
            raise ValueError(f"num_threads must be an integer >= 1 or None, got {num_threads!r}.")
        return int(num_threads)
    env = os.environ.get("TABULAR_SUITE_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"TABULAR_SUITE_NUM_THREADS must be an integer, got {env!r}.") from None
    return max(1, min(_available_cpus() - 1, 16))


def json_params(estimator) -> dict:
    """``get_params()`` for a model file: values JSON cannot hold (callbacks, RandomState) become None."""
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        try:
            json.dumps(value)
            params[name] = value
        except TypeError:
            params[name] = None
    return params


def module_on_cpu(state: dict) -> dict:
    """A pickled estimator's state with ``module_`` on the CPU (pickles load without a GPU)."""
    module = state.get("module_")
    if module is not None and any(p.device.type != "cpu" for p in module.parameters()):
        state["module_"] = copy.deepcopy(module).cpu()
    return state
