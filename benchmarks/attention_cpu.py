"""The compiled attention kernel against PyTorch's CPU path on this machine's CPU (issue 23).

``tabular_suite/nn/_attention.cpp`` works on 16-lane vectors (one AVX-512 register). It was
measured faster than PyTorch's path on an Intel Xeon with AVX-512/AMX (RESULTS.md, "FT-Transformer's
and ExcelFormer's attention through the compiled kernel"); this measures both paths on the
machine it runs on, one thread, fp32:

- the attention op alone (``_NativeAttention`` against ``_AttentionCPU``, what
  ``TABULAR_SUITE_NATIVE=0`` runs) on compare()'s "fast" shapes: 256 rows a chunk, 8 heads of
  dimension 8 (d_token 64) over 11, 19 and 33 tokens, and 1-4 heads of larger dimensions;
  inference, causal inference (ExcelFormer) and a training step with dropout 0.1 (forward and
  backward), best of 10 (5 for training);
- FT-Transformer and ExcelFormer with compare()'s "fast" settings fitted for 3 epochs on a
  2,000 x 20 synthetic table: the fit's seconds and a warm 1,000-row prediction (best of 5),
  with the kernel forced on (``TABULAR_SUITE_NATIVE=1``) and off (``=0``).

    python benchmarks/attention_cpu.py   # measure and update RESULTS.md
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from _results import machine, write_section  # noqa: E402

HEADER = "## The compiled attention kernel against PyTorch's CPU path, per CPU (issue 23)"
SHAPES = ((256, 11, 8, 8), (256, 19, 8, 8), (256, 33, 8, 8), (256, 19, 4, 16), (256, 19, 2, 32), (256, 19, 1, 64))


def best_ms(fn, repeats: int = 10) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def shape_times(n: int, t: int, h: int, d: int) -> list[float]:
    """ms of (kernel, PyTorch) for inference, causal inference and a training step, in that order."""
    from tabular_suite.nn import blocks

    q, k, v = (torch.randn(n, t, h, d) for _ in range(3))
    scale = d**-0.5
    times = []
    for causal in (False, True):
        with torch.inference_mode():
            times.append(best_ms(lambda c=causal: blocks._NativeAttention.apply(q, k, v, scale, c, 0.0)))
            times.append(best_ms(lambda c=causal: blocks._AttentionCPU.apply(q, k, v, 0.0, c, scale, c)))
    grads = [x.clone().requires_grad_() for x in (q, k, v)]
    for path in (
        lambda: blocks._NativeAttention.apply(*grads, scale, False, 0.1),
        lambda: blocks._AttentionCPU.apply(*grads, 0.1, False, scale, False),
    ):
        times.append(best_ms(lambda: path().sum().backward(), 5))  # noqa: B023 - called before the next path
    return times


def op_rows() -> list[str]:
    lines = []
    for n, t, h, d in SHAPES:
        times = shape_times(n, t, h, d)
        cells = " | ".join(f"{a:.2f} | {b:.2f}" for a, b in zip(times[::2], times[1::2]))
        lines.append(f"| {t} x {h} x {d} | {cells} |")
    return lines


def model_rows() -> list[str]:
    import tabular_suite

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X["x0"] + X["x1"] * X["x2"] + rng.normal(size=2000) > 0).astype(int).to_numpy()
    batch = X.iloc[:1000]
    lines = []
    for name in ("ft_transformer", "excelformer"):
        cells = []
        for setting in ("1", "0"):
            os.environ["TABULAR_SUITE_NATIVE"] = setting
            spec = tabular_suite.get_model(name)
            est = spec.estimator_class("classification")(
                max_epochs=3, patience=None, random_state=0, num_threads=1, device="cpu", tracking=False,
                **spec.fast_params,
            )  # fmt: skip
            start = time.perf_counter()
            est.fit(X, y)
            fit = time.perf_counter() - start
            cells += [best_ms(lambda e=est: e.predict_proba(batch), 5), fit]
        lines.append(f"| {name} | {cells[0]:.1f} | {cells[2]:.1f} | {cells[1]:.2f} | {cells[3]:.2f} |")
    os.environ.pop("TABULAR_SUITE_NATIVE")
    return lines


def main() -> None:
    from tabular_suite.nn import native

    torch.set_num_threads(1)
    os.environ["TABULAR_SUITE_NATIVE"] = "1"
    if native.load() is None:
        raise SystemExit(f"the kernel does not build here: {native.status()}")
    ops = op_rows()
    models = model_rows()
    flags = "AVX-512" if native._wide_vectors() else "no AVX-512"
    lines = [
        HEADER,
        "",
        f"Machine: {machine()} ({flags}). One thread, fp32. Command: `python benchmarks/attention_cpu.py`.",
        "",
        "The attention op, ms per call of 256 rows (best of 10; training: forward and backward with dropout 0.1, "
        "best of 5):",
        "",
        "| tokens x heads x head dim | inference: kernel | PyTorch | causal: kernel | PyTorch | "
        "training: kernel | PyTorch |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *ops,
        "",
        'compare()\'s "fast" models on a 2,000 x 20 synthetic table (3 epochs):',
        "",
        "| model | predict 1,000 rows, ms: kernel | PyTorch | fit 3 epochs, s: kernel | PyTorch |",
        "|---|---:|---:|---:|---:|",
        *models,
    ]
    write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
