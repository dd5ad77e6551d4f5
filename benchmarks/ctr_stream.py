"""Out-of-core training: AutoInt+ and FinalMLP on 10 million synthetic CTR rows in Parquet.

The data come from ``tabular_suite.datasets.iter_ctr`` (8 categorical fields, power-law
frequencies, 1,000,000 users and 200,000 items, known click probability), written once as
10 Parquet files of 1M rows (row groups of 250k) plus a 200k-row test file from the same
model. Each model trains with ``fit_parquet`` (batches of 262,144 rows read from disk, one
epoch, 100k validation rows) in a child process whose peak resident memory (``ru_maxrss``)
is reported with the rows/second of the training epoch and the test AUC next to the
Bayes-optimal AUC. 1 thread.

    python benchmarks/ctr_stream.py            # writes the data on first use (~1.5 GB of disk)
    python benchmarks/ctr_stream.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
DATA = WORK / "ctr10m"
N_ROWS, N_TEST, CHUNK = 10_000_000, 200_000, 1_000_000
FIELDS = dict(n_users=1_000_000, n_items=200_000, seed=0)
HEADER = "## Out-of-core CTR training: 10M rows from Parquet (issue 4)"


def write_data() -> None:

    from tabular_suite.datasets import expected_auc, iter_ctr

    if (DATA / "done.json").exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "train").mkdir(exist_ok=True)
    probabilities = []
    for i, chunk in enumerate(iter_ctr(N_ROWS + N_TEST, chunk_rows=CHUNK, **FIELDS)):
        df = chunk.X.copy()
        df["click"] = chunk.y
        if i * CHUNK >= N_ROWS:  # the last chunk: test rows
            df.iloc[:N_TEST].to_parquet(DATA / "test.parquet")
            probabilities = chunk.probability[:N_TEST]
        else:
            df.to_parquet(DATA / "train" / f"part-{i:02d}.parquet", row_group_size=250_000)
    (DATA / "done.json").write_text(json.dumps({"bayes_auc": expected_auc(probabilities)}))


def child(model: str) -> None:
    """Runs in a fresh process: train, then print one JSON line with memory and speed."""
    import pandas as pd
    import torch
    from sklearn.metrics import log_loss, roc_auc_score

    import tabular_suite

    torch.set_num_threads(1)
    params = dict(max_epochs=1, num_threads=1, random_state=0)
    est = (
        tabular_suite.AutoIntClassifier(use_dnn=True, **params)
        if model == "autoint_plus"
        else tabular_suite.FinalMLPClassifier(**params)
    )
    started = time.perf_counter()
    est.fit_parquet(DATA / "train", "click", batch_rows=262_144, validation_rows=100_000)
    fit_seconds = time.perf_counter() - started
    peak_train = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    test = pd.read_parquet(DATA / "test.parquet")
    y = test.pop("click").to_numpy()
    started = time.perf_counter()
    p = est.predict_proba(test)[:, 1]
    predict_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "model": model,
                "fit_seconds": fit_seconds,
                "epoch_seconds": est.history_[0]["seconds"],
                "rows_per_s": est.history_[0]["rows_per_s"],
                "peak_rss_mb_after_fit": peak_train,
                "test_auc": float(roc_auc_score(y, p)),
                "test_logloss": float(log_loss(y, p)),
                "predict_rows_per_s": len(y) / predict_seconds,
                "n_params": est.n_params_,
                "vocabulary": [len(c) for c in est.preprocessor_.categories],
            }
        )
    )


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _results import append_row, machine, read_rows, write_section

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["autoint_plus", "finalmlp"])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    if a.child:
        child(a.child)
        return
    log = WORK / "ctr_stream.jsonl"
    rows = read_rows(log)
    if a.write:
        lines = [
            HEADER,
            "",
            "Command: `python benchmarks/ctr_stream.py && python benchmarks/ctr_stream.py --write`",
            "",
            "10,000,000 training rows (10 Parquet files, 8 categorical fields, 1M users, 200k items) read in "
            "batches of 262,144 rows; one epoch with FuxiCTR's defaults (batch 1024, Adam lr 1e-3, embedding "
            "dim 16); 100k rows held out for validation; 1 thread. Peak RSS is the training process's "
            "maximum resident memory (Python, torch, the model with its 1.2M-row embedding tables, one batch, "
            "the validation rows). For scale: the training table alone takes "
            f"{N_ROWS * 9 * 8 / 2**20:,.0f} MB in memory as int64 columns.",
            "",
            "| model | rows/s (training epoch) | epoch s | peak RSS MB | test AUC | Bayes AUC | test logloss | params | machine |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            x = r["result"]
            lines.append(
                f"| {x['model']} | {x['rows_per_s']:,.0f} | {x['epoch_seconds']:.0f} | {x['peak_rss_mb_after_fit']:,.0f} | "
                f"{x['test_auc']:.4f} | {r['bayes_auc']:.4f} | {x['test_logloss']:.4f} | {x['n_params']:,} | {r['machine']} |"
            )
        write_section(lines)
        return
    write_data()
    bayes = json.loads((DATA / "done.json").read_text())["bayes_auc"]
    done = {r["result"]["model"] for r in rows}
    for model in a.models:
        if model in done:
            continue
        out = subprocess.run([sys.executable, __file__, "--child", model], capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        append_row(log, {"machine": machine(), "bayes_auc": bayes, "result": result})


if __name__ == "__main__":
    # As the CLI does: this process trains, so it opts in to the settled heap (the library never
    # changes the allocator by itself); peers run in their own processes with glibc's defaults.
    from tabular_suite.training.device import settle_heap

    settle_heap()
    main()
