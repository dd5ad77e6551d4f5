"""Shared by the benchmark scripts: the resumable row log and the RESULTS.md section writer."""

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PREAMBLE = "# Benchmark results\n\nAll figures measured on the machine named in each table.\n\n"


def read_rows(log: Path) -> list[dict]:
    """Rows already measured (one JSON object per line); empty when the log does not exist."""
    log.parent.mkdir(exist_ok=True)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def append_row(log: Path, row: dict) -> None:
    print(json.dumps(row), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(row) + "\n")


def machine() -> str:
    """Architecture, CPU model and its bf16 matrix support (AMX / AVX512-BF16), cores, torch version."""
    import torch

    cpu, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    bf16 = "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else ""
    cpu = f"{cpu} ({bf16})" if cpu and bf16 else cpu or platform.processor()
    return f"{platform.machine()} {cpu + ' ' if cpu else ''}{os.cpu_count()} cores, torch {torch.__version__}"


def write_section(lines: list[str]) -> None:
    """``lines[0]`` is the section's ``## `` header; an existing section with it is replaced."""
    section = "\n".join(lines).rstrip("\n") + "\n\n"
    text = RESULTS.read_text() if RESULTS.exists() else PREAMBLE
    start = text.find(lines[0])
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
