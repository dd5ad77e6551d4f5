"""The sure-bet benchmark (issue 24): every registered tabular model with its defaults next to
HistGradientBoosting, LightGBM and CatBoost defaults, on the datasets of ../shared/data/tabular.

Protocol. For each dataset and seed (0, 1, 2): one split, 80% to fit and 20% to test (stratified for
classification); identifier columns named in the manifest are dropped, rows without a target too.
Every model gets the same 80% and does what its defaults do with it (our deep models hold out
their default validation fraction for early stopping; the tree libraries use all of it). One
thread for everyone (torch, OpenMP, LightGBM ``n_jobs=1``, CatBoost ``thread_count=1``). A fit that
passes ``--fit-limit`` seconds (default 300, recorded in each row) is stopped at the next batch
with its best weights kept and marked *capped* in the tables (the limit keeps the 27 tables x 3
seeds within reach of a 2-core machine; it binds only on the larger tables). Primary metric:
accuracy (classification), RMSE (regression); log loss and ROC AUC are recorded too.

Models: ``list_models(task)`` of the tabular and in-context families with their defaults, plus
``tabm_mini_pl`` (TabM-mini with piecewise-linear embeddings, the TabM paper's best variant),
``hgb`` (scikit-learn's HistGradientBoosting, our environment), ``lightgbm`` and ``catboost``
(their own environment, the peer)::

    python -m venv ../peers/gbdt
    ../peers/gbdt/bin/pip install lightgbm catboost scikit-learn pandas pyarrow numpy

Work order: the models that answer the issue's question first (TabM, TabM-mini+PL, MLP and the
three GBDTs), seed 0 on every dataset (smallest first), then seeds 1 and 2, then the other models.
Each finished (dataset, seed, model) is appended to ``benchmarks/logs/suite.jsonl`` (committed
with the code, so a run spread over several sessions and machines resumes from it); while ``benchmarks/_work/suite.pause`` exists the run waits between fits
(so tests can run on an idle machine). A row measured beside another job is moved to
``benchmarks/logs/suite.contaminated.jsonl`` and measured again (a capped fit's score depends on its
speed), or, for a fit without a time limit, keeps its score with its time marked (``times``: left out
of the fit-time medians). ``--write`` renders what is measured into RESULTS.md: mean
rank, mean normalised score, wins against HistGradientBoosting, fit seconds, per-dataset scores.

    python benchmarks/suite.py --data ../shared/data/tabular                   # run / resume
    python benchmarks/suite.py --data ../shared/data/tabular --write           # update RESULTS.md
    python benchmarks/suite.py --data ../shared/data/tabular --write --models mlp hgb lightgbm catboost
                                          # a section of these models' (where they all ran)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "1"  # (assigned: a shell's setting would give ours more threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _results import append_row, machine, read_rows, write_section  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

HERE = Path(__file__).resolve().parent
LOG = HERE / "logs" / "suite.jsonl"  # tracked: a run spans sessions and checkouts
WORK = HERE / "_work"  # scratch, git-ignored
WORK.mkdir(exist_ok=True)
PAUSE = WORK / "suite.pause"
SEEDS = (0, 1, 2)
GBDTS = ("hgb", "lightgbm", "catboost")
VARIANTS = {"tabm_mini_pl": ("tabm", {"arch_type": "tabm-mini", "num_embeddings": "piecewise-linear"})}
FIRST = ("tabm", "tabm_mini_pl", "mlp", *GBDTS)
# What a user tells our models of a table (our data layer refuses to guess a column of numbers and
# text): diabetes130us's ICD-9 codes read as numbers but for "V57", "E888" ("holds numbers except
# for 1290 values"); the manifest lists them as categorical, and the GBDT peers get them as text.
DECLARED = {"diabetes130us": {"categorical_features": ["diag_1", "diag_2", "diag_3"]}}
# The code measured (a run may go on for days: start it from a worktree of a fixed commit).
COMMIT = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
).stdout.strip()


def datasets(data_dir: Path) -> pd.DataFrame:
    manifest = pd.read_csv(data_dir / "manifest.csv")
    return manifest.sort_values("rows", kind="stable").reset_index(drop=True)


def load(data_dir: Path, entry) -> tuple[pd.DataFrame, np.ndarray, str]:
    df = pd.read_csv(data_dir / entry.file, low_memory=False)
    ids = [c for c in str(entry.id_columns).split(";") if c in df.columns] if isinstance(entry.id_columns, str) else []
    df = df.drop(columns=ids)
    df = df[df[entry.target].notna()].reset_index(drop=True)
    y = df.pop(entry.target)
    if entry.task == "regression":
        return df, y.to_numpy(np.float64), "regression"
    return df, np.unique(y.astype(str), return_inverse=True)[1], entry.task


def models_for(task: str) -> list[str]:
    import tabular_suite

    kind = "regression" if task == "regression" else "classification"
    ours = [
        m
        for m in tabular_suite.list_models(kind)
        if tabular_suite.core.registry.get_model(m).family in ("tabular", "in-context")
    ]
    variants = [v for v, (base, _) in VARIANTS.items() if base in ours]
    return sorted(ours + variants + list(GBDTS), key=lambda m: (m not in FIRST, m))


def fit_ours(name: str, task: str, seed: int, X_tr, y_tr, X_te, fit_limit: float, declared: dict) -> dict:
    import tabular_suite
    from tabular_suite.compare.folds import Deadline, fit_within

    base, params = VARIANTS.get(name, (name, {}))
    spec = tabular_suite.core.registry.get_model(base)
    est = tabular_suite.make_estimator(
        base, "regression" if task == "regression" else "classification", random_state=seed, num_threads=1,
        **params, **declared,
    )  # fmt: skip
    start = time.perf_counter()
    capped = fit_within(est, X_tr, y_tr, Deadline(fit_limit), deep=spec.family == "tabular")
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = est.predict(X_te) if task == "regression" else est.predict_proba(X_te)
    return {"fit_s": fit_s, "predict_s": time.perf_counter() - start, "capped": capped, "pred": pred}


def fit_gbdt(name: str, task: str, seed: int, X_tr, y_tr, X_te, peer_python: Path) -> dict:
    python = sys.executable if name == "hgb" else str(peer_python)
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        tmp = Path(tmp)
        X_tr.assign(__target__=y_tr).to_parquet(tmp / "train.parquet")
        X_te.to_parquet(tmp / "test.parquet")
        cmd = [python, str(HERE / "_gbdt_peer.py"), "--model", name, "--task", task, "--seed", str(seed)]
        cmd += ["--train", str(tmp / "train.parquet"), "--test", str(tmp / "test.parquet"), "--out", str(tmp / "p.npy")]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError(f"{name} failed: {proc.stderr.strip().splitlines()[-1:]}")
        out = proc.stdout
        result = json.loads(out.strip().splitlines()[-1])
        result["pred"] = np.load(tmp / "p.npy")
    result["capped"] = None
    return result


def score(task: str, y: np.ndarray, pred: np.ndarray) -> dict:
    if task == "regression":
        rmse = float(np.sqrt(np.mean((y - pred) ** 2)))
        r2 = 1 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
        return {"primary": rmse, "rmse": rmse, "r2": r2}
    proba = np.clip(pred, 1e-15, 1)
    proba = proba / proba.sum(1, keepdims=True)
    out = {"primary": float(accuracy_score(y, proba.argmax(1)))}
    out["accuracy"] = out["primary"]
    out["log_loss"] = float(log_loss(y, proba, labels=np.arange(proba.shape[1])))
    if task == "binary":
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1]))
    return out


def measure(name: str, entry, seed: int, data, args) -> dict:
    X, y, task = data
    stratify = None if task == "regression" else y
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)
    if name in GBDTS:
        result = fit_gbdt(name, task, seed, X_tr, y_tr, X_te, args.peer_python)
    else:
        result = fit_ours(name, task, seed, X_tr, y_tr, X_te, args.fit_limit, DECLARED.get(entry.name, {}))
    row = {"dataset": entry.name, "task": task, "seed": seed, "model": name, "rows": len(X), "commit": COMMIT,
           "machine": machine()}  # fmt: skip
    row.update(score(task, y_te, np.asarray(result.pop("pred"), dtype=np.float64)))
    row.update(fit_s=round(result["fit_s"], 2), predict_s=round(result["predict_s"], 3), capped=result["capped"])
    row["fit_limit"] = None if name in GBDTS else args.fit_limit
    row["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")  # to find rows measured beside another job
    return row


def plan(manifest: pd.DataFrame, only: set[str] | None) -> list[tuple]:
    order = []
    for first in (True, False):
        for seed in SEEDS:
            for entry in manifest.itertuples():
                for name in models_for(entry.task):
                    if (name in FIRST) == first and (only is None or name in only):
                        order.append((entry, seed, name))
    return order


def run(args) -> None:
    import torch

    torch.set_num_threads(1)
    try:  # AutoInt's attention kernel is compiled here, not inside a timed fit
        from tabular_suite.nn import native

        native.build()
    except RuntimeError as e:
        print(f"native kernels unavailable ({e}); the PyTorch path is timed", file=sys.stderr)
    manifest = datasets(args.data)
    if args.datasets:
        manifest = manifest[manifest.name.isin(args.datasets)]
    done = {(r["dataset"], r["seed"], r["model"]) for r in read_rows(LOG)}
    cache: dict[str, tuple] = {}
    for entry, seed, name in plan(manifest, set(args.models) if args.models else None):
        if (entry.name, seed, name) in done:
            continue
        while PAUSE.exists():
            time.sleep(10)
        if entry.name not in cache:
            cache = {entry.name: load(args.data, entry)}  # one table in memory at a time
        try:
            row = measure(name, entry, seed, cache[entry.name], args)
        except Exception as e:  # a failure is a result too (recorded, not retried)
            row = {"dataset": entry.name, "task": entry.task, "seed": seed, "model": name, "error": repr(e)[:300]}
        append_row(LOG, row)


# ------------------------------------------------------------------------------------ report
def write(rows: list[dict], min_seeds: int, only: list[str] | None = None) -> None:
    """Render the rows into RESULTS.md: every model's, or ``only`` these models' in a section of
    their own (a table holds the datasets where all its models ran: models measured on part of the
    suite would shrink the full table)."""
    rows = [r for r in rows if only is None or r["model"] in only]
    df = pd.DataFrame([r for r in rows if "error" not in r])
    if "times" in df:  # a row whose time was measured beside another job: its score only
        df.loc[df["times"].notna(), "fit_s"] = np.nan
    errors = [r for r in rows if "error" in r]
    lower = df.task == "regression"
    df["higher"] = np.where(lower, -df.primary, df.primary)  # larger is better for every dataset
    # A dataset counts once every model has the same min_seeds seeds on it; its scores are the
    # means over the seeds all models have there (the same splits for everyone).
    models = sorted(set(df.model))
    seeds_of = df.groupby(["dataset", "model"]).seed.agg(frozenset)
    common = {}
    for dataset, sets in seeds_of.groupby(level=0):
        shared = frozenset.intersection(*sets.values) if len(sets) == len(models) else frozenset()
        if len(shared) >= min_seeds:
            common[dataset] = shared
    df = df[[r.dataset in common and r.seed in common[r.dataset] for r in df.itertuples()]]
    # Each row names its machine (a capped fit buys more on a faster CPU); the first rows did not.
    machines = df["machine"] if "machine" in df else pd.Series("not recorded", index=df.index)
    where = "; ".join(f"{m} ({n} rows)" for m, n in machines.fillna("not recorded").value_counts().items())
    per = df.groupby(["dataset", "model"]).agg(
        score=("primary", "mean"),
        higher=("higher", "mean"),
        fit_s=("fit_s", "mean"),
        capped=("capped", lambda c: int(c.notna().sum())),
    )
    full = sorted(common)
    per = per.loc[full]
    wide = per.higher.unstack()
    ranks = wide.rank(axis=1, ascending=False)
    norm = wide.sub(wide.min(axis=1), axis=0).div((wide.max(axis=1) - wide.min(axis=1)).replace(0, 1), axis=0)
    beats_hgb = (wide.gt(wide["hgb"], axis=0)).sum() if "hgb" in wide else None
    fit = per.fit_s.unstack()
    capped = per.capped.unstack()
    summary = pd.DataFrame(
        {
            "mean rank": ranks.mean(),
            "mean normalised score": norm.mean(),
            "beats HGB": beats_hgb,
            "median fit s": fit.median(),
            "capped fits": capped.sum(),
        }
    ).sort_values("mean rank")
    counts = pd.Series([len(common[d]) for d in full]).value_counts().sort_index()
    seeds_note = ", ".join(f"{n} dataset(s) with {k} seed(s)" for k, n in counts.items())
    title = "every model's defaults against GBDT defaults" if only is None else ", ".join(models) + " with defaults"
    lines = [
        f"## Sure-bet suite: {title} (issue 24)",
        "",
        f"Machines: {where}; 1 thread for every model. {len(full)} datasets complete with all "
        f"{len(models)} models on the same {min_seeds} seed(s) or more ({seeds_note}; mean over the seeds all "
        "models have on a dataset; 80/20 split per seed, stratified; every model fits on the same 80% with its "
        "defaults). Primary metric: accuracy, or RMSE "
        "for regression. Rank 1 is best; the normalised score is 1 for the dataset's best model and 0 for "
        "its worst. `beats HGB`: datasets where the model's mean primary metric is better than "
        "HistGradientBoosting's. Fits over the limit are stopped with their best weights (`capped`).",
        "",
        "| model | mean rank | mean normalised score | beats HGB | median fit s | capped fits |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for model, r in summary.iterrows():
        hgb = "" if r["beats HGB"] is None or model == "hgb" else f"{int(r['beats HGB'])} / {len(full)}"
        lines.append(
            f"| {model} | {r['mean rank']:.2f} | {r['mean normalised score']:.3f} | {hgb} | "
            f"{r['median fit s']:.1f} | {int(r['capped fits'])} |"
        )
    order = list(summary.index)
    lines += ["", "Per dataset (mean primary metric over seeds; best in bold):", ""]
    lines += ["| dataset | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
    scores = per.score.unstack()
    for name in full:
        best = wide.loc[name].idxmax()
        cells = []
        for model in order:
            value = scores.loc[name, model]
            text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"
            text += "*" if capped.loc[name, model] else ""
            cells.append(f"**{text}**" if model == best else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "`*`: at least one seed's fit was capped."]
    if errors:
        lines += ["", "Failed fits: " + "; ".join(f"{e['model']} on {e['dataset']} ({e['error']})" for e in errors)]
    lines += [
        "",
        "    python benchmarks/suite.py --data ../shared/data/tabular          # run / resume",
        f"    python benchmarks/suite.py --data ../shared/data/tabular --write --min-seeds {min_seeds}"
        + (" --models " + " ".join(models) if only else ""),
    ]
    write_section(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument(
        "--peer-python", type=Path, default=Path(os.environ.get("GBDT_PEER", "../peers/gbdt/bin/python"))
    )
    parser.add_argument("--fit-limit", type=float, default=300.0, help="Seconds a fit may take before it is capped.")
    parser.add_argument(
        "--models", nargs="*", help="Only these models (default: all; with --write, a section of their own)."
    )
    parser.add_argument("--datasets", nargs="*", help="Only these datasets (default: all).")
    parser.add_argument("--write", action="store_true", help="Render the measured rows into RESULTS.md.")
    parser.add_argument("--min-seeds", type=int, default=len(SEEDS), help="--write: seeds a result needs.")
    args = parser.parse_args()
    if args.write:
        write(read_rows(LOG), args.min_seeds, args.models)
    else:
        run(args)


if __name__ == "__main__":
    main()
