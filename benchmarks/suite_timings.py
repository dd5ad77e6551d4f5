"""Timings that used to be assertions in the test suite (issue 21, point 6), measured here instead.

A timing bound in a test either flakes on a loaded machine or is loose enough to mean
nothing; the tests now assert the behaviour and this script measures the speed:

- ``prior``: seconds per batch of ``SyntheticPrior(seed=0).sample(step, 8, 256, 128)``
  (20 batches; the test bound was 0.5 s),
- ``tabpfn``: fit + predict of a 1,000 x 100 table with 1,000 test rows, shipped weights,
  default ensemble, one thread, best of 3 after a warm-up (the test bound was 2 s;
  ``benchmarks/pfn.py`` times the same path next to its accuracy benchmark),
- ``heap``: minor page faults of 4 rounds of building and freeing ten 3 MB tensors (a
  training step's activations), in a fresh process with ``settle_heap()`` and in one with the
  user's fixed 128 KiB malloc thresholds (the test bounds were < 200 and > 20,000),
- ``budget``: how far past a fold budget ``compare()`` stops an MLP (budgets end at an epoch
  boundary): fit seconds per fold with ``model_time_limit=0.2`` over 2 folds (the test
  assumed fewer than 40 epochs fit in 0.1 s).

One thread. Rows are appended to benchmarks/_work/suite_timings.jsonl.

    python benchmarks/suite_timings.py && python benchmarks/suite_timings.py --write
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TABULAR_SUITE_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
LOG = HERE / "_work" / "suite_timings.jsonl"
HEADER = "## Timings that were test assertions (issue 21)"

_FAULTS = """
import resource, sys, torch
from tabular_suite.training.device import settle_heap
settled = settle_heap() if sys.argv[1] == "settle" else None
def churn():  # training steps: activations (3 MB tensors) built up, then freed together
    for _ in range(4):
        kept = [torch.ones(3 << 18) for _ in range(10)]
        del kept
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(settled, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def prior() -> dict:
    from tabular_suite.incontext.prior import SyntheticPrior

    p = SyntheticPrior(seed=0)
    start = time.perf_counter()
    for step in range(20):
        p.sample(step, 8, 256, 128)
    return {"seconds_per_batch": (time.perf_counter() - start) / 20}


def tabpfn() -> dict:
    import numpy as np

    from tabular_suite import TabPFNClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 100)).astype(np.float32)
    y = (X[:, :5].sum(1) > 0).astype(int)
    clf = TabPFNClassifier(num_threads=1, random_state=0)
    clf.fit(X[:1000], y[:1000]).predict_proba(X[1000:])  # loads the weights once
    times = []
    for _ in range(3):
        start = time.perf_counter()
        clf.fit(X[:1000], y[:1000]).predict_proba(X[1000:])
        times.append(time.perf_counter() - start)
    return {"seconds": min(times)}


def heap() -> dict:
    def faults(*env):
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TABULAR_SUITE_SETTLE"))}
        environ.update(env)
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, "settle"], env=environ, capture_output=True, text=True, check=True
        ).stdout.split()
        return int(out[1])

    return {
        "settled": faults(),
        "user_thresholds": faults(("MALLOC_MMAP_THRESHOLD_", "131072"), ("MALLOC_TRIM_THRESHOLD_", "131072")),
    }


def budget() -> dict:
    import numpy as np
    import pandas as pd

    import tabular_suite

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.choice(["x", "y", "z"], 200)})
    y = np.where(2 * X["a"] + (X["c"] == "x") + rng.logistic(size=200) * 0.3 > 0.5, "yes", "no")
    result = tabular_suite.compare(
        X, y, models=["mlp"], cv=2, model_time_limit=0.2, ensemble=False, refit=False, num_threads=1, tracking=False
    )
    row = result.leaderboard.iloc[0]
    return {
        "status": row["status"],
        "fit_seconds_per_fold": float(row["fit_seconds"]),
        "epochs": [len(h) for h in result.histories["mlp"]],
    }


MEASURES = {"prior": prior, "tabpfn": tabpfn, "heap": heap, "budget": budget}


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _results import append_row, machine, read_rows, write_section

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--measures", nargs="+", choices=list(MEASURES), default=list(MEASURES))
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    if not a.write:
        import torch

        torch.set_num_threads(1)
        for name in a.measures:
            append_row(LOG, {"measure": name, **MEASURES[name](), "machine": machine()})
        return
    latest = {r["measure"]: r for r in read_rows(LOG)}
    lines = [
        HEADER,
        "",
        "Command: `python benchmarks/suite_timings.py && python benchmarks/suite_timings.py --write`; one "
        "thread; rows in benchmarks/_work/suite_timings.jsonl. What the tests once bounded; the tests now "
        "check the behaviour (see the script's docstring).",
        "",
        "| measure | figure | former test bound | machine |",
        "|---|---|---|---|",
    ]
    if "prior" in latest:
        r = latest["prior"]
        lines.append(f"| prior batch (8 x 256 rows) | {r['seconds_per_batch']:.3f} s | < 0.5 s | {r['machine']} |")
    if "tabpfn" in latest:
        r = latest["tabpfn"]
        lines.append(
            f"| TabPFN fit + predict, 1,000 x 100, best of 3 | {r['seconds']:.3f} s | < 2 s | {r['machine']} |"
        )
    if "heap" in latest:
        r = latest["heap"]
        lines.append(f"| minor page faults, settled heap | {r['settled']:,} | < 200 | {r['machine']} |")
        lines.append(
            f"| minor page faults, user's 128 KiB thresholds | {r['user_thresholds']:,} | > 20,000 | {r['machine']} |"
        )
    if "budget" in latest:
        r = latest["budget"]
        lines.append(
            f"| compare() MLP, 0.2 s model budget over 2 folds: fit s per fold (epochs per fold) | "
            f"{r['fit_seconds_per_fold']:.3f} s ({', '.join(map(str, r['epochs']))}) | < 40 epochs | "
            f"{r['machine']} |"
        )
    write_section(lines + [""])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
