"""Model registry: name -> estimator classes. Every list of models (``list_models()``, the CLI,
comparison presets, the README, the tests) is read from here."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model_file import register_reader

__all__ = ["ModelSpec", "TASKS", "register_model", "list_models", "model_specs", "get_model", "make_estimator"]

#: The tasks a model can be registered for.
TASKS = ("classification", "regression", "recommendation")

_TASK_ALIASES = {
    "classification": "classification",
    "classifier": "classification",
    "binary": "classification",
    "multiclass": "classification",
    "regression": "regression",
    "regressor": "regression",
    "recommendation": "recommendation",
    "recommender": "recommendation",
}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    Attributes
    ----------
    name, description : str
    classifier, regressor, recommender : type or None
        The estimator class for each task the model supports.
    family : {"tabular", "in-context", "recommendation"}
        Tabular models are trained by the engine (epochs, early stopping); in-context models
        are pre-trained and only store their context; recommenders learn from interaction logs.
    presets : tuple of str
        The :func:`tabular_suite.compare` presets that include the model.
    fast_params : dict
        Settings the "fast" preset gives the model (smaller, fewer epochs).
    """

    name: str
    description: str
    classifier: type | None = None
    regressor: type | None = None
    recommender: type | None = None
    family: str = "tabular"
    presets: tuple = ()
    fast_params: dict = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        classes = (self.classifier, self.regressor, self.recommender)
        return tuple(task for task, cls in zip(TASKS, classes) if cls is not None)

    def estimator_class(self, task: str) -> type:
        """The class for ``task``; a ValueError names the supported tasks otherwise."""
        task = _normalise_task(task)
        cls = dict(zip(TASKS, (self.classifier, self.regressor, self.recommender)))[task]
        if cls is None:
            raise ValueError(f"Model {self.name!r} does not support {task}; it supports: {', '.join(self.tasks)}.")
        return cls


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    description: str,
    *,
    classifier: type | None = None,
    regressor: type | None = None,
    recommender: type | None = None,
    family: str = "tabular",
    presets=(),
    fast_params: dict | None = None,
) -> ModelSpec:
    """Make a model available to :func:`make_estimator`, :func:`tabular_suite.load`, the CLI
    and comparisons (see :class:`ModelSpec` for the arguments).

    Each class must provide ``_from_state(config, tensors)`` (the reader of its saved files).
    Registering the same classes under the same name again is a no-op (module reloads);
    a different model under a taken name is an error.

    Examples
    --------
    >>> from tabular_suite.tabular.models import MLPClassifier, MLPRegressor
    >>> register_model("mlp", "Multilayer perceptron", classifier=MLPClassifier, regressor=MLPRegressor).tasks
    ('classification', 'regression')
    """
    key = name.lower()
    spec = ModelSpec(
        key, description, classifier, regressor, recommender, family, tuple(presets), dict(fast_params or {})
    )
    if not spec.tasks:
        raise ValueError(f"Register at least one estimator class for model {name!r}.")
    existing = _REGISTRY.get(key)
    if existing is not None:
        if (existing.classifier, existing.regressor, existing.recommender) == (classifier, regressor, recommender):
            return existing
        raise ValueError(f"A model named {name!r} is already registered.")
    _REGISTRY[key] = spec
    for cls in (classifier, regressor, recommender):
        if cls is not None:
            register_reader(cls.__name__, _reader(cls))
    return spec


def _reader(cls):
    def read(config, tensors, **_):
        return cls._from_state(config, tensors)

    return read


def list_models(task: str | None = None, *, family: str | None = None) -> list[str]:
    """Names of the registered models, optionally only those supporting ``task`` or of ``family``.

    Examples
    --------
    >>> import tabular_suite
    >>> tabular_suite.list_models()
    ['activator', 'autoint', 'excelformer', 'finalmlp', 'ft_transformer', 'hourglass_mlp', 'kan', 'mlp', 'resnet',
     'sasrec', 'tabm', 'tabpfn']
    >>> tabular_suite.list_models("recommendation")
    ['sasrec']
    """
    task = None if task is None else _normalise_task(task)
    return sorted(
        n for n, s in _REGISTRY.items() if (task is None or task in s.tasks) and (family is None or s.family == family)
    )


def model_specs() -> list[ModelSpec]:
    """Every registered :class:`ModelSpec`, in the order of registration."""
    return list(_REGISTRY.values())


def get_model(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name`` (case-insensitive)."""
    spec = _REGISTRY.get(str(name).lower())
    if spec is None:
        raise ValueError(f"Unknown model {name!r}; available models: {', '.join(list_models())}.")
    return spec


def _normalise_task(task: str) -> str:
    if task not in _TASK_ALIASES:
        raise ValueError(f"Unknown task {task!r}; use one of {', '.join(TASKS)}.")
    return _TASK_ALIASES[task]


def make_estimator(name: str, task: str = "classification", **params):
    """A new, unfitted estimator for model ``name`` and ``task`` with ``params``.

    Examples
    --------
    >>> import tabular_suite
    >>> tabular_suite.make_estimator("mlp", "regression", max_epochs=5)
    MLPRegressor(max_epochs=5)
    >>> tabular_suite.make_estimator("mlp", max_epoch=5)
    Traceback (most recent call last):
    ...
    ValueError: MLPClassifier has no parameter 'max_epoch' (did you mean 'max_epochs'?). ...
    """
    import difflib
    import inspect

    cls = get_model(name).estimator_class(task)
    known = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"{cls.__name__} has no parameter {key!r}{hint}. Its parameters: {', '.join(sorted(known))}."
            )
    return cls(**params)
