"""TabPFNClassifier vs scikit-learn baselines on small classification datasets.

Suites (from ../shared/data/tabular):
- ``cc18``: every classification dataset of manifest.csv with at most 12,000 rows
  (the OpenML-CC18-style ones),
- ``pmlb``: every dataset in pmlb_small/.
Datasets over 2,000 rows are first drawn down to 2,000 (stratified, seeded), so every 50/50
split has at most 1,000 training rows. Each dataset is split with ``--seeds`` seeds; every model
sees the same split, one thread each. Reported per suite: mean ROC AUC (one-vs-one for
multiclass), mean accuracy, mean rank of the per-dataset mean AUC, and mean fit+predict seconds.
Also timed: fit + predict of a 1,000 x 100 table (1,000 test rows) with the default ensemble.

Rows are appended to benchmarks/_work/pfn.jsonl (a rerun skips what is there);
``--write`` puts the tables into RESULTS.md.

    python benchmarks/pfn.py                       # run everything missing
    python benchmarks/pfn.py --models tabpfn --weights w.tsm --tag step8000   # a checkpoint
    python benchmarks/pfn.py --write
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import append_row, machine, read_rows, write_section  # noqa: E402

from tabular_suite.compare.candidates import BASELINES, BuildContext  # noqa: E402
from tabular_suite.data.features import decide_types  # noqa: E402
from tabular_suite.data.schema import Schema  # noqa: E402
from tabular_suite.incontext.estimator import TabPFNClassifier  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tabular"
LOG = Path(__file__).resolve().parent / "_work" / "pfn.jsonl"
MAX_ROWS, MAX_SOURCE_ROWS = 2000, 12_000
SKLEARN = ("linear", "random_forest", "hist_gradient_boosting")
OPTIONAL = ("lightgbm", "xgboost", "catboost")


def suites() -> dict[str, list[tuple[str, Path, str, list[str], list[str]]]]:
    """suite -> [(name, file, target, categorical columns, columns to drop)]."""
    manifest = pd.read_csv(DATA / "manifest.csv")
    cc18 = []
    for r in manifest.itertuples():
        if r.task in ("binary", "multiclass") and r.rows <= MAX_SOURCE_ROWS:
            cats = [] if pd.isna(r.categorical_columns) else str(r.categorical_columns).split(";")
            ids = [] if pd.isna(r.id_columns) else str(r.id_columns).split(";")
            cc18.append((r.name, DATA / r.file, r.target, cats, ids))
    index = pd.read_csv(DATA / "pmlb_small" / "_index.csv")
    pmlb = [(r.name, DATA / r.file, "target", [], []) for r in index.itertuples()]
    return {"cc18": cc18, "pmlb": pmlb}


def load(file: Path, target: str, cats: list[str], drop: list[str], seed: int):
    df = pd.read_csv(file)
    df = df.drop(columns=[c for c in drop if c in df.columns])
    y = df.pop(target)
    keep = y.notna().to_numpy()
    df, y = df[keep].reset_index(drop=True), y[keep].reset_index(drop=True).astype(str).to_numpy()
    for c in cats:
        df[c] = df[c].astype("string")
    if len(df) > MAX_ROWS:
        idx, _ = train_test_split(np.arange(len(df)), train_size=MAX_ROWS, stratify=_stratifiable(y), random_state=seed)
        df, y = df.iloc[np.sort(idx)].reset_index(drop=True), y[np.sort(idx)]
    return df, y


def _stratifiable(y):
    values, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None


def make_model(name: str, X: pd.DataFrame, seed: int, args):
    if name == "tabpfn":
        return TabPFNClassifier(
            weights=args.weights,
            n_estimators=args.n_estimators,
            precision=args.precision,
            num_threads=1,
            random_state=seed,
        )
    kinds, coerced = decide_types(X)
    schema = Schema.from_types(kinds)
    n_unique = {c: int(X[c].nunique()) for c in schema.categorical}
    ctx = BuildContext("classification", schema, n_unique, kinds, tuple(coerced), seed, 1, "cpu")
    return BASELINES[name][0](ctx)


def score(model, X_tr, y_tr, X_te, y_te) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_tr, y_tr)
        proba = model.predict_proba(X_te)
    seconds = time.perf_counter() - start
    classes = model.classes_
    if len(classes) == 2:
        auc = roc_auc_score(y_te, proba[:, 1])
    else:
        # One-vs-one over the classes present in the test split (as TabPFN's evaluation).
        present = np.isin(classes, np.unique(y_te))
        p = proba[:, present]
        p = p / p.sum(1, keepdims=True).clip(min=1e-12)
        auc = (
            roc_auc_score(y_te, p, multi_class="ovo", labels=classes[present])
            if present.sum() > 2
            else roc_auc_score(y_te == classes[present][1], p[:, 1])
        )
    return {"auc": float(auc), "accuracy": float(accuracy_score(y_te, classes[proba.argmax(1)])), "seconds": seconds}


def run(args) -> None:
    done = {(r["suite"], r["dataset"], r["seed"], r["model"]) for r in read_rows(LOG) if "dataset" in r}
    models = args.models or ["tabpfn", *SKLEARN, *[m for m in OPTIONAL if _installed(m)]]
    for suite, entries in suites().items():
        if args.suites and suite not in args.suites:
            continue
        for name, file, target, cats, drop in entries:
            if args.datasets and name not in args.datasets:
                continue
            for seed in range(args.seeds):
                todo = [m for m in models if (suite, name, seed, _label(m, args)) not in done]
                if not todo:
                    continue
                X, y = load(file, target, cats, drop, seed)
                X_tr, X_te, y_tr, y_te = train_test_split(
                    X, y, test_size=0.5, stratify=_stratifiable(y), random_state=seed
                )
                if len(np.unique(y_tr)) < 2:
                    continue
                for m in todo:
                    torch.manual_seed(seed)
                    try:
                        figures = score(make_model(m, X_tr, seed, args), X_tr, y_tr, X_te, y_te)
                    except Exception as exc:  # recorded, so a broken model shows up in the table
                        figures = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    append_row(
                        LOG,
                        {
                            "suite": suite,
                            "dataset": name,
                            "seed": seed,
                            "model": _label(m, args),
                            "rows": len(y),
                            "features": X.shape[1],
                            "classes": len(np.unique(y)),
                            **figures,
                        },
                    )
    if not args.models or "tabpfn" in args.models:
        timing(args)


def _label(model: str, args) -> str:
    return f"tabpfn[{args.tag}]" if model == "tabpfn" and args.tag else model


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def timing(args) -> None:
    """Fit + predict of a 1,000 x 100 table with 1,000 test rows, one thread (best of 3)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 100)).astype(np.float32)
    y = (X[:, :10].sum(1) + rng.normal(size=2000) > 0).astype(int)
    clf = TabPFNClassifier(
        weights=args.weights, n_estimators=args.n_estimators, precision=args.precision, num_threads=1, random_state=0
    )
    clf.fit(X[:1000], y[:1000]).predict_proba(X[1000:])  # loads the weights once
    times = []
    for _ in range(3):
        start = time.perf_counter()
        clf.fit(X[:1000], y[:1000]).predict_proba(X[1000:])
        times.append(time.perf_counter() - start)
    append_row(
        LOG,
        {
            "timing": "1000x100",
            "model": _label("tabpfn", args),
            "precision": args.precision,
            "n_estimators": args.n_estimators,
            "seconds": min(times),
            "machine": machine(),
        },
    )


def write(args) -> None:
    rows = [r for r in read_rows(LOG) if "dataset" in r and "error" not in r]
    df = pd.DataFrame(rows)
    lines = [
        "## TabPFNClassifier vs scikit-learn on small classification datasets",
        "",
        f"Machine: {machine()}; one thread per model. Command: `python benchmarks/pfn.py` "
        f"(then `--write`); rows in benchmarks/_work/pfn.jsonl. 50/50 splits (datasets over "
        f"{MAX_ROWS:,} rows drawn down to {MAX_ROWS:,} first, so at most 1,000 training rows), "
        f"seeds 0..{df.seed.max()}. AUC: ROC AUC, one-vs-one for multiclass. Rank: mean rank of the "
        "per-dataset mean AUC (1 = best). Seconds: fit + predict per split.",
        "",
    ]
    tagged = df[df.model.str.startswith("tabpfn[")]
    df = df[~df.model.str.startswith("tabpfn[")]
    for suite in ("cc18", "pmlb"):
        part = df[df.suite == suite]
        if part.empty:
            continue
        # Only datasets/seeds every listed model finished, so the means compare like with like.
        models = sorted(part.model.unique())
        complete = part.groupby(["dataset", "seed"]).model.nunique() == len(models)
        part = part.set_index(["dataset", "seed"]).loc[complete[complete].index].reset_index()
        per_dataset = part.groupby(["dataset", "model"])[["auc", "accuracy", "seconds"]].mean().reset_index()
        ranks = per_dataset.pivot(index="dataset", columns="model", values="auc").rank(axis=1, ascending=False).mean()
        summary = per_dataset.groupby("model")[["auc", "accuracy", "seconds"]].mean()
        summary["rank"] = ranks
        lines += [
            f"### {suite}: {part.dataset.nunique()} datasets x {part.seed.nunique()} seeds",
            "",
            "| model | mean AUC | mean accuracy | mean rank | fit+predict s |",
            "|---|---|---|---|---|",
        ]
        for model, r in summary.sort_values("auc", ascending=False).iterrows():
            lines.append(f"| {model} | {r.auc:.4f} | {r.accuracy:.4f} | {r['rank']:.2f} | {r.seconds:.3f} |")
        lines.append("")
    for tag, rows in tagged.groupby("model"):
        both = rows.merge(df[df.model == "tabpfn"], on=["suite", "dataset", "seed"], suffixes=("", "_default"))
        if len(both):
            lines += [
                f"{tag} on the same {len(both)} splits: mean AUC {both.auc.mean():.4f} vs {both.auc_default.mean():.4f} "
                f"(default), largest difference {(both.auc - both.auc_default).abs().max():.4f}.",
                "",
            ]
    timings = [r for r in read_rows(LOG) if r.get("timing") == "1000x100"]
    if timings:
        lines += [
            "### Fit + predict of a 1,000 x 100 table (1,000 test rows), one thread, best of 3",
            "",
            "| model | precision | n_estimators | seconds |",
            "|---|---|---|---|",
        ]
        latest = {}
        for r in timings:
            latest[(r["model"], r["precision"], r["n_estimators"])] = r
        for (model, precision, n), r in sorted(latest.items()):
            lines.append(f"| {model} | {precision} | {n} | {r['seconds']:.3f} |")
        lines.append("")
    write_section(lines)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", nargs="*", choices=("cc18", "pmlb"))
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--models", nargs="*", help="tabpfn and/or baselines (default: all available)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--weights", default=None, help="PFN weights file (default: the shipped ones)")
    parser.add_argument("--tag", default="", help="label for tabpfn rows (e.g. a checkpoint)")
    parser.add_argument("--n-estimators", type=lambda v: v if v == "auto" else int(v), default="auto")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.write:
        write(args)
    else:
        run(args)


if __name__ == "__main__":
    # As the CLI does: this process trains, so it opts in to the settled heap (the library never
    # changes the allocator by itself); peers run in their own processes with glibc's defaults.
    from tabular_suite.training.device import settle_heap

    settle_heap()
    main()
