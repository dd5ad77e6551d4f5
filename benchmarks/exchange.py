"""What one data-parallel step's gradient exchange costs, by path (issue 25).

Two processes under torchrun, 1 thread each, exchange FinalMLP-sized gradients as the engine
does (``Ranks.average_gradients``): 571,382 dense values (FinalMLP's dense parameters on the
2M-row stream of ``benchmarks/ctr_stream.py``) and a sparse embedding table of 136,145 x 10
with about 3,000 looked-up rows a rank (drawn anew each step), both ranks arriving together
(nothing else runs: the figures are the exchange alone, not the wait for a slower rank). The
paths: shared memory with the ranks meeting at a spin on the file's header (the default on
x86-64), shared memory with a gloo all-gather as the meeting (``TABULAR_SUITE_SPIN_BARRIER=0``,
the default elsewhere), and the network path (``TABULAR_SUITE_SHARED_GRADIENTS=0``: a gloo
all-reduce and all-gather, as between machines). Also the cost of a gloo all-gather of a few
integers alone (what a meeting cost before the spin).

    python benchmarks/exchange.py            # measure (about a minute) and write RESULTS.md

Rows are logged to benchmarks/logs/exchange.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
LOG = HERE / "logs" / "exchange.jsonl"
HEADER = "## The gradient exchange of one data-parallel step (issue 25)"
PATHS = {
    "shared memory, spin": {},
    "shared memory, gloo all-gather": {"TABULAR_SUITE_SPIN_BARRIER": "0"},
    "network (gloo all-reduce + all-gather)": {"TABULAR_SUITE_SHARED_GRADIENTS": "0"},
}
DENSE, TABLE, ROWS, STEPS = 571_382, (136_145, 10), 3_000, 300


def child() -> None:
    """A rank: time ``STEPS`` exchanges (after 30 to warm up); print rank 0's figures."""
    import torch
    import torch.distributed as dist

    from tabular_suite.training.distributed import Ranks, init_from_env

    torch.set_num_threads(1)
    init_from_env()
    ranks = Ranks()
    dense = torch.nn.Parameter(torch.zeros(DENSE))
    table = torch.nn.Parameter(torch.zeros(*TABLE))
    generator = torch.Generator().manual_seed(ranks.rank)
    times = []
    for step in range(30 + STEPS):
        dense.grad = torch.randn(DENSE, generator=generator)
        rows = torch.randint(0, TABLE[0], (ROWS,), generator=generator)
        values = torch.randn(ROWS, TABLE[1], generator=generator)
        table.grad = torch.sparse_coo_tensor(rows[None], values, TABLE).coalesce()
        ranks.any(False)  # both ranks start the exchange together
        started = time.perf_counter()
        ranks.average_gradients([dense, table], [table])
        if step >= 30:
            times.append(time.perf_counter() - started)
    small = torch.zeros(4, dtype=torch.long)
    out = torch.empty(4 * ranks.world, dtype=torch.long)
    gathers = []
    for step in range(30 + STEPS):
        ranks.any(False)
        started = time.perf_counter()
        dist.all_gather_into_tensor(out, small)
        if step >= 30:
            gathers.append(time.perf_counter() - started)
    if ranks.rank == 0:
        times.sort()
        gathers.sort()
        print("RESULT " + json.dumps({
            "median_ms": 1e3 * times[len(times) // 2], "p90_ms": 1e3 * times[int(0.9 * len(times))],
            "gather_median_ms": 1e3 * gathers[len(gathers) // 2],
            "exchange": "shared memory" if ranks._shared else "network",
        }), flush=True)  # fmt: skip


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _results import append_row, machine, read_rows, write_section

    if "--child" in sys.argv:
        child()
        return
    rows = [r for r in read_rows(LOG) if r["path"] in PATHS]
    done = {r["path"] for r in rows}
    for path, env in PATHS.items():
        if path in done:
            continue
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__, "--child"]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env})
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        result = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")))
        row = {"path": path, "machine": machine(), **result}
        append_row(LOG, row)
        rows.append(row)
    lines = [
        HEADER,
        "",
        "Command: `python benchmarks/exchange.py`. Two processes, 1 thread each, exchange FinalMLP-sized gradients "
        f"with `Ranks.average_gradients` ({DENSE:,} dense values and a {TABLE[0]:,} x {TABLE[1]} sparse table with "
        f"{ROWS:,} rows a rank), both arriving together; {STEPS} steps, milliseconds a step.",
        "",
        "| path | median ms | p90 ms | gloo all-gather of 4 integers, median ms | machine |",
        "|---|---:|---:|---:|---|",
    ]
    for r in sorted(rows, key=lambda r: list(PATHS).index(r["path"])):
        lines.append(
            f"| {r['path']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['gather_median_ms']:.2f} | {r['machine']} |"
        )
    write_section(lines)


if __name__ == "__main__":
    main()
