"""Native CPU kernels, compiled once per machine with its C++ compiler.

One kernel today: attention over few tokens per sample (``_attention.cpp``, with dropout on the
probabilities and an optional causal mask; AutoInt's interacting layers and FT-Transformer's
and ExcelFormer's attention go through it on CPU). It is plain C++ (no PyTorch headers), compiled for
this CPU (``-march=native``, OpenMP when available) into a cache folder and loaded with
:mod:`ctypes`; the file name carries a hash of the source, the compiler, the flags and the
CPU, so a shared home folder never hands one machine another's build. Without a compiler, or
when the build fails, :func:`load` returns ``None`` and the callers use PyTorch ops (same
results up to rounding); :func:`status` says why.

Building is explicit with :func:`build` (``tabular_suite.nn.native.build()``); otherwise the
first layer that needs the kernel builds it. Either way a compile (not a cache hit) prints one
line to stderr, so its one-off cost is never a silent part of a timed fit: the comparison
builds it before its timed folds start.

The kernel works on 16-lane vectors, one AVX-512 register: it is used on x86 CPUs with
AVX-512 only, where it was measured faster than PyTorch's path (benchmarks/RESULTS.md,
"FT-Transformer's and ExcelFormer's attention through the compiled kernel": Intel Xeon with
AMX). On an AVX2-only CPU (2-core AMD EPYC, Zen 1: each vector two AVX2 halves, short head
dims and token counts padded to 16) it was 1.5-3.7x slower than PyTorch's path, at inference
and in training with dropout (benchmarks/attention_cpu.py), so there it is left unbuilt.

Environment: ``TABULAR_SUITE_NATIVE=0`` turns the kernels off, ``=1`` on wherever they build
(default: on CPUs with AVX-512); ``TABULAR_SUITE_CACHE`` moves the cache (default
``$XDG_CACHE_HOME/tabular_suite`` or ``~/.cache/tabular_suite``); ``CXX`` picks the compiler.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["build", "cache_dir", "load", "status"]

SOURCE = Path(__file__).with_name("_attention.cpp")
_BASE_FLAGS = ("-O3", "-std=c++17", "-fno-math-errno", "-fno-trapping-math", "-shared", "-fPIC")
# Tried in order: the first set that compiles is used.
_FLAG_SETS = (("-march=native", "-fopenmp"), ("-march=native",), ())
_lock = threading.Lock()
_state: dict = {}


def cache_dir() -> Path:
    """Where compiled kernels are kept.

    Examples
    --------
    >>> cache_dir().name
    'native'
    """
    root = (
        os.environ.get("TABULAR_SUITE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tabular_suite"
    )
    return Path(root) / "native"


def _compiler() -> str | None:
    cxx = os.environ.get("CXX")
    if cxx:
        return cxx
    return next((found for name in ("c++", "g++", "clang++") if (found := shutil.which(name))), None)


def _cpu() -> str:
    """The CPU's name and feature flags (what ``-march=native`` compiles for)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = [line for line in info.splitlines() if line.startswith(("model name", "flags", "Features"))]
        return platform.machine() + "\n" + "\n".join(dict.fromkeys(lines))
    except OSError:
        return platform.machine() + platform.processor()


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32, f32, u64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_uint64
    sizes = [i64, i32, i32, i32, f32]  # n, h, t, d, scale
    # (..., causal, dropout rate, seed, threads) and (..., dropout rate, seed, threads)
    lib.ts_attention_forward.argtypes = [i32, *[p] * 9, *sizes, i32, f32, u64, i32]
    lib.ts_attention_backward.argtypes = [i32, *[p] * 15, *sizes, f32, u64, i32]
    lib.ts_attention_forward.restype = lib.ts_attention_backward.restype = lib.ts_openmp.restype = i32
    lib.openmp = bool(lib.ts_openmp())
    return lib


def build(directory: Path | None = None, compiler: str | None = None) -> ctypes.CDLL:
    """Compile (or find in ``directory``) the kernels and load them; raises ``RuntimeError``
    with the compiler's messages when no flag set gives a loadable library. A compile prints
    one line to stderr first.

    Examples
    --------
    >>> try:
    ...     lib = build()  # compiled once, then found in the cache
    ... except RuntimeError:  # no working compiler here
    ...     lib = None
    >>> lib is None or lib.openmp in (True, False)
    True
    """
    directory = Path(directory) if directory is not None else cache_dir()
    compiler = compiler or _compiler()
    if not compiler:
        raise RuntimeError("no C++ compiler found (set CXX, or install g++ or clang++)")
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError(f"the compiler {compiler!r} does not run: {e}") from e
    errors = []
    for extra in _FLAG_SETS:
        flags = (*_BASE_FLAGS, *extra)
        key = hashlib.sha256(
            b"\0".join([source, compiler.encode(), version.encode(), " ".join(flags).encode(), _cpu().encode()])
        ).hexdigest()[:20]
        target = directory / f"attention-{key}.so"
        if not target.exists():
            directory.mkdir(parents=True, exist_ok=True)
            # Built under a temporary name and renamed: processes building at once never load half a file.
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=directory)
            os.close(fd)
            try:
                print(
                    "tabular_suite: compiling the native attention kernel for this CPU "
                    f"({' '.join(extra) or 'generic'})"
                    f" into {directory} (once per machine)",
                    file=sys.stderr,
                    flush=True,
                )
                try:
                    proc = subprocess.run(
                        [compiler, *flags, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=600
                    )
                except (OSError, subprocess.SubprocessError) as e:
                    errors.append(f"{' '.join(flags)}: {e}")
                    continue
                if proc.returncode:
                    errors.append(f"{' '.join(flags)}: {proc.stderr.strip()[-500:]}")
                    continue
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        try:
            return _bind(ctypes.CDLL(str(target)))
        except (OSError, AttributeError) as e:  # e.g. an OpenMP runtime missing at load time
            errors.append(f"{' '.join(flags)}: built but does not load: {e}")
    raise RuntimeError("the native kernels could not be built:\n" + "\n".join(errors))


@functools.cache  # (read once: every attention call asks)
def _wide_vectors() -> bool:
    """Whether this CPU has AVX-512 (the kernel's 16-lane vectors in one register)."""
    flags = next((line for line in _cpu().splitlines() if line.startswith("flags")), "")
    return "avx512f" in flags.split()


def _off() -> str | None:
    """Why the kernels are not used here (``TABULAR_SUITE_NATIVE`` and the CPU), or None."""
    setting = os.environ.get("TABULAR_SUITE_NATIVE", "")
    if setting == "0":
        return "turned off by TABULAR_SUITE_NATIVE=0"
    if setting != "1" and not _wide_vectors():
        return (
            "this CPU has no AVX-512, where PyTorch's attention was measured faster than the kernel's "
            "16-lane vectors (TABULAR_SUITE_NATIVE=1 uses them anyway)"
        )
    return None


def load() -> ctypes.CDLL | None:
    """The compiled kernels (built on the first call of the process), or ``None`` when they
    are not used on this CPU, are turned off (``TABULAR_SUITE_NATIVE``) or cannot be built.

    Examples
    --------
    >>> lib = load()
    >>> lib is None or hasattr(lib, "ts_attention_forward")
    True
    """
    if _off():
        return None
    with _lock:
        if "lib" not in _state:
            try:
                _state["lib"], _state["error"] = build(), None
            except (RuntimeError, OSError) as e:
                _state["lib"], _state["error"] = None, str(e)
        return _state["lib"]


def status() -> str:
    """One line: whether the native kernels are in use, and why not.

    Examples
    --------
    >>> status().startswith(("native kernels", "no native kernels"))
    True
    """
    if _off():
        return f"no native kernels: {_off()}"
    lib = load()
    if lib is None:
        return f"no native kernels: {_state['error']}"
    return f"native kernels: {lib._name} (OpenMP: {'yes' if lib.openmp else 'no'})"
