"""bf16 autocast against fp32 for our deep tabular models, on one machine: what
``precision="auto"`` buys where the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX).

Protocol: the sure-bet suite's (benchmarks/suite.py): per dataset and seed an 80/20 split (stratified
for classification), each model with its defaults on the same 80% (early stopping on its default
validation fraction), one thread, the fit capped at ``--fit-limit`` seconds; the same fit run with
``precision="fp32"`` and ``precision="bf16"`` one after the other. Rows go to
``benchmarks/logs/precision.jsonl`` (resumable); ``--write`` renders them into RESULTS.md: per model,
the test accuracy (RMSE for regression) and log loss of each precision, and the fit and prediction
time ratios. ``--sasrec``: SASRec on Amazon Games at the paper's setting (benchmarks/sasrec.py's
``games``: 200 epochs, sampled evaluation), fp32 then bf16.

    python benchmarks/precision.py --data ../shared/data/tabular --max-rows 1100
    python benchmarks/precision.py --sasrec --seqrec-data ../shared/data/seqrec
    python benchmarks/precision.py --write
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import suite  # noqa: E402
from _results import append_row, machine, read_rows, write_section  # noqa: E402

LOG = suite.HERE / "logs" / "precision.jsonl"
PRECISIONS = ("fp32", "bf16")
MODELS = ("mlp", "tabm", "tabm_mini_pl")


def variant(model: str, precision: str) -> str:
    """Register ``model`` at ``precision`` as a suite variant; its name in the rows."""
    base, params = suite.VARIANTS.get(model, (model, {}))
    name = f"{model}@{precision}"
    suite.VARIANTS[name] = (base, {**params, "precision": precision})
    return name


def run(args) -> None:
    import torch

    torch.set_num_threads(1)
    manifest = suite.datasets(args.data)
    manifest = manifest[manifest.rows <= args.max_rows]
    here = machine()
    done = {(r["dataset"], r["seed"], r["model"]) for r in read_rows(LOG) if r.get("machine") == here}
    for entry in manifest.itertuples():
        data = None
        for seed in args.seeds:
            for model in args.models:
                for precision in PRECISIONS:
                    name = variant(model, precision)
                    if (entry.name, seed, name) in done:
                        continue
                    data = data or suite.load(args.data, entry)
                    append_row(LOG, suite.measure(name, entry, seed, data, args))


def run_sasrec(args) -> None:
    import sasrec
    import torch

    torch.set_num_threads(1)
    here = machine()
    done = {r["model"] for r in read_rows(LOG) if r.get("dataset") == "games" and r.get("machine") == here}
    log = sasrec.load(args.seqrec_data, "games")
    for precision in PRECISIONS:
        if f"sasrec@{precision}" in done:
            continue
        settings = argparse.Namespace(epochs=200, seed=sasrec.SEED, precision=precision)
        result = sasrec.run_ours(log, "games", settings)
        append_row(
            LOG, {"dataset": "games", "model": f"sasrec@{precision}", "machine": here, "commit": suite.COMMIT, **result}
        )


def write() -> None:
    rows = [r for r in read_rows(LOG) if "error" not in r]
    seq = [r for r in rows if r["model"].startswith("sasrec@")]
    df = pd.DataFrame([r for r in rows if not r["model"].startswith("sasrec@")])
    df[["base", "precision"]] = df.model.str.split("@", expand=True)
    lines = [
        "## Precision: bf16 autocast against fp32 (deep tabular models)",
        "",
        "Command: `python benchmarks/precision.py --data ../shared/data/tabular --max-rows 1100 && "
        "python benchmarks/precision.py --write`. The sure-bet suite's protocol (80/20 split per seed, "
        "each model's defaults, early stopping on its validation rows, 1 thread), the fit run with "
        '`precision="fp32"` and with `precision="bf16"` (autocast: products in bf16, weights, optimizer '
        "and loss in fp32) one after the other on the same machine. Speed-ups are the median over the "
        "datasets of the fp32 time over the bf16 time (fit: the whole early-stopped fit, so a different "
        "number of epochs counts too; predict: the test rows).",
        "",
        "| machine | model | datasets x seeds | accuracy fp32 | accuracy bf16 | bf16 better / equal / worse "
        "| log loss fp32 | log loss bf16 | fit speed-up | predict speed-up |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for (where, base), g in df.groupby(["machine", "base"]):
        wide = g.pivot_table(
            index=["dataset", "seed"], columns="precision", values=["primary", "log_loss", "fit_s", "predict_s"]
        )
        wide = wide.dropna()
        if wide.empty:
            continue
        acc, loss = wide["primary"], wide["log_loss"]
        better, equal = int((acc.bf16 > acc.fp32).sum()), int((acc.bf16 == acc.fp32).sum())
        worse = len(acc) - better - equal
        fit = np.median(wide["fit_s"].fp32 / wide["fit_s"].bf16)
        pred = np.median(wide["predict_s"].fp32 / wide["predict_s"].bf16.clip(lower=1e-3))
        lines.append(
            f"| {where} | {base} | {len(acc)} | {acc.fp32.mean():.4f} | {acc.bf16.mean():.4f} | "
            f"{better} / {equal} / {worse} | {loss.fp32.mean():.4f} | {loss.bf16.mean():.4f} | {fit:.2f}x | {pred:.2f}x |"
        )
    if seq:
        lines += [
            "",
            "SASRec on Amazon Games at the paper's setting (`python benchmarks/precision.py --sasrec`: "
            "benchmarks/sasrec.py's `games`, 200 epochs, seed 0, sampled HR@10 / NDCG@10 on the test items; "
            "s/epoch without validation). Its products (d 50, one head) are too small for bf16 to pay on a "
            'CPU, so SASRec\'s `precision="auto"` stays fp32 there:',
            "",
            "| machine | precision | HR@10 | NDCG@10 | s/epoch | fit s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in seq:
            lines.append(
                f"| {r['machine']} | {r['precision']} | {r['sampled']['HR@10']:.4f} | {r['sampled']['NDCG@10']:.4f} | "
                f"{r['sec_per_epoch']:.2f} | {r['fit_seconds']:.0f} |"
            )
    write_section(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max-rows", type=int, default=1100, help="datasets with at most this many rows")
    parser.add_argument("--fit-limit", type=float, default=300.0)
    parser.add_argument("--sasrec", action="store_true", help="SASRec on Amazon Games instead of the tables")
    parser.add_argument(
        "--seqrec-data", type=Path, default=Path(os.environ.get("SEQREC_DATA", "../shared/data/seqrec"))
    )
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    args.peer_python = None
    if args.write:
        write()
    elif args.sasrec:
        run_sasrec(args)
    else:
        run(args)


if __name__ == "__main__":
    sys.exit(main())
