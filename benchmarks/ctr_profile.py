"""Where a CTR training step goes (issue 25, point 1): AutoInt+ and FinalMLP at the vocabulary of
the 10-million-row stream of ``ctr_stream.py``, one thread.

For each model and setting, ``STEPS`` optimisation steps of ``BATCH`` rows (FuxiCTR's batch
size) are timed phase by phase, as the engine runs them: forward, embedding L2, backward
(including the embedding tables' gradients), making sparse gradients one entry per row, gradient
clipping, the dense optimizer (fused AdamW) and the sparse one (SparseAdam). Settings: today's
default (dense Adam, whole-table L2, fp32), ``sparse_embeddings=True`` (lazy Adam, L2 on the
looked-up rows) in fp32 and with bf16 autocast (``precision="bf16"``). The vocabulary is the
number of distinct values per field in the stream's 10M training rows (plus the data layer's
missing and unseen codes), counted once and cached in ``benchmarks/_work/ctr_vocab.json``.

Also measured: what ``fit_parquet`` spends per row before the model (reading the Parquet batch
and turning it into codes) on 300k rows of the same stream; the FLOPs per row of the dense
layers (forward and backward, counted by ``torch.utils.flop_counter``; the embedding lookups are
memory traffic, not FLOPs)
and this machine's one-thread GEMM rate in fp32 and bf16 (a 1024 x 512 x 512 product), so the
gap to the GEMM limit is visible.

    python benchmarks/ctr_profile.py && python benchmarks/ctr_profile.py --write
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import append_row, machine, read_rows, write_section  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
LOG = HERE / "logs" / "ctr_profile.jsonl"
VOCAB = WORK / "ctr_vocab.json"
STREAM = dict(n_users=1_000_000, n_items=200_000, seed=0)  # ctr_stream.py's FIELDS
N_ROWS, CHUNK, BATCH, STEPS, WARMUP = 10_000_000, 1_000_000, 1024, 40, 5
SETTINGS = {"dense fp32 (default)": (False, False), "sparse fp32": (True, False), "sparse bf16": (True, True)}
HEADER = "## Where a CTR training step goes: dense vs sparse embedding updates (issue 25)"


def vocabulary() -> dict:
    """Distinct values per field over the stream's 10M training rows (+2: missing, unseen)."""
    if VOCAB.exists():
        return json.loads(VOCAB.read_text())
    from tabular_suite.datasets import iter_ctr

    seen: dict[str, np.ndarray] = {}
    for chunk in iter_ctr(N_ROWS, chunk_rows=CHUNK, **STREAM):
        for col in chunk.X.columns:
            codes = np.unique(chunk.X[col].cat.codes.to_numpy())
            seen[col] = codes if col not in seen else np.union1d(seen[col], codes)
    out = {col: int(len(v)) + 2 for col, v in seen.items()}
    WORK.mkdir(exist_ok=True)
    VOCAB.write_text(json.dumps(out))
    return out


def build(model: str, cardinalities: list[int]):
    from tabular_suite import AutoIntClassifier, FinalMLPClassifier

    est = AutoIntClassifier(use_dnn=True) if model == "autoint_plus" else FinalMLPClassifier()
    return est._build_module(0, cardinalities, 1), est.embedding_l2, est.grad_clip


def training_flops_per_row(module, cardinalities: list[int]) -> float:
    """FLOPs of one training step's matrix products (forward and backward, counted by
    ``torch.utils.flop_counter``) per row; the embedding lookups are memory traffic, not FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    x_cat = torch.stack([torch.randint(0, c, (BATCH,)) for c in cardinalities], 1)
    with FlopCounterMode(display=False) as counter:
        module(torch.zeros(BATCH, 0), x_cat).float().sum().backward()
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops() / BATCH


def gemm_rate(dtype) -> float:
    a, b = torch.randn(1024, 512, dtype=dtype), torch.randn(512, 512, dtype=dtype)
    for _ in range(5):
        a @ b
    started, n = time.perf_counter(), 50
    for _ in range(n):
        a @ b
    return 2 * 1024 * 512 * 512 * n / (time.perf_counter() - started)


def profile_steps(model: str, cardinalities: list[int], sparse: bool, bf16: bool) -> dict:
    from tabular_suite.training.engine import _param_groups, _sparse_tables, clip_grad_norm

    torch.manual_seed(0)
    module, l2, grad_clip = build(model, cardinalities)
    module.train()
    tables = _sparse_tables(module, sparse)
    dense_opt = torch.optim.AdamW(_param_groups(module, 0.0, exclude=tables), lr=1e-3, fused=True)
    sparse_opt = torch.optim.SparseAdam(tables, lr=1e-3) if tables else None
    rng = torch.Generator().manual_seed(0)
    phases = dict.fromkeys(("forward", "l2", "backward", "coalesce", "clip", "adamw", "sparse_adam"), 0.0)
    x_num = torch.zeros(BATCH, 0)
    for step in range(WARMUP + STEPS):
        # Ids drawn uniformly over each vocabulary: the rows a batch touches are spread as in the
        # stream's long tail (the dense path's cost does not depend on which rows they are).
        x_cat = torch.stack([torch.randint(0, c, (BATCH,), generator=rng) for c in cardinalities], 1)
        y = torch.randint(0, 2, (BATCH,), generator=rng).float()
        marks = [time.perf_counter()]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = module(x_num, x_cat)[:, 0].float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
        marks.append(time.perf_counter())
        if sparse:
            penalty = module.embedding.looked_up_squared_norm(x_cat)
        else:
            penalty = sum(torch.dot(t.reshape(-1), t.reshape(-1)) for t in module.embedding.tables())
        loss = loss + 0.5 * l2 * penalty
        marks.append(time.perf_counter())
        dense_opt.zero_grad(set_to_none=True)
        if sparse_opt is not None:
            sparse_opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        for table in tables:
            table.grad = table.grad.coalesce()
        marks.append(time.perf_counter())
        clip_grad_norm(list(module.parameters()), grad_clip)
        marks.append(time.perf_counter())
        dense_opt.step()
        marks.append(time.perf_counter())
        if sparse_opt is not None:
            sparse_opt.step()
        marks.append(time.perf_counter())
        if step >= WARMUP:
            for key, begin, end in zip(phases, marks, marks[1:]):
                phases[key] += end - begin
    ms = {k: 1000 * v / STEPS for k, v in phases.items()}
    step_ms = sum(ms.values())
    n_params = sum(p.numel() for p in module.parameters())
    flops = training_flops_per_row(module, cardinalities)
    return {"phases_ms": ms, "step_ms": step_ms, "rows_per_s": BATCH / step_ms * 1000, "params": n_params,
            "flops_per_row": flops}  # fmt: skip


def input_cost_per_row() -> float:
    """Seconds per row that fit_parquet's reading and encoding cost (300k rows of the stream)."""
    import tempfile

    from tabular_suite import FinalMLPClassifier
    from tabular_suite.data.io import ParquetSource
    from tabular_suite.datasets import iter_ctr

    with tempfile.TemporaryDirectory(dir=WORK) as tmp:
        path = Path(tmp) / "part.parquet"
        chunk = next(iter(iter_ctr(300_000, chunk_rows=300_000, **STREAM)))
        chunk.X.assign(click=chunk.y).to_parquet(path, row_group_size=100_000)
        est = FinalMLPClassifier(max_epochs=1, num_threads=1)
        est.fit_parquet(path, "click", batch_rows=100_000, validation_rows=1_000)  # fits the preprocessing
        source = ParquetSource(path, batch_rows=100_000)
        started, rows = time.perf_counter(), 0
        for _, batch in source.batches():
            batch.pop("click")
            est._tensors(est.preprocessor_.transform(batch))
            rows += len(batch)
        return (time.perf_counter() - started) / rows


def run() -> None:
    torch.set_num_threads(1)
    vocab = vocabulary()
    cardinalities = list(vocab.values())
    done = {(r["model"], r["setting"]) for r in read_rows(LOG)}
    rates = {"fp32": gemm_rate(torch.float32), "bf16": gemm_rate(torch.bfloat16)}
    per_row_input = input_cost_per_row()
    for model in ("finalmlp", "autoint_plus"):
        for setting, (sparse, bf16) in SETTINGS.items():
            if (model, setting) in done:
                continue
            out = profile_steps(model, cardinalities, sparse, bf16)
            gemm = rates["bf16" if bf16 else "fp32"]
            row = {"model": model, "setting": setting, **out, "gemm_flops_per_s": gemm,
                   "gemm_limit_rows_per_s": gemm / out["flops_per_row"], "input_s_per_row": per_row_input,
                   "vocabulary": vocab, "batch": BATCH, "machine": machine(),
                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
            append_row(LOG, row)


def write(rows: list[dict]) -> None:
    vocab = rows[0]["vocabulary"]
    lines = [HEADER, "",
             f"Machine: {rows[0]['machine']}; one thread; batches of {rows[0]['batch']} rows (FuxiCTR's); "
             f"vocabulary of the 10M-row stream: {', '.join(f'{k} {v:,}' for k, v in vocab.items())}. "
             "Milliseconds per step by phase, as the engine runs them; rows/s = batch / step; the GEMM "
             "limit = this machine's one-thread GEMM rate / the training FLOPs per row of the matrix products.", "",
             "| model | setting | params | forward | L2 | backward | coalesce | clip | AdamW | SparseAdam | step ms "
             "| rows/s | MFLOP/row | GEMM limit rows/s | share of limit |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        p = r["phases_ms"]
        lines.append(
            f"| {r['model']} | {r['setting']} | {r['params'] / 1e6:.1f}M | {p['forward']:.1f} | {p['l2']:.1f} | "
            f"{p['backward']:.1f} | {p['coalesce']:.1f} | {p['clip']:.1f} | {p['adamw']:.1f} | {p['sparse_adam']:.1f} "
            f"| {r['step_ms']:.1f} | {r['rows_per_s']:,.0f} | {r['flops_per_row'] / 1e6:.2f} | "
            f"{r['gemm_limit_rows_per_s']:,.0f} | {r['rows_per_s'] / r['gemm_limit_rows_per_s']:.0%} |"
        )
    first = rows[0]
    lines += ["",
              f"One-thread GEMM rate (1024 x 512 x 512): fp32 {first['gemm_flops_per_s'] / 1e9:.0f} GFLOP/s"
              + "".join(f", bf16 {r['gemm_flops_per_s'] / 1e9:.0f} GFLOP/s" for r in rows[2:3]) + ". "
              f"Reading and encoding the Parquet rows (fit_parquet's input, before the model): "
              f"{first['input_s_per_row'] * 1e6:.1f} us per row ({1 / first['input_s_per_row']:,.0f} rows/s on its own).",
              "", "Command: `python benchmarks/ctr_profile.py && python benchmarks/ctr_profile.py --write` "
              "(rows in benchmarks/logs/ctr_profile.jsonl)."]  # fmt: skip
    write_section(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="Render the measured rows into RESULTS.md.")
    args = parser.parse_args()
    if args.write:
        write(read_rows(LOG))
    else:
        run()


if __name__ == "__main__":
    main()
