"""Device, precision and CPU-thread policy."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform

import torch

__all__ = ["resolve_device", "autocast_dtype", "cpu_has_native_bf16", "thread_limit", "settle_heap"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda > mps > cpu; anything else is passed to :class:`torch.device`.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a valid torch device; use 'auto', 'cpu' or 'cuda'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; use device='auto'.")
    return resolved


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX). Elsewhere bf16
    autocast still runs, emulated, and far slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = full fp32).

    ``"auto"`` is bf16 where the hardware multiplies bf16: CUDA, and a CPU with AVX512-BF16 or
    AMX (:func:`cpu_has_native_bf16`; one thread, TabM's epoch 2.3x as fast as in fp32 on an
    AVX512-BF16 EPYC, its fit 2.3x and prediction 3.0x on an AMX Xeon at the same accuracy:
    benchmarks/RESULTS.md); fp32 elsewhere (MPS, and CPUs that would emulate bf16, far slower
    than fp32). ``"bf16"`` forces bf16 autocast, ``"fp32"`` disables it. Under autocast the
    weights, the optimizer and the loss stay fp32.

    >>> autocast_dtype("fp32", torch.device("cpu")) is None
    True
    >>> autocast_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if cpu_has_native_bf16() else None)
    True
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}.")
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


_HEAP_SETTLED = False
#: The glibc malloc thresholds :func:`settle_heap` fixes, keyed by the environment variables
#: that set them (``benchmarks/ctr.py --peer-heap`` gives them to FuxiCTR this way).
HEAP_THRESHOLDS = {"MALLOC_MMAP_THRESHOLD_": 32 << 20, "MALLOC_TRIM_THRESHOLD_": 64 << 20}


def settle_heap() -> bool:
    """Let glibc keep freed tensor memory for reuse instead of handing it back to the OS.

    glibc's malloc serves blocks above an adaptive threshold (128 KiB at start) with
    ``mmap`` and returns freed memory above a trim threshold to the OS, so a training loop
    whose tensors are a few MiB can fault the same pages in again at every step (AutoInt+ on
    a 16-field table: ~1,400 page faults a step and ~15% of the epoch). This fixes the two
    thresholds at the values glibc's own adaptation can reach, ``M_MMAP_THRESHOLD`` 32 MiB
    (its maximum) and ``M_TRIM_THRESHOLD`` 64 MiB.

    It changes the allocator of the whole process, so no library call does it: it is an
    explicit opt-in for a process that trains (the ``tabular-suite`` CLI and the benchmarks
    call it at start; call it yourself in a training script). Does nothing off glibc, when
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` is set (the user's choice wins)
    or when ``TABULAR_SUITE_SETTLE_HEAP=0``. Returns whether the thresholds are ours.

    Examples
    --------
    >>> isinstance(settle_heap(), bool)
    True
    """
    global _HEAP_SETTLED
    if _HEAP_SETTLED:
        return True
    if (
        os.environ.get("TABULAR_SUITE_SETTLE_HEAP", "1") == "0"
        or platform.libc_ver()[0] != "glibc"
        or any(k in os.environ for k in HEAP_THRESHOLDS)
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    _HEAP_SETTLED = bool(mallopt(m_mmap_threshold, HEAP_THRESHOLDS["MALLOC_MMAP_THRESHOLD_"])) and bool(
        mallopt(m_trim_threshold, HEAP_THRESHOLDS["MALLOC_TRIM_THRESHOLD_"])
    )
    return _HEAP_SETTLED


@contextlib.contextmanager
def thread_limit(num_threads: int):
    """Run the block with ``num_threads`` torch threads, restoring the previous setting after.

    ``num_threads`` is resolved by the caller (:func:`~tabular_suite.core.sklearn_glue.resolve_num_threads`).

    Examples
    --------
    >>> with thread_limit(1):
    ...     torch.get_num_threads()
    1
    """
    n = int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads!r}.")
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if n != previous:
            torch.set_num_threads(previous)
