"""``tabular_suite.compare`` on three datasets of ../shared/data/tabular: leaderboards and wall time.

Each dataset runs the "fast" preset with 5-fold CV, 1 thread, seed 0, a per-dataset time
limit, and the default metric (accuracy / RMSE). Finished datasets go to
``benchmarks/_work/compare.jsonl`` (resumable); ``--write`` renders them into RESULTS.md.

    python benchmarks/compare.py
    python benchmarks/compare.py --write
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

import tabular_suite  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
DATASETS = {  # name: (file, target)
    "credit_g": ("credit_g.csv", "class"),
    "steel_plates_faults": ("steel_plates_faults.csv", "fault"),
    "california_housing": ("california_housing.csv.gz", "median_house_value"),
}
HEADER = "## compare(): leaderboards on three datasets (issue 8)"
COLUMNS = ["model", "status", "mean", "std", "fit_seconds", "predict_rows_per_s", "best_epoch", "ensemble_weight"]


def run(data_dir: Path, name: str, cv: int, time_limit: float) -> dict:
    file, target = DATASETS[name]
    df = pd.read_csv(data_dir / file)
    y = df.pop(target).to_numpy()
    if name == "california_housing":
        y = y / 100_000  # RMSE in $100k, as in the other benchmarks
    start = time.perf_counter()
    result = tabular_suite.compare(
        df, y, cv=cv, preset="fast", time_limit=time_limit, random_state=0, num_threads=1, tracking=False, refit=False
    )
    wall = time.perf_counter() - start
    board = result.leaderboard[COLUMNS].replace({np.nan: None})
    return {
        "dataset": name,
        "rows": len(df),
        "metric": result.metric.name,
        "direction": "higher" if result.metric.greater_is_better else "lower",
        "cv": cv,
        "time_limit": time_limit,
        "wall_seconds": wall,
        "machine": machine(),
        "leaderboard": board.to_dict("records"),
    }


def write_results(rows: list[dict]) -> None:
    lines = [
        HEADER,
        "",
        "Command: `python benchmarks/compare.py && python benchmarks/compare.py --write` "
        "(preset fast, 5-fold CV, seed 0, 1 thread, no refit). Score = mean ± std of the metric over folds; "
        "the ensemble (Caruana selection on the out-of-fold predictions) is scored on the same predictions "
        "its weights were chosen on. Fit seconds are per fold.",
        "",
    ]
    for r in rows:
        board = r["leaderboard"]
        best_single = next(b for b in board if b["model"] != "ensemble" and b["mean"] is not None)
        ensemble = next((b for b in board if b["model"] == "ensemble"), None)
        verdict = ""
        if ensemble:
            better = (
                ensemble["mean"] >= best_single["mean"]
                if r["direction"] == "higher"
                else ensemble["mean"] <= best_single["mean"]
            )
            verdict = (
                f" Ensemble {ensemble['mean']:.4f} vs best single model ({best_single['model']}) "
                f"{best_single['mean']:.4f}: {'at least as good' if better else 'worse'}."
            )
        lines += [
            f"### {r['dataset']} ({r['rows']:,} rows, {r['metric']}, {r['direction']} is better)",
            "",
            f"Wall time {r['wall_seconds']:.0f} s with a {r['time_limit']:.0f} s limit on {r['machine']}.{verdict}",
            "",
            "| model | status | score ± std | fit s/fold | predict rows/s | best epoch | ensemble weight |",
            "|---|---|---|---|---|---|---|",
        ]
        for b in board:

            def f(v, spec):
                return "" if v is None else format(v, spec)

            lines.append(
                f"| {b['model']} | {b['status']} | {f(b['mean'], '.4f')} ± {f(b['std'], '.4f')} | "
                f"{f(b['fit_seconds'], '.1f')} | {f(b['predict_rows_per_s'], ',.0f')} | "
                f"{f(b['best_epoch'], '.0f')} | {f(b['ensemble_weight'], '.2f')} |"
            )
        lines.append("")
    write_section(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "tabular")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--cv", type=int, default=5)
    p.add_argument("--time-limit", type=float, default=1200)
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    log = WORK / "compare.jsonl"
    rows = read_rows(log)
    if a.write:
        write_results(rows)
        return
    done = {r["dataset"] for r in rows}
    for name in a.datasets:
        if name not in done:
            append_row(log, run(a.data, name, a.cv, a.time_limit))


if __name__ == "__main__":
    # As the CLI does: this process trains, so it opts in to the settled heap (the library never
    # changes the allocator by itself); peers run in their own processes with glibc's defaults.
    from tabular_suite.training.device import settle_heap

    settle_heap()
    main()
