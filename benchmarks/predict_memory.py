"""Peak memory of ``tabular-suite predict`` as the file grows (issue 22, point 3).

A 20-column numeric CSV of 100,000 and 1,000,000 rows is predicted by a small MLP regressor with
the default chunks (100,000 rows) and, for comparison, in one chunk holding the whole file (what
``predict`` did before it streamed). Peak memory is the maximum resident set size of the CLI
process (``ru_maxrss`` of the child), one thread. Rows go to benchmarks/_work/predict_memory.jsonl.

    python benchmarks/predict_memory.py && python benchmarks/predict_memory.py --write
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOG = HERE / "_work" / "predict_memory.jsonl"
HEADER = "## predict: peak memory as the file grows (issue 22)"

_MEASURE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if proc.returncode:
    sys.exit(proc.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _make_csv(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    for start in range(0, rows, 100_000):
        block = pd.DataFrame(
            rng.normal(size=(min(100_000, rows - start), 20)).round(5), columns=[f"x{i}" for i in range(20)]
        )
        block.to_csv(path, mode="a", header=start == 0, index=False)


def measure(rows_list: list[int]) -> None:
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(HERE))
    from _results import append_row, machine

    import tabular_suite

    work = Path(tempfile.mkdtemp(prefix="predict_memory_"))
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(5_000, 20)), columns=[f"x{i}" for i in range(20)])
    tabular_suite.MLPRegressor(max_epochs=2, num_threads=1, random_state=0).fit(X, X.sum(axis=1)).save(work / "m.tsm")
    env = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    for rows in rows_list:
        data = work / f"rows_{rows}.csv"
        _make_csv(data, rows)
        for label, chunk in (("chunks of 100,000 rows", 100_000), ("whole file in one chunk", rows)):
            command = [sys.executable, "-m", "tabular_suite.cli.app", "predict", work / "m.tsm", data,
                       "-o", work / "p.csv", "--force", "--quiet", "--chunk-rows", str(chunk)]  # fmt: skip
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, command)], env=env, capture_output=True,
                                 text=True, check=True)  # fmt: skip
            append_row(LOG, {"rows": rows, "mode": label, "peak_mib": int(out.stdout.split()[-1]) / 1024,
                             "seconds": time.perf_counter() - start, "file_mib": data.stat().st_size / 2**20,
                             "machine": machine()})  # fmt: skip
        data.unlink()


def write() -> None:
    sys.path.insert(0, str(HERE))
    from _results import read_rows, write_section

    latest = {(r["rows"], r["mode"]): r for r in read_rows(LOG)}
    lines = [
        HEADER,
        "",
        "Command: `python benchmarks/predict_memory.py && python benchmarks/predict_memory.py --write`; a "
        "20-column numeric CSV, an MLP regressor, one thread; peak = maximum resident set size of the "
        "`tabular-suite predict` process (Python, torch and the model included).",
        "",
        "| rows | file MiB | read | peak MiB | seconds | machine |",
        "|---|---|---|---|---|---|",
    ]
    for (rows, mode), r in sorted(latest.items()):
        lines.append(
            f"| {rows:,} | {r['file_mib']:.0f} | {mode} | {r['peak_mib']:.0f} | {r['seconds']:.1f} | {r['machine']} |"
        )
    write_section(lines + [""])
    print("\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--write", action="store_true")
    a = p.parse_args()
    write() if a.write else measure(a.rows)
