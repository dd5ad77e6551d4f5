"""Evaluating the in-context model on real tables while it pre-trains."""

from __future__ import annotations

import numpy as np

from ..nn.pfn import PFNTransformer
from .estimator import TabPFNClassifier

__all__ = ["real_data_callback"]


def real_data_callback(
    tables, *, max_train_rows: int = 500, n_estimators: int = 1, seed: int = 0, num_threads: int | None = None
):
    """A :func:`pretrain` callback: ROC AUC of the model in training on real tables.

    ``tables`` is a list of ``(name, X, y)`` classification tables; each is split 50/50
    (stratified, at most ``max_train_rows`` context rows) and scored with
    :class:`~tabular_suite.incontext.estimator.TabPFNClassifier` using the in-memory model.
    Returns ``real_auc_mean`` and ``auc_<name>`` per table. ``num_threads``: see the estimator.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

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
            clf = TabPFNClassifier(
                weights=model,
                n_estimators=n_estimators,
                random_state=seed,
                num_threads=num_threads,
                device=str(next(model.parameters()).device),
            )
            proba = clf.fit(X_tr, y_tr).predict_proba(X_te)
            if len(clf.classes_) == 2:
                out[f"auc_{name}"] = float(roc_auc_score(y_te, proba[:, 1]))
            else:
                out[f"auc_{name}"] = float(roc_auc_score(y_te, proba, multi_class="ovo", labels=clf.classes_))
        out["real_auc_mean"] = float(np.mean(list(out.values())))
        return out

    return callback
