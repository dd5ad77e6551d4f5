"""Model registry: name -> estimator classes, so the CLI and comparisons need no per-model code."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelSpec", "register_model", "list_models", "get_model", "make_estimator", "estimator_class"]

_TASK_ALIASES = {
    "classification": "classification", "classifier": "classification", "binary": "classification",
    "multiclass": "classification", "regression": "regression", "regressor": "regression",
}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, a one-line description and an estimator class per task."""

    name: str
    description: str
    classifier: type | None = None
    regressor: type | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t, c in (("classification", self.classifier), ("regression", self.regressor)) if c)


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, description: str, *, classifier: type | None = None, regressor: type | None = None) -> ModelSpec:
    """Make a model available to :func:`make_estimator`, the CLI and comparisons.

    Registering the same classes under the same name again is a no-op (module reloads);
    a different model under a taken name is an error.

    Examples
    --------
    >>> from tabular_suite.estimators.tabular import MLPClassifier, MLPRegressor
    >>> register_model("mlp", "Multilayer perceptron", classifier=MLPClassifier, regressor=MLPRegressor).tasks
    ('classification', 'regression')
    """
    key = name.lower()
    if key in _REGISTRY:
        existing = _REGISTRY[key]
        if (existing.classifier, existing.regressor) == (classifier, regressor):
            return existing
        raise ValueError(f"A model named {name!r} is already registered.")
    _REGISTRY[key] = spec = ModelSpec(key, description, classifier, regressor)
    return spec


def list_models(task: str | None = None) -> list[str]:
    """Names of the registered models, optionally only those supporting ``task``.

    Examples
    --------
    >>> import tabular_suite
    >>> tabular_suite.list_models()
    ['autoint', 'excelformer', 'finalmlp', 'ft_transformer', 'mlp', 'resnet']
    """
    task = None if task is None else _normalise_task(task)
    return sorted(n for n, s in _REGISTRY.items() if task is None or task in s.tasks)


def get_model(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name`` (case-insensitive)."""
    spec = _REGISTRY.get(str(name).lower())
    if spec is None:
        raise ValueError(f"Unknown model {name!r}; available models: {', '.join(list_models())}.")
    return spec


def _normalise_task(task: str) -> str:
    if task not in _TASK_ALIASES:
        raise ValueError(f"Unknown task {task!r}; use 'classification' or 'regression'.")
    return _TASK_ALIASES[task]


def make_estimator(name: str, task: str = "classification", **params):
    """A new, unfitted estimator for model ``name`` and ``task`` with ``params``.

    Examples
    --------
    >>> import tabular_suite
    >>> tabular_suite.make_estimator("mlp", "regression", max_epochs=5)
    MLPRegressor(max_epochs=5)
    """
    spec = get_model(name)
    task = _normalise_task(task)
    cls = spec.classifier if task == "classification" else spec.regressor
    if cls is None:
        raise ValueError(f"Model {name!r} does not support {task}; it supports: {', '.join(spec.tasks)}.")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"Invalid parameter for {cls.__name__}: {exc}") from None


def estimator_class(class_name: str) -> type:
    """The registered estimator class called ``class_name`` (used when loading saved models)."""
    from . import incontext

    for spec in _REGISTRY.values():
        for cls in (spec.classifier, spec.regressor):
            if cls is not None and cls.__name__ == class_name:
                return cls
    if class_name in ("TabPFNClassifier", "TabPFNRegressor"):  # in-context: not trained, not registered
        return getattr(incontext, class_name)
    raise ValueError(f"Unknown estimator class {class_name!r} in model file.")
