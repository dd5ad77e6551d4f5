"""One gradient-boosted-tree fit with the library's defaults, for benchmarks/suite.py.

Runs in the environment that has the library: HistGradientBoosting in ours (scikit-learn),
LightGBM and CatBoost in ``../peers/gbdt``. Reads the train and test tables (Parquet, the target in
the column ``__target__``, classes already coded 0..C-1), fits on one thread and writes the
predictions (class probabilities, or values) to ``--out`` (.npy); prints one JSON line with the fit
and predict seconds.

Categorical (text) columns are given to each library the way its documentation recommends:
pandas ``category`` dtype for HistGradientBoosting (``categorical_features="from_dtype"``; columns
with more than 255 levels, HGB's limit, enter as integer codes) and LightGBM, strings named in
``cat_features`` for CatBoost. Test categories unseen in training become missing.
"""

import argparse
import json
import os
import time

os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def prepare(train: pd.DataFrame, test: pd.DataFrame, model: str):
    cats = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
    train, test = train.copy(), test.copy()
    for c in cats:
        levels = pd.Index(train[c].dropna().astype(str).unique()).sort_values()
        if model == "catboost":
            train[c] = train[c].astype(str).where(train[c].notna(), "__missing__")
            test[c] = test[c].astype(str).where(test[c].notna(), "__missing__")
            continue
        for df in (train, test):
            df[c] = pd.Categorical(df[c].astype(str).where(df[c].notna()), categories=levels)
            if model == "hgb" and len(levels) > 255:
                df[c] = df[c].cat.codes.replace(-1, np.nan).astype(float)
    return train, test, cats


def make(model: str, task: str, seed: int, cats: list[str]):
    classify = task != "regression"
    if model == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return cls(categorical_features="from_dtype", random_state=seed), {}
    if model == "lightgbm":
        import lightgbm

        cls = lightgbm.LGBMClassifier if classify else lightgbm.LGBMRegressor
        return cls(random_state=seed, n_jobs=1, verbose=-1), {}
    if model == "catboost":
        import catboost

        cls = catboost.CatBoostClassifier if classify else catboost.CatBoostRegressor
        return cls(random_seed=seed, thread_count=1, verbose=False, cat_features=cats, allow_writing_files=False), {}
    raise ValueError(f"unknown model {model!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, choices=["hgb", "lightgbm", "catboost"])
    parser.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    train, test = pd.read_parquet(args.train), pd.read_parquet(args.test)
    y = train.pop("__target__").to_numpy()
    test = test.drop(columns="__target__", errors="ignore")
    if args.model == "lightgbm":  # LightGBM rejects JSON characters ("[", ",", ...) in feature names
        train.columns = test.columns = [f"f{i}" for i in range(train.shape[1])]
    train, test, cats = prepare(train, test, args.model)
    est, fit_kw = make(args.model, args.task, args.seed, cats)
    start = time.perf_counter()
    est.fit(train, y, **fit_kw)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = est.predict_proba(test) if args.task != "regression" else est.predict(test)
    predict_s = time.perf_counter() - start
    np.save(args.out, np.asarray(pred, dtype=np.float64))
    print(json.dumps({"fit_s": fit_s, "predict_s": predict_s}))


if __name__ == "__main__":
    main()
