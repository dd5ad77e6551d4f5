"""What repeated bagging's further splits are worth inside compare()'s ensemble (issue 23).

Fits ``compare(bag_sets=20)`` on one table as benchmarks/automl.py does (seed-0 80/20 split, one
thread, the primary metric, ``time_limit``), then, for each member of the selected ensemble that
was fitted on several k-fold splits: its out-of-fold loss from all its splits and from the first
only, and the ensemble's out-of-fold loss with that member's predictions replaced by its first
split's (what predicting with only its first 5 fold models would score). Also prints the warm
1,000-row prediction time of the saved model and each member's share of it (compare()'s estimate).
The loss is one minus ROC AUC (binary), log loss (multiclass) or RMSE (regression)::

    python benchmarks/split_trim.py --data ../shared/data/tabular kc2 --budget 300
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from automl import PRIMARY, text_categoricals, thousand  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from suite import datasets, load  # noqa: E402

import tabular_suite  # noqa: E402
from tabular_suite.compare.ensemble import _align_proba, _loss  # noqa: E402


def first_split(result, name: str) -> np.ndarray:
    """``name``'s out-of-fold predictions from its first split's fold models alone."""
    df, _, folds, _ = result._data
    oof = result.oof_predictions[name]
    pred = np.zeros_like(oof)
    for model, (_, rows) in zip(result.fold_models[name][: len(folds)], folds):
        if result.task == "classification":
            codes = np.arange(oof.shape[1])
            pred[rows] = _align_proba(np.asarray(model.predict_proba(df.iloc[rows]), np.float64), model.classes_, codes)
        else:
            pred[rows] = model.predict(df.iloc[rows])
    return pred


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument("dataset")
    parser.add_argument("--budget", type=float, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    entry = next(e for e in datasets(args.data).itertuples() if e.name == args.dataset)
    X, y, task = load(args.data, entry)
    stratify = None if task == "regression" else y
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=stratify)
    result = tabular_suite.compare(
        X_tr, y_tr, time_limit=args.budget, metric=PRIMARY[task][0], random_state=0, num_threads=1, tracking=False,
        categorical_features=text_categoricals(entry, X), bag_sets=20,
    )  # fmt: skip
    method = "predict" if task == "regression" else "predict_proba"
    batch = thousand(X_te)
    getattr(result.best_model_, method)(batch)
    start = time.perf_counter()
    getattr(result.best_model_, method)(batch)
    print(f"{args.dataset} at {args.budget:g} s: 1,000 rows in {1e3 * (time.perf_counter() - start):.0f} ms")
    board = result.leaderboard.set_index("model")
    metric, target, oof = result.metric, result.oof_target, result.oof_predictions
    weights = result.ensemble_weights
    blend = sum(w * oof[n] for n, w in weights.items())
    print(f"ensemble out-of-fold loss {_loss(metric, target, blend):.5f}")
    for name, weight in sorted(weights.items(), key=lambda kv: -kv[1]):
        splits = int(board.loc[name, "bag_sets"])
        line = (f"{name}: weight {weight:.3f}, {splits} splits, {1e6 * board.loc[name, 'predict_seconds_per_row']:.0f} ms "
                f"per 1,000 rows; loss {_loss(metric, target, oof[name]):.5f}")  # fmt: skip
        if splits > 1 and name in result.fold_models:
            one = first_split(result, name)
            trimmed = blend + weight * (one - oof[name])
            line += (
                f", first split {_loss(metric, target, one):.5f}; ensemble with it {_loss(metric, target, trimmed):.5f}"
            )
        print(line)


if __name__ == "__main__":
    main()
