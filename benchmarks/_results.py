"""Shared by the benchmark scripts: replace (or append) one section of benchmarks/RESULTS.md."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PREAMBLE = "# Benchmark results\n\nAll figures measured on the machine named in each table.\n\n"


def write_section(lines: list[str]) -> None:
    """``lines[0]`` is the section's ``## `` header; an existing section with it is replaced."""
    section = "\n".join(lines).rstrip("\n") + "\n\n"
    text = RESULTS.read_text() if RESULTS.exists() else PREAMBLE
    start = text.find(lines[0])
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")
