"""Where compare()'s time limit goes: one fit as benchmarks/automl.py runs ours (same split, same
settings, one thread), traced model by model from its ``progress`` events.

For each model: when its first fold started and its last event came (seconds since the start),
each run fold's status (``o`` ok, ``t`` timeout, ``f`` failed; skipped folds are not shown), its leaderboard score
(out of fold) and status; then the test score of the fit, as benchmarks/automl.py scores it.
Used for benchmarks/RESULTS.md, "compare()'s budget on large tables"::

    python benchmarks/compare_trace.py --data ../shared/data/tabular --budget 60 california_housing adult

``--holdout`` (auto, none, true or a fraction) sets compare()'s ``holdout`` (RESULTS.md, "A hold-out for
large tables under a time limit"); ``--bag-sets`` its ``bag_sets`` and ``--cv`` its ``cv`` (RESULTS.md, "Repeated
bagging with the time left").
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from automl import PRIMARY, score, text_categoricals  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from suite import datasets, load  # noqa: E402


def trace(data: Path, name: str, budget: float, seed: int = 0, holdout="auto", bag_sets: int = 1, cv: int = 5) -> None:
    import torch

    import tabular_suite

    torch.set_num_threads(1)
    entry = datasets(data).set_index("name").loc[name].rename(name)
    entry["name"] = name
    X, y, task = load(data, entry)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.2, random_state=seed, stratify=None if task == "regression" else y
    )
    text = text_categoricals(entry, X)
    spans: dict[str, list] = {}

    def progress(event: dict) -> None:
        span = spans.setdefault(event["model"], [event["elapsed"], event["elapsed"], ""])
        span[1] = event["elapsed"]
        if event["event"] == "fold_end":
            span[2] += event["status"][0]

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tabular_suite.compare(
            X_tr, y_tr, time_limit=budget, metric=PRIMARY[task][0], random_state=seed, num_threads=1,
            tracking=False, categorical_features=text, progress=progress, holdout=holdout,
            bag_sets=bag_sets, cv=cv,
        )  # fmt: skip
    wall = time.perf_counter() - started
    pred = result.predict(X_te) if task == "regression" else result.predict_proba(X_te)
    test = score(task, y_te, np.asarray(pred, dtype=np.float64))["primary"]
    board = result.leaderboard.set_index("model")
    weights = {k: round(v, 3) for k, v in result.ensemble_weights.items()}
    print(
        f"{name} at {budget:g} s (holdout {result.settings['holdout']}, bag_sets {bag_sets}, cv {cv}): wall {wall:.1f} s, test {PRIMARY[task][0]} {test:.6g}, ensemble {weights}"
    )
    for model, (first, last, folds) in spans.items():
        row = board.loc[model] if model in board.index else None
        shown = "" if row is None else f"score {row['score']:.5g} {row['status']} bag_sets {row['bag_sets']}"
        print(f"  {model:24s} {first:6.1f} -> {last:6.1f} s ({last - first:5.1f}) folds {folds:6s} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", help="names in the data directory's manifest.csv")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--holdout", default="auto", help="compare()'s holdout: auto, none, true or a fraction")
    parser.add_argument("--bag-sets", type=int, default=1, help="compare()'s bag_sets (1: one k-fold split)")
    parser.add_argument("--cv", type=int, default=5, help="compare()'s cv")
    args = parser.parse_args()
    holdout = {"auto": "auto", "none": None, "true": True}.get(args.holdout.lower())
    holdout = float(args.holdout) if holdout is None and args.holdout.lower() != "none" else holdout
    for name in args.datasets:
        trace(args.data, name, args.budget, args.seed, holdout, args.bag_sets, args.cv)


if __name__ == "__main__":
    main()
