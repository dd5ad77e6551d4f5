"""Bidirectional learning (Pontes-Filho & Liwicki 2018) against plain training of the same MLP
classifier: clean accuracy, accuracy under white noise and confidence on pure noise.

For each dataset and seed, one stratified 64/16/20 split (train / validation for early stopping /
test); ``MLPClassifier`` with its defaults is fitted twice on it, with ``bidirectional=False`` and
``True`` (same seed, same thread count: 1). Measured on the test rows:

* clean accuracy;
* accuracy under additive Gaussian white noise on the numeric features, ``sigma`` in units of
  each feature's training standard deviation (0.1, 0.25, 0.5, 1.0);
* the mean top-class probability on pure-noise rows (every numeric feature drawn from a normal
  with its training mean and standard deviation) next to the same on the test rows: lower on noise
  is the paper's "white noise static" robustness (its ratio ``max on noise / max on test`` too).

Each finished (dataset, seed, method) is appended to ``benchmarks/_work/bidirectional.jsonl``, so an
interrupted run resumes; ``--write`` renders the rows into ``benchmarks/RESULTS.md``.

    python benchmarks/bidirectional_noise.py --data ../shared/data/tabular          # run / resume
    python benchmarks/bidirectional_noise.py --data ../shared/data/tabular --write  # update RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _results import append_row, machine, read_rows, write_section  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import tabular_suite  # noqa: E402

HERE = Path(__file__).resolve().parent
LOG = HERE / "_work" / "bidirectional.jsonl"
# Classification tables whose features are all numeric (white noise is defined on them).
DATASETS = {
    "phoneme": "Class",
    "vehicle": "Class",
    "steel_plates_faults": "fault",
    "wdbc": "diagnosis",
    "qsar_biodeg": "experimental class",
}
SEEDS = range(5)
SIGMAS = (0.1, 0.25, 0.5, 1.0)


def split(data_dir: Path, name: str, seed: int):
    df = pd.read_csv(data_dir / f"{name}.csv")
    y = df.pop(DATASETS[name]).to_numpy()
    X = df.astype(np.float64)
    X_tmp, X_te, y_tmp, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(X_tmp, y_tmp, test_size=0.2, random_state=seed, stratify=y_tmp)
    return X_tr, y_tr, X_va, y_va, X_te, y_te


def measure(data_dir: Path, name: str, seed: int, bidirectional: bool) -> dict:
    X_tr, y_tr, X_va, y_va, X_te, y_te = split(data_dir, name, seed)
    clf = tabular_suite.MLPClassifier(bidirectional=bidirectional, random_state=seed, num_threads=1)
    started = time.perf_counter()
    clf.fit(X_tr, y_tr, eval_set=(X_va, y_va))
    fit_s = time.perf_counter() - started
    mean, std = X_tr.mean().to_numpy(), X_tr.std().to_numpy() + 1e-12
    rng = np.random.default_rng(1000 + seed)
    row = {
        "dataset": name,
        "seed": seed,
        "bidirectional": bidirectional,
        "epochs": len(clf.history_),
        "fit_s": round(fit_s, 2),
        "clean": float(clf.score(X_te, y_te)),
    }
    for sigma in SIGMAS:
        noisy = X_te + rng.normal(size=X_te.shape) * std * sigma
        row[f"noise_{sigma}"] = float(clf.score(noisy, y_te))
    pure = pd.DataFrame(rng.normal(size=(len(X_te), X_te.shape[1])) * std + mean, columns=X_te.columns)
    conf_test, conf_noise = clf.predict_proba(X_te).max(1), clf.predict_proba(pure).max(1)
    row.update(
        conf_test=float(conf_test.mean()),
        conf_noise=float(conf_noise.mean()),
        static_rate=float(conf_noise.max() / conf_test.max()),
    )
    return row


def write(rows: list[dict]) -> None:
    df = pd.DataFrame(rows)
    metrics = ["clean", *(f"noise_{s}" for s in SIGMAS), "conf_test", "conf_noise"]
    lines = [
        "## Bidirectional learning vs plain training (issue 24)",
        "",
        f"Machine: {machine()}; 1 thread. `MLPClassifier` defaults (3 x 256, ReLU, dropout 0.1, AdamW 1e-3) "
        "with `bidirectional=False` / `True` on the same splits and seeds; mean over "
        f"{df.seed.nunique()} seeds (stratified 64/16/20 split per seed, early stopping on the validation rows). "
        "`noise s`: test accuracy with Gaussian noise of s training standard deviations added to every feature; "
        "`conf`: mean top-class probability on the test rows and on pure-noise rows (each feature drawn from "
        "a normal with its training mean and std).",
        "",
        "| dataset | method | clean | " + " | ".join(f"noise {s}" for s in SIGMAS) + " | conf test | conf noise "
        "| epochs | fit s |",
        "|---|---|" + "---:|" * (len(metrics) + 2),
    ]
    for (name, bidi), g in df.groupby(["dataset", "bidirectional"], sort=True):
        cells = [f"{g[m].mean():.4f}" for m in metrics]
        lines.append(
            f"| {name} | {'bidirectional' if bidi else 'plain'} | "
            + " | ".join(cells)
            + f" | {g.epochs.mean():.0f} | {g.fit_s.mean():.1f} |"
        )
    wins = {m: 0 for m in metrics}
    n = 0
    for (_name, _seed), g in df.groupby(["dataset", "seed"]):
        if len(g) < 2:
            continue
        plain, bidi = g[~g.bidirectional].iloc[0], g[g.bidirectional].iloc[0]
        n += 1
        for m in metrics:
            wins[m] += int(bidi[m] > plain[m])
    means = df.groupby(["dataset", "bidirectional"])[metrics].mean()
    diff = (means.xs(True, level="bidirectional") - means.xs(False, level="bidirectional")).mean()
    lines += [
        "",
        f"Runs (dataset x seed) where bidirectional is higher, of {n}: "
        + ", ".join(f"{m} {wins[m]}" for m in metrics)
        + " (higher is better for accuracies; lower is better for `conf noise`).",
        "",
        "Mean difference bidirectional - plain over the datasets: "
        + ", ".join(f"{m} {diff[m]:+.4f}" for m in metrics)
        + ".",
        "",
        "    python benchmarks/bidirectional_noise.py --data ../shared/data/tabular          # run / resume",
        "    python benchmarks/bidirectional_noise.py --data ../shared/data/tabular --write  # this table",
    ]
    write_section(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument("--write", action="store_true", help="Render the measured rows into RESULTS.md.")
    args = parser.parse_args()
    rows = read_rows(LOG)
    if args.write:
        write(rows)
        return
    done = {(r["dataset"], r["seed"], r["bidirectional"]) for r in rows}
    for seed in SEEDS:
        for name in DATASETS:
            for bidirectional in (False, True):
                if (name, seed, bidirectional) not in done:
                    append_row(LOG, measure(args.data, name, seed, bidirectional))


if __name__ == "__main__":
    main()
