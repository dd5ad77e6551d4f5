"""One stacking layer (Wolpert, 1992; AutoGluon's multi-layer stack ensembling, Erickson et al.,
2020): level-2 models trained on the level-1 models' out-of-fold predictions, cross-validated on
the same folds, so their own out-of-fold predictions can join the greedy ensemble.

Why not the original features too (as AutoGluon's stack does): the level-1 fold models differ
by the fold each one left out, so a level-2 model that sees the features and a fold model's
prediction of them can learn that difference, which carries the labels of the rows it is
validated on. Measured on credit_g with shuffled labels (no signal at all; 5 folds): the
logistic level 2 over features + predictions scored ROC AUC 0.74 out of fold, over the
predictions alone 0.47-0.49 (tests/test_compare.py checks this stays near 0.5). AutoGluon
calls this stacked overfitting and guards against it with a hold-out run (DyStack); without
such a guard the level 2 reads the predictions only.

At prediction time the level-1 features come from the level-1 models' fold models (their mean,
as the bagged model predicts); on out-of-fold rows each fold's level-2 model reads the
predictions of the level-1 models of the same fold, which never saw those rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..data.preprocess import predicting_together
from ..data.schema import Schema
from .candidates import BASELINES, Candidate
from .ensemble import BaggedModel, _align_proba

__all__ = ["STACKERS", "StackedModel", "stack_columns", "stack_frame", "stackers"]

#: The level-2 models: fast, and different in kind (trees over the predictions and the features,
#: and a linear blend of the predictions).
STACKERS = ("lightgbm", "linear")
SUFFIX = "_l2"


def stack_columns(names: list[str], n_classes: int) -> list[tuple[str, str, int]]:
    """``(column, model, output index)`` of the level-1 features: a binary task's positive-class
    probability, every class's probability for more classes, or the value (regression)."""
    if n_classes == 0:
        return [(f"__l1_{name}", name, -1) for name in names]
    keep = [1] if n_classes == 2 else list(range(n_classes))
    return [(f"__l1_{name}_{k}", name, k) for name in names for k in keep]


def stack_frame(predictions: dict, columns, index=None) -> pd.DataFrame:
    """The level-1 feature columns (``predictions``: model -> its predictions of the rows)."""
    extra = {col: (predictions[name] if k < 0 else predictions[name][:, k]) for col, name, k in columns}
    return pd.DataFrame({c: np.asarray(v, dtype=np.float64) for c, v in extra.items()}, index=index)


def stackers(ctx, columns, names=STACKERS) -> tuple[list[Candidate], object]:
    """The level-2 candidates (named ``<model>_l2``) and the build context of their numeric
    columns."""
    kinds = {col: "numeric" for col, _, _ in columns}
    ctx2 = replace(ctx, schema=Schema.from_types(kinds), feature_types=kinds, n_unique={}, coerce_numeric=())
    out = []
    for name in names:
        builder, _ = BASELINES[name]
        out.append(Candidate(name + SUFFIX, "baseline", builder))
    return out, ctx2


class StackedModel:
    """A level-2 model over the level-1 models' predictions.

    ``base``: level-1 name -> a model predicting class probabilities over the codes
    ``0..n_classes-1`` (a fold model or a :class:`BaggedModel`) or values; ``columns``: see
    :func:`stack_columns`; ``model``: the level-2 model (a fold model or a BaggedModel).
    """

    def __init__(self, base: dict, columns, model, *, task: str, n_classes: int):
        self.base, self.columns, self.model = base, list(columns), model
        self.task, self.n_classes = task, n_classes
        self.classes_ = getattr(model, "classes_", None)

    def _features(self, X) -> pd.DataFrame:
        preds = {}
        with predicting_together():  # (the level-1 models predict the same rows)
            for name, m in self.base.items():
                if self.task == "regression":
                    preds[name] = np.asarray(m.predict(X), dtype=np.float64)
                else:
                    out = np.asarray(m.predict_proba(X), dtype=np.float64)
                    if not isinstance(m, BaggedModel):  # a fold model: columns of the codes it saw
                        out = _align_proba(out, m.classes_, np.arange(self.n_classes))
                    preds[name] = out
        return stack_frame(preds, self.columns)

    def predict_proba(self, X) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification.")
        return self.model.predict_proba(self._features(X))

    def predict(self, X) -> np.ndarray:
        return self.model.predict(self._features(X))

    def __repr__(self) -> str:
        return f"StackedModel({self.model!r} over {', '.join(self.base)})"
