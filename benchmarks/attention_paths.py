"""What the attention path costs FT-Transformer and ExcelFormer on CPU (issue 23: compare()'s
prediction cost is mostly its deep fold models'): one model with compare()'s "fast" settings
(d_token 64, 2 blocks, 8 heads; 21 tokens), fitted for 3 epochs on a 2,000 x 20 synthetic
table, then the median of 7 warm predictions of 1,000 rows and the fit's seconds, one thread
(``--precision bf16``: with bf16 autocast).

Run it at two commits on the same machine, nothing else running, to compare code paths
(e.g. ``git worktree add ../before <rev>`` and ``PYTHONPATH=../before python
benchmarks/attention_paths.py``); it prints one line per model and writes nothing::

    python benchmarks/attention_paths.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _results import machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tabular_suite
    from tabular_suite.core.registry import get_model

    root = Path(tabular_suite.__file__).resolve().parent.parent
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    print(f"# {machine()}, tabular_suite at {rev.stdout.strip() or root}, precision {args.precision}")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X["x0"] + X["x1"] * X["x2"] > 0).astype(int).to_numpy()
    batch = pd.DataFrame(rng.normal(size=(1000, 20)), columns=X.columns)
    for key in ("ft_transformer", "excelformer"):
        spec = get_model(key)
        model = spec.classifier(
            **spec.fast_params, max_epochs=3, patience=100, num_threads=1, random_state=0, precision=args.precision
        )
        start = time.perf_counter()
        model.fit(X, y)
        fit_s = time.perf_counter() - start
        model.predict_proba(batch)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            model.predict_proba(batch)
            times.append(time.perf_counter() - start)
        print(f"{key}: predict 1,000 rows {1e3 * np.median(times):.1f} ms (median of 7); fit 3 epochs {fit_s:.2f} s")


if __name__ == "__main__":
    main()
