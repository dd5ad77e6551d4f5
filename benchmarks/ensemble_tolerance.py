"""How much out-of-fold score compare() should trade for a cheaper ensemble (issue 23).

compare() selects the greedy (Caruana) ensemble, then the cheapest ensemble whose out-of-fold
loss is within ``tolerance`` (relative) of it (``cheapest_selection``): a member chosen once in
25 steps predicts like any other. This re-selects, for several tolerances, on the out-of-fold
predictions that benchmarks/automl.py kept of each of our fits (``--keep-predictions``: every
model's out-of-fold and test predictions and the leaderboard, whose ``predict_rows_per_s`` gives
each model's prediction cost), and scores each selection on the test rows (without the
calibration compare() adds; ROC AUC, log loss, RMSE as in benchmarks/automl.py) next to its
prediction cost (ms per 1,000 rows, compare()'s own estimate). No model is fitted again.

    python benchmarks/automl.py --data ../shared/data/tabular --keep-predictions benchmarks/_work/automl_preds
    python benchmarks/ensemble_tolerance.py --predictions benchmarks/_work/automl_preds --since COMMIT
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from _results import machine, read_rows, write_section

HERE = Path(__file__).resolve().parent
HEADER = "## compare(): the tolerance of the cheapest ensemble, re-selected on kept predictions (issue 23)"
TOLERANCES = (1e-3, 1e-2, 2e-2, 5e-2)


def reselect(kept: dict) -> tuple[dict, bool]:
    """{tolerance: (test metric, ms per 1,000 rows)} for one kept fit, and whether higher is better."""
    from tabular_suite.compare.ensemble import _blend, cheapest_selection
    from tabular_suite.compare.metrics import get_metric

    task = "regression" if kept["task"] == "regression" else "classification"
    metric = get_metric(kept["metric"], task)
    board = kept["leaderboard"].set_index("model")
    oof = {n: p for n, p in kept["oof"].items() if n != "ensemble" and n in kept["test"]}
    folds = kept["settings"]["cv"]
    per_row = {n: (1 if n.startswith("tabpfn") else folds) / board.loc[n, "predict_rows_per_s"] for n in oof}
    stacked = kept["stacked"] or {}

    def cost(names) -> float:
        needed = set()
        for name in names:
            needed |= {name, *stacked.get(name, ((), None))[0]}
        return float(sum(per_row[n] for n in needed))

    out = {}
    for tolerance in TOLERANCES:
        weights = cheapest_selection(oof, kept["target"], metric, cost, tolerance=tolerance)
        out[tolerance] = (metric.value(kept["y_test"], _blend(kept["test"], weights)), 1e6 * cost(weights))
    return out, metric.greater_is_better


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=Path, default=HERE / "_work" / "automl_preds")
    parser.add_argument(
        "--since", required=True, help="only our fits of benchmarks/logs/automl.jsonl from this commit on"
    )
    args = parser.parse_args()
    import subprocess

    commits = subprocess.run(["git", "rev-list", f"{args.since}^..HEAD"], cwd=HERE, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    rows = [r for r in read_rows(HERE / "logs" / "automl.jsonl") if r["system"] == "ours" and "error" not in r
            and any(c.startswith(r["commit"]) for c in commits)]  # fmt: skip
    fits = {(r["dataset"], r["budget"]): r for r in rows}  # the last of each
    lines = [HEADER, "", " ".join(__doc__.split("\n\n")[1].split()), ""]
    lines += [f"Machine: {machine()}. Our fits at {', '.join(sorted({r['commit'] for r in fits.values()}))}. Commands:",
              "", *(f"    {c.strip()}" for c in __doc__.split("\n\n")[2].strip().splitlines()), ""]  # fmt: skip
    head = " | ".join(f"{t:.1%} test | ms" for t in TOLERANCES)
    lines += [f"| dataset | budget | metric | {head} |", "|---|---:|---|" + "---:|---:|" * len(TOLERANCES)]
    deltas = {t: [] for t in TOLERANCES}
    costs = {t: [] for t in TOLERANCES}
    for (name, budget), r in sorted(fits.items(), key=lambda kv: (kv[0][1], kv[1]["rows"])):
        path = args.predictions / f"{name}_{budget:g}s_seed{r['seed']}_ours.pkl"
        if not path.exists():
            continue
        with open(path, "rb") as f:
            kept = pickle.load(f)
        out, higher = reselect(kept)
        base_score, base_cost = out[TOLERANCES[0]]
        for t in TOLERANCES:
            deltas[t].append((out[t][0] - base_score) * (1 if higher else -1))
            costs[t].append(out[t][1] / base_cost if base_cost > 0 else 1.0)
        cells = " | ".join(f"{out[t][0]:.4g} | {out[t][1]:,.0f}" for t in TOLERANCES)
        lines.append(f"| {name} | {budget:g} s | {kept['metric']} | {cells} |")
    lines.append("")
    for t in TOLERANCES[1:]:
        d = np.array(deltas[t])
        lines.append(
            f"- {t:.1%} against {TOLERANCES[0]:.1%}: test better on {int((d > 1e-12).sum())}, worse on "
            f"{int((d < -1e-12).sum())} of {len(d)} (mean change {d.mean():+.4f}, higher is better); prediction "
            f"cost median x{np.median(costs[t]):.2f}"
        )
    write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
