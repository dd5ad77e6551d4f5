"""One AutoGluon-Tabular fit for benchmarks/automl.py, in AutoGluon's own environment.

Reads the train and test tables (Parquet, target in ``__target__``), fits a ``TabularPredictor``
with the given preset and time limit on one CPU, writes the test predictions (class
probabilities, or values) to ``--out`` (.npy) and prints one JSON line: fit and predict seconds,
the models it trained and the best one.
"""

import argparse
import json
import os
import tempfile
import time

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--metric", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from autogluon.tabular import TabularPredictor

    train, test = pd.read_parquet(args.train), pd.read_parquet(args.test).drop(columns="__target__", errors="ignore")
    with tempfile.TemporaryDirectory() as path:
        predictor = TabularPredictor(
            label="__target__", problem_type=args.task, eval_metric=args.metric, path=path, verbosity=0
        )
        start = time.perf_counter()
        predictor.fit(
            train,
            presets=args.preset,
            time_limit=args.time_limit,
            num_cpus=1,
            num_gpus=0,
            ag_args_fit={"num_cpus": 1, "num_gpus": 0},
        )  # fmt: skip (AutoGluon seeds its models itself; --seed picks only the split)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        if args.task == "regression":
            pred = predictor.predict(test).to_numpy(np.float64)
        else:
            proba = predictor.predict_proba(test)
            # Classes are the codes 0..C-1 (a class AutoGluon dropped as too rare: probability 0).
            codes = range(int(train["__target__"].max()) + 1)
            pred = proba.reindex(columns=codes, fill_value=0.0).to_numpy(np.float64)
        predict_s = time.perf_counter() - start
        # A warm batch of 1,000 rows (the test rows, drawn with replacement when fewer): the
        # prediction cost per 1,000 rows, without the first call's loading. The models are
        # persisted in memory first (AutoGluon's own inference times assume it; unpersisted, each
        # call loads them from disk): ours predict from memory too.
        persisted = predictor.persist()
        batch = test.sample(n=1000, replace=len(test) < 1000, random_state=0)
        start = time.perf_counter()
        predictor.predict(batch) if args.task == "regression" else predictor.predict_proba(batch)
        batch_s = time.perf_counter() - start
        board = predictor.leaderboard(silent=True)
        np.save(args.out, pred)
        print(json.dumps({"fit_s": fit_s, "predict_s": predict_s, "batch_s": batch_s, "models": len(board),
                          "best": str(predictor.model_best), "persisted": len(persisted)}))  # fmt: skip


if __name__ == "__main__":
    main()
