"""``tabular_suite.compare`` against AutoGluon-Tabular at equal time budgets (issue 23, point 5).

Protocol. Every dataset of ../shared/data/tabular (27: classification and regression, up to the
75k- and 100k-row tables), one 80/20 split per seed (stratified for classification; identifier
columns dropped, as in benchmarks/suite.py), the same rows for everyone. Systems, each on one
thread with the same time limit (60 s and 300 s): ours (``compare`` with its defaults: the
"fast" preset, 5-fold bagging, stacking, the Caruana ensemble, calibration), AutoGluon 1.6.3
``medium_quality`` and ``best_quality`` (and, with ``--systems ... ours_tuned``, ours with
``tune=True``; ``ours_fast``, ours with ``infer_limit`` set to best_quality's measured
prediction cost on that table: the quality at equal prediction cost). Ours is told which text
columns the manifest calls categorical, as AutoGluon reads every text column (without it,
compare refuses a column of numbers with stray text, diabetes130us' ICD-9 codes such as 'V57',
naming the fix). The primary metric, optimised by both and scored on the
20% test rows: ROC AUC (binary), log loss (multiclass), RMSE (regression). Also recorded: the fit
wall time, the first prediction's seconds (the test rows) and the milliseconds of a warm
prediction of 1,000 test rows (drawn with replacement from smaller test sets; the same rows for
both), the prediction cost per 1,000 rows.

AutoGluon runs in its own environment (fastai is left out: AutoGluon skips its FASTAI model when
fastai is missing; fastai would pull a torchvision build that does not load beside torch 2.13)::

    python -m venv ../peers/autogluon
    ../peers/autogluon/bin/pip install "torch==2.13.0" "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"

Work order: the 60 s budget on every dataset (smallest first), then 300 s; a dataset's systems one
after the other. Each finished (dataset, seed, budget, system) is appended to
``benchmarks/logs/automl.jsonl`` (committed; resumable; ``benchmarks/_work/automl.pause`` makes it
wait between fits). Rows of ours measured before ``OURS_SINCE`` (a change to compare() itself) are
measured again and left out of the tables, as are all but the last row of a (dataset, seed,
budget, system), and the rows of a (dataset, seed, budget) measured on another machine than ours:
a run measures them again on its machine. ``--write`` renders the tables into RESULTS.md: per
dataset and budget, wins against each AutoGluon preset, mean rank, prediction time.

    python benchmarks/automl.py --data ../shared/data/tabular             # run / resume
    python benchmarks/automl.py --data ../shared/data/tabular --write     # update RESULTS.md

``--keep-predictions benchmarks/_work/automl_preds`` also saves, after each of our timed fits,
every leaderboard row's out-of-fold and test predictions: another ensemble selection or
stacking rule can then be scored on the same models without fitting them again.
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
from suite import datasets, load  # noqa: E402

HERE = Path(__file__).resolve().parent
LOG = HERE / "logs" / "automl.jsonl"  # tracked: a run spans sessions and checkouts
WORK = HERE / "_work"  # scratch, git-ignored
WORK.mkdir(exist_ok=True)
PAUSE = WORK / "automl.pause"
SYSTEMS = ("ours", "medium_quality", "best_quality")
# Optional systems (--systems ...): ours with the hyperparameter search on (compare(tune=True)),
# and ours held to AutoGluon best_quality's prediction cost on the same table (compare(infer_limit=
# its measured seconds a row; best_quality's row must be there first).
EXTRA = ("ours_tuned", "ours_fast")
# The code measured (a run spans sessions: start it from a worktree of a fixed commit).
COMMIT = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
).stdout.strip()
# Our rows measured before this commit are stale (compare() changed: extra trees among the
# baselines (0cd28b5), the in-context model in fp32 on CPUs without native bf16 (d21543f), no
# configurations drawn at random after the portfolio (d5c8caa), rows ranked by the metric on the
# pooled out-of-fold predictions (f08e47c), prediction costs from a warm 1,000-row batch (01ee4d7), the
# categories encoded 2-4x faster (a04c61a, d6c2f90), the cheapest ensemble within 1% (1e57398), models cut short
# ranked after those with every fold (4083d2b), the boosting models first with more of the time (bbb1386), a
# hold-out instead of 5 folds on large tables under short limits (83ddd6a), repeated bagging with the time
# left (bag_sets, 1fe1dc2), FT-Transformer's and ExcelFormer's attention through the compiled kernel
# (b5d79b6; in training too, dropout included, 1cba374), one k-fold split by default (bag_sets=1,
# 5201a24), the deep members in bf16 on CPUs with bf16 instructions (precision="auto", 03dd56d), the
# boosting models stopped at AutoGluon's adaptive patience and CatBoost's categories native (2946006;
# LightGBM cut by the deadline keeps its best round, d1a82eb), FT-Transformer at lr 1e-3 in the fast
# preset (7e6c9f3), forests predicting in a plain loop and models predicting the same rows parsing them
# once (8419ee6, 2343d6e: the same predictions of the same models, but prediction costs, which the
# ensemble selection and the time budget read, are lower), the attention kernel left to CPUs with
# AVX-512 (d5e38c5: on this AVX2 machine FT-Transformer and ExcelFormer train about 2x faster)): a
# run measures them again and --write leaves them out.
OURS_SINCE = "d5e38c5"
OURS = ("ours", *EXTRA)


def current_rows(rows: list[dict]) -> list[dict]:
    """The rows that measure the code this report is about: AutoGluon's, and ours from
    ``OURS_SINCE`` on; of several rows of one (dataset, seed, budget, system) on one machine, the
    last. (:func:`same_machine` then keeps the systems of a table that ran on one machine: a row
    measured on another machine later must not hide this machine's.)"""
    commits = subprocess.run(
        ["git", "rev-list", f"{OURS_SINCE}^..HEAD"], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.split()
    keep = {}
    for r in rows:
        if r["system"] not in OURS or any(c.startswith(r.get("commit") or "-") for c in commits):
            keep[(r["dataset"], r["seed"], r["budget"], r["system"], r["machine"])] = r
    return list(keep.values())


def same_machine(rows: list[dict]) -> list[dict]:
    """Of each (dataset, seed, budget), the rows measured on the machine of our row: a table
    compares systems that ran on one machine, one after the other (a time budget buys more on
    a faster CPU, and ours uses bf16 where the CPU has it). A peer's row from another machine is
    measured again there (see ``run``). Our rows on several machines: the latest's."""
    ours = {(r["dataset"], r["seed"], r["budget"]): r["machine"]
            for r in sorted(rows, key=lambda r: r.get("finished", "")) if r["system"] == "ours"}  # fmt: skip
    return [r for r in rows if ours.get((r["dataset"], r["seed"], r["budget"])) == r["machine"]]


HEADER = "## AutoML: compare() against AutoGluon at equal budgets (issue 23)"
# The primary metric per task: our compare() name, AutoGluon's name, higher is better.
PRIMARY = {
    "binary": ("roc_auc", "roc_auc", True),
    "multiclass": ("log_loss", "log_loss", False),
    "regression": ("rmse", "root_mean_squared_error", False),
}


def score(task: str, y: np.ndarray, pred: np.ndarray) -> dict:
    if task == "regression":
        return {"primary": float(np.sqrt(np.mean((y - pred) ** 2)))}
    proba = np.clip(pred, 1e-15, 1)
    proba = proba / proba.sum(1, keepdims=True)
    out = {"accuracy": float(accuracy_score(y, proba.argmax(1)))}
    if task == "binary":
        out["primary"] = float(roc_auc_score(y, proba[:, 1]))
    else:
        out["primary"] = float(log_loss(y, proba, labels=np.arange(proba.shape[1])))
    return out


def text_categoricals(entry, X: pd.DataFrame) -> list[str] | None:
    """The manifest's categorical columns that hold text (compare()'s ``categorical_features``)."""
    listed = str(entry.categorical_columns).split(";") if isinstance(entry.categorical_columns, str) else []
    return [c for c in listed if c in X.columns and not pd.api.types.is_numeric_dtype(X[c])] or None


def fit_ours(task: str, seed: int, budget: float, X_tr, y_tr, X_te, tune: bool = False, infer_limit=None,
             categorical=None) -> dict:  # fmt: skip
    import tabular_suite

    start = time.perf_counter()
    result = tabular_suite.compare(
        X_tr, y_tr, time_limit=budget, metric=PRIMARY[task][0], random_state=seed, num_threads=1, tracking=False,
        tune=tune, infer_limit=infer_limit, categorical_features=categorical,
    )  # fmt: skip
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = result.predict(X_te) if task == "regression" else result.predict_proba(X_te)
    predict_s = time.perf_counter() - start
    batch = thousand(X_te)
    start = time.perf_counter()
    result.predict(batch) if task == "regression" else result.predict_proba(batch)
    batch_s = time.perf_counter() - start
    best = result.leaderboard.iloc[0]
    # compare()'s own estimate of that cost (leaderboard predict_seconds_per_row), next to the measurement
    estimated = 1e6 * float(best["predict_seconds_per_row"])
    return {"pred": pred, "fit_s": fit_s, "predict_s": predict_s, "batch_s": batch_s, "best": str(best["model"]),
            "estimated_ms_per_1000": round(estimated, 1), "result": result}  # fmt: skip


def keep_predictions(path: Path, result, task: str, X_te, y_te) -> None:
    """Every leaderboard row's out-of-fold and test predictions (``--keep-predictions``), after the
    timed fit and prediction: what another ensemble selection or stacking would have scored is
    then a computation on these arrays, not a new fit."""
    import pickle

    test = {}
    for name in result.leaderboard["model"]:
        try:
            model = result.get_model(name)
        except ValueError:  # no complete fold models (cut short by the time limit)
            continue
        test[name] = np.asarray(model.predict(X_te) if task == "regression" else model.predict_proba(X_te), float)
    keep = {"task": task, "metric": result.metric.name, "oof": result.oof_predictions, "target": result.oof_target,
            "test": test, "y_test": np.asarray(y_te), "leaderboard": result.leaderboard,
            "weights": result.ensemble_weights, "stacked": result._stacked, "settings": result.settings}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(keep, f)


def thousand(X: pd.DataFrame) -> pd.DataFrame:
    """1,000 of the test rows (drawn with replacement when fewer): a warm batch, timed for the
    prediction cost per 1,000 rows (the same rows as AutoGluon's: _autogluon_peer.py)."""
    return X.sample(n=1000, replace=len(X) < 1000, random_state=0)


def fit_autogluon(task: str, seed: int, budget: float, preset: str, X_tr, y_tr, X_te, peer_python) -> dict:
    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        tmp = Path(tmp)
        X_tr.assign(__target__=y_tr).to_parquet(tmp / "train.parquet")
        X_te.to_parquet(tmp / "test.parquet")
        cmd = [str(peer_python), str(HERE / "_autogluon_peer.py"), "--train", str(tmp / "train.parquet"),
               "--test", str(tmp / "test.parquet"), "--task", task, "--preset", preset, "--time-limit", str(budget),
               "--metric", PRIMARY[task][1], "--seed", str(seed), "--out", str(tmp / "p.npy")]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if proc.returncode:
            raise RuntimeError(f"AutoGluon failed: {proc.stderr.strip().splitlines()[-3:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["pred"] = np.load(tmp / "p.npy")
    return out


def plan(manifest: pd.DataFrame, budgets, seeds, systems) -> list[tuple]:
    return [(e, s, b, sys_) for b in budgets for s in seeds for e in manifest.itertuples() for sys_ in systems]


def run(args) -> None:
    import torch

    torch.set_num_threads(1)
    manifest = datasets(args.data)
    if args.datasets:
        manifest = manifest[manifest.name.isin(args.datasets)]
    here = machine()  # (rows measured on another machine are measured again: see same_machine)
    current = [r for r in current_rows(read_rows(LOG)) if r["machine"] == here]
    done = {(r["dataset"], r["seed"], r["budget"], r["system"]) for r in current}
    done_here = {(r["dataset"], r["seed"], r["budget"], r["system"]) for r in current if r.get("commit") == COMMIT}
    # AutoGluon's rows timed before the harness persisted its models (see --again-peers).
    unpersisted = {(r["dataset"], r["seed"], r["budget"], r["system"]) for r in current
                   if r["system"] not in OURS and "persisted" not in r}  # fmt: skip
    cache: dict[str, tuple] = {}
    for entry, seed, budget, system in plan(manifest, args.budgets, args.seeds, args.systems):
        key = (entry.name, seed, budget, system)
        again = (args.again and system in OURS and key not in done_here) or (args.again_peers and key in unpersisted)
        if key in done and not again:
            continue
        if system == "ours_fast":
            peer = [r for r in read_rows(LOG) if "error" not in r and r["machine"] == here and (r["dataset"], r["seed"],
                    r["budget"], r["system"]) == (entry.name, seed, budget, "best_quality")]  # fmt: skip
            if not peer:
                print(f"ours_fast on {entry.name} ({budget:g} s) waits for best_quality's row", flush=True)
                continue
        while PAUSE.exists():
            time.sleep(10)
        if entry.name not in cache:
            cache = {entry.name: load(args.data, entry)}
        X, y, task = cache[entry.name]
        stratify = None if task == "regression" else y
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=stratify)
        row = {"dataset": entry.name, "task": task, "rows": len(X), "seed": seed, "budget": budget, "system": system,
               "machine": machine()}  # fmt: skip
        try:
            # The text columns the dataset's documentation calls categorical (AutoGluon reads every text
            # column as categorical by itself; compare refuses numbers with stray text unless told).
            text = text_categoricals(entry, X)
            if system == "ours_fast":  # within best_quality's measured prediction cost
                row["infer_limit"] = peer[-1]["predict_ms_per_1000"] / 1e6  # seconds a row
                out = fit_ours(task, seed, budget, X_tr, y_tr, X_te, infer_limit=row["infer_limit"], categorical=text)
            elif system in ("ours", "ours_tuned"):
                out = fit_ours(task, seed, budget, X_tr, y_tr, X_te, tune=system == "ours_tuned", categorical=text)
            else:
                out = fit_autogluon(task, seed, budget, system, X_tr, y_tr, X_te, args.peer_python)
            row.update(score(task, y_te, np.asarray(out.pop("pred"), dtype=np.float64)))
            result = out.pop("result", None)
            if result is not None and args.keep_predictions is not None:
                name = f"{entry.name}_{budget:g}s_seed{seed}_{system}.pkl"
                keep_predictions(args.keep_predictions / name, result, task, X_te, y_te)
            row.update(fit_s=round(out["fit_s"], 1), first_predict_s=round(out["predict_s"], 3),
                       predict_ms_per_1000=round(1000 * out["batch_s"], 1), best=out.get("best"), commit=COMMIT)  # fmt: skip
            if "estimated_ms_per_1000" in out:
                row["estimated_ms_per_1000"] = out["estimated_ms_per_1000"]
            if "persisted" in out:  # AutoGluon's models in memory for the warm batch
                row["persisted"] = out["persisted"]
        except Exception as e:  # a failure is a result too (recorded, not retried)
            row["error"] = repr(e)[:400]
        row["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        append_row(LOG, row)


def write(rows: list[dict], budgets) -> None:
    df = pd.DataFrame([r for r in rows if "error" not in r])
    if df.empty:  # (no budget has rows of ours from OURS_SINCE on yet)
        df = pd.DataFrame(columns=["machine", "seed", "budget", "system"])
    # A row names the machine it was measured on (a table's systems run one after the other in one session).
    where = "; ".join(f"{m} ({n} rows)" for m, n in df["machine"].value_counts().items())
    lines = [f"Machines: {where}. One thread per system; seeds {sorted(df.seed.unique().tolist())}.", ""]
    lines += ["Command: `python benchmarks/automl.py --data ../shared/data/tabular && python benchmarks/automl.py "
              "--data ../shared/data/tabular --write` (AutoGluon's environment: see the script's docstring).", ""]  # fmt: skip
    lines += [f"Ours: rows measured from {OURS_SINCE} on (each table says at which commits); AutoGluon 1.6.3.", ""]
    for budget in sorted(set(budgets)):
        part = df[df.budget == budget]
        if "ours" not in set(part.system):  # (OURS_SINCE moved: the budget's rows of ours are to be measured again)
            lines += [
                f"### {budget:g} s per fit",
                "",
                f"Ours not yet measured at this budget from {OURS_SINCE} on.",
                "",
            ]
            continue
        table = part.pivot_table(index=["dataset", "task"], columns="system", values="primary", aggfunc="mean")
        table = table[[s for s in SYSTEMS + EXTRA if s in table.columns]].dropna()
        higher = np.array([PRIMARY[t][2] for _, t in table.index])
        signed = table.to_numpy() * np.where(higher, 1, -1)[:, None]
        ranks = pd.DataFrame(-signed, index=table.index, columns=table.columns).rank(axis=1)
        mine = part[part.system.isin(OURS) & part.dataset.isin(table.index.get_level_values(0))]
        commits = ", ".join(f"{c} ({n} tables)" for c, n in mine.commit.value_counts().items())
        lines += [f"### {budget:g} s per fit ({len(table)} datasets)", "", f"Ours measured at {commits}.", ""]
        lines += ["| dataset | task (metric) | " + " | ".join(table.columns) + " |",
                  "|---|---|" + "---:|" * len(table.columns)]  # fmt: skip
        for (name, task), values in table.iterrows():
            metric = {"binary": "ROC AUC", "multiclass": "log loss", "regression": "RMSE"}[task]
            cells = [f"{v:,.0f}" if task == "regression" else f"{v:.4g}" for v in values]
            lines.append(f"| {name} | {task} ({metric}) | " + " | ".join(cells) + " |")
        lines.append("")
        for ours in ("ours", *EXTRA):
            for peer in ("medium_quality", "best_quality"):
                if peer in table.columns and ours in table.columns:
                    i, j = list(table.columns).index(ours), list(table.columns).index(peer)
                    wins = int((signed[:, i] > signed[:, j]).sum())
                    lines.append(
                        f"- {ours} ahead of AutoGluon {peer}: {wins} of {len(table)} ({wins / len(table):.0%})"
                    )
        lines.append("- mean rank (1 = best): " + ", ".join(f"{c} {ranks[c].mean():.2f}" for c in ranks.columns))
        part = part[part.set_index(["dataset", "task"]).index.isin(table.index)]  # the tables all systems have
        speed = part.groupby("system")["predict_ms_per_1000"].median()
        lines.append(
            "- prediction of a warm 1,000-row batch, median ms: "
            + ", ".join(f"{s} {speed[s]:.1f}" for s in speed.index)
        )
        ms = part.pivot_table(index=["dataset", "task"], columns="system", values="predict_ms_per_1000")
        peers = part[part.system.isin(SYSTEMS) & (part.system != "ours")]
        cold = int(peers["persisted"].isna().sum()) if "persisted" in peers else len(peers)
        if cold:  # (rows measured before the harness persisted AutoGluon's models)
            lines.append(
                f"- {cold} of AutoGluon's {len(peers)} rows timed the warm batch without persisting its models (each "
                "call loaded them from disk): their prediction times are upper bounds, and the comparisons of "
                "prediction cost below are not established on them"
            )
        for peer in ("medium_quality", "best_quality"):
            if {"ours", peer} <= set(ms.columns):
                fast = int((ms["ours"] <= ms[peer]).sum())
                lines.append(f"- ours predicts no slower than {peer} on {fast} of {len(ms)} datasets")
        if "estimated_ms_per_1000" in part:
            mine = part[(part.system == "ours") & part.estimated_ms_per_1000.notna()]
            if len(mine):
                ratio = mine.estimated_ms_per_1000 / mine.predict_ms_per_1000
                lines.append(
                    f"- compare()'s own estimate of that cost (its best row's predict_seconds_per_row) over the "
                    f"measured one: median {ratio.median():.2f}, range {ratio.min():.2f}-{ratio.max():.2f} "
                    f"({len(mine)} datasets)"
                )
        fit = part.groupby("system")["fit_s"].median()
        lines.append("- fit wall time, median s: " + ", ".join(f"{s} {fit[s]:.0f}" for s in fit.index))
        lines.append("")
    errors = [r for r in rows if "error" in r]
    if errors:
        lines.append(
            "Failed fits: " + "; ".join(f"{e['system']} on {e['dataset']} ({e['error'][:120]})" for e in errors)
        )
    write_section([HEADER, "", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="../shared/data/tabular")
    parser.add_argument("--budgets", type=float, nargs="+", default=[60.0, 300.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS + EXTRA)
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--peer-python", type=Path, default=Path("../peers/autogluon/bin/python"))
    parser.add_argument(
        "--keep-predictions",
        type=Path,
        metavar="DIR",
        help="save each of our fits' per-model out-of-fold and test predictions here (pickles)",
    )
    parser.add_argument(
        "--again-peers",
        action="store_true",
        help="measure AutoGluon again where its row timed the warm batch without persisting its models (rows "
        "before 2026-12-07: each call loaded them from disk)",
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="measure our systems again where a current row exists but none at this commit (a change to "
        "compare() measured on one budget before OURS_SINCE moves; the tables name each row's commit)",
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.write:
        write(same_machine(current_rows(read_rows(LOG))), args.budgets)
    else:
        run(args)


if __name__ == "__main__":
    sys.exit(main())
