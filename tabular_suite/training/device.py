"""Device, precision and CPU-thread policy."""

from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["resolve_device", "autocast_dtype", "default_num_threads", "thread_limit"]


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


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = full fp32).

    ``"auto"`` is bf16 on CUDA and fp32 elsewhere; ``"bf16"`` forces bf16 autocast (also on
    CPU, where bf16 matmuls are several times faster on recent processors); ``"fp32"`` disables it.
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}.")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


def default_num_threads() -> int:
    """Threads used when ``num_threads=None``.

    ``TABULAR_SUITE_NUM_THREADS`` wins when set. Otherwise one core is left free for the
    data pipeline and other processes (capped at 16): on small machines an oversubscribed
    torch thread pool can slow small-batch training down by an order of magnitude.
    """
    env = os.environ.get("TABULAR_SUITE_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"TABULAR_SUITE_NUM_THREADS must be an integer, got {env!r}.") from None
    return max(1, min(_available_cpus() - 1, 16))


@contextlib.contextmanager
def thread_limit(num_threads: int | None):
    """Run the block with ``num_threads`` torch threads, restoring the previous setting after.

    Examples
    --------
    >>> with thread_limit(1):
    ...     torch.get_num_threads()
    1
    """
    n = default_num_threads() if num_threads is None else int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1 or None, got {num_threads!r}.")
    previous = torch.get_num_threads()
    if n != previous:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if n != previous:
            torch.set_num_threads(previous)
