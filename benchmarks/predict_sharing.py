"""compare()'s prediction: forests in a plain loop, the same rows parsed once (issue 23).

A compare() result predicts with every fold model of each ensemble member. Two changes make
that cheaper without changing a number: scikit-learn's forests sum their trees in a plain loop
on one job (8419ee6: no joblib dispatch per tree), and the models predicting the same rows
together parse the numbers, read the category keys and rename the columns once
(``predicting_together``, 2343d6e). Per table: compare() with a 30 s limit on the 80% split of
benchmarks/automl.py (seed 0, one thread), then its warm 1,000-row batch (the automl.py batch)
timed best of 5 with both changes on and, on the same fitted result, both off; whether the
predictions are identical. Fitting takes about a minute a table.

    python benchmarks/predict_sharing.py --data ../shared/data/tabular   # measure and update RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _results import machine, write_section  # noqa: E402
from automl import PRIMARY, thousand  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from suite import datasets, load  # noqa: E402

HEADER = "## compare()'s prediction: forests in a loop, the same rows parsed once (issue 23)"
TABLES = ("climate_model_crashes", "kc2", "credit_g", "qsar_biodeg", "ilpd", "phoneme", "steel_plates_faults",
          "california_housing")  # fmt: skip


def best_of(predict, batch, n: int = 5) -> tuple[float, np.ndarray]:
    out = predict(batch)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        out = predict(batch)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times), out


def measure(data: Path, name: str, time_limit: float) -> dict:
    import tabular_suite
    from tabular_suite.compare import candidates
    from tabular_suite.data import preprocess, validation

    manifest = datasets(data)
    X, y, task = load(data, manifest[manifest.name == name].iloc[0])
    X_tr, X_te, y_tr, _ = train_test_split(
        X, y, test_size=0.2, random_state=0, stratify=None if task == "regression" else y
    )
    result = tabular_suite.compare(
        X_tr, y_tr, time_limit=time_limit, metric=PRIMARY[task][0], random_state=0, num_threads=1, tracking=False
    )
    predict = result.predict if task == "regression" else result.predict_proba
    batch = thousand(X_te)
    on, out_on = best_of(predict, batch)
    once, looped = preprocess.computed_once, candidates._LoopedForest._looped
    try:  # both off: each model computes its own, the forests dispatch each tree through joblib
        preprocess.computed_once = validation.computed_once = lambda what, state, rows, compute: compute()
        candidates._LoopedForest._looped = lambda self: False
        off, out_off = best_of(predict, batch)
    finally:
        preprocess.computed_once = validation.computed_once = once
        candidates._LoopedForest._looped = looped
    members = ", ".join(sorted(result.ensemble_weights))
    return {"dataset": name, "off": off, "on": on, "same": bool(np.array_equal(out_on, out_off)), "members": members}


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--datasets", nargs="*", default=list(TABLES))
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        rows.append(measure(args.data, name, args.time_limit))
        print(rows[-1], flush=True)
    lines = [
        HEADER,
        "",
        f"Machine: {machine()}. One thread. Command: `python benchmarks/predict_sharing.py --data "
        f"../shared/data/tabular` (compare() with time_limit={args.time_limit:g} on the 80% split of automl.py, "
        "seed 0; then its warm 1,000-row batch, best of 5, on one fitted result with both changes off and on).",
        "",
        "| dataset | ms before | ms after | speed-up | same predictions | ensemble members |",
        "|---|---:|---:|---:|:---:|---|",
    ]
    for r in rows:
        same = "yes" if r["same"] else "**no**"
        lines.append(f"| {r['dataset']} | {r['off']:.1f} | {r['on']:.1f} | {r['off'] / r['on']:.2f}x | {same} | "
                     f"{r['members']} |")  # fmt: skip
    ratios = [r["off"] / r["on"] for r in rows]
    lines += ["", f"Speed-up: median {np.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x over "
              f"{len(rows)} tables; identical predictions on {sum(r['same'] for r in rows)} of {len(rows)}."]  # fmt: skip
    write_section(lines)


if __name__ == "__main__":
    main()
