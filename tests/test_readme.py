"""README.md's Python examples run as tests, so the README never drifts from the code.

Conventions in README.md:

- Every ```python block runs. The blocks of one section (a ``##``/``###`` heading) run in
  order in one namespace, in a fresh Python process (one torch thread, as the README's figures)
  whose working folder is a temporary one with ``datasets/`` linked in.
- A ```python block directly followed by an unlabelled (or ```text) block shows its printed
  output there; the test compares the block's stdout with it. A block without one must print
  nothing.
- ``<!-- slow -->`` on the line before a ```python fence marks a block that takes more than
  ~20 s: its section's test is marked ``slow`` (``make test-all`` / ``pytest -m slow`` runs it).

Comparison: line by line, runs of spaces count as one (column widths follow the numbers), text
exactly, numbers (``136,505``, ``0.819``, ``-3e-05``; not digits inside names such as ``item807``
or ``HR@10``) within 5% relative or 0.02 absolute, whichever is larger: enough for the rounding of
another CPU, never for a changed default or a broken feature. Timings are ignored: the value of a
``'...seconds': x`` entry and the columns of a printed table headed ``...seconds``.

When an example's output changes on purpose, rerun the block and paste its output into the
README (the failure message prints it in full); do not widen the tolerance.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SLOW_MARK = "<!-- slow -->"
REL_TOL, ABS_TOL = 0.05, 0.02

_NUMBER = re.compile(r"(?<![\w.@$])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w@])")
_SECONDS_ENTRY = re.compile(r"('\w*seconds'): " + _NUMBER.pattern)


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    output: str | None  # the shown output, None when the README shows none
    slow: bool


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def slow(self) -> bool:
        return any(b.slow for b in self.blocks)


def parse_readme(text: str) -> list[Section]:
    """The README's sections that hold Python blocks, each with its blocks and their shown outputs."""
    lines = text.splitlines()
    fences = []  # (start line index, language, body, end line index)
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            language, start = lines[i][3:].strip(), i
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            fences.append((start, language, "\n".join(body), i))
        i += 1
    sections: dict[int, Section] = {}
    for n, (start, language, body, end) in enumerate(fences):
        if language != "python":
            continue
        output = None
        if n + 1 < len(fences):
            next_start, next_language, next_body, _ = fences[n + 1]
            if next_language in ("", "text") and not any(s.strip() for s in lines[end + 1 : next_start]):
                output = next_body
        previous = next((s for s in reversed(lines[:start]) if s.strip()), "")
        heading = max((j for j in range(start) if re.match(r"#{2,3} ", lines[j])), default=-1)
        title = lines[heading].lstrip("#").strip() if heading >= 0 else "(top)"
        section = sections.setdefault(heading, Section(title))
        section.blocks.append(Block(start + 1, body, output, previous.strip() == SLOW_MARK))
    return list(sections.values())


def _mask_timings(text: str) -> list[list[str]]:
    """Lines as lists of tokens, timings replaced by ``<seconds>``."""
    rows, masked_columns = [], None
    for line in _SECONDS_ENTRY.sub(r"\1: <seconds>", text).strip("\n").splitlines():
        tokens = line.split()
        if any(t.endswith("seconds") for t in tokens):
            masked_columns = (len(tokens), [i for i, t in enumerate(tokens) if t.endswith("seconds")])
        elif masked_columns and len(tokens) == masked_columns[0]:
            tokens = ["<seconds>" if i in masked_columns[1] else t for i, t in enumerate(tokens)]
        else:
            masked_columns = None
        rows.append(tokens)
    return rows


def _numbers_close(shown: str, got: str) -> bool:
    a, b = (float(s.replace(",", "")) for s in (shown, got))
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def output_differences(shown: str, printed: str) -> list[str]:
    """Where ``printed`` differs from ``shown`` beyond the tolerance (empty: they agree)."""
    expected, actual = _mask_timings(shown), _mask_timings(printed)
    if len(expected) != len(actual):
        return [f"{len(actual)} lines printed, {len(expected)} shown"]
    problems = []
    for n, (want, got) in enumerate(zip(expected, actual), 1):
        want_line, got_line = " ".join(want), " ".join(got)
        if _NUMBER.sub("#", want_line) != _NUMBER.sub("#", got_line):
            problems.append(f"line {n}: text differs:\n  shown:   {want_line}\n  printed: {got_line}")
            continue
        for a, b in zip(_NUMBER.findall(want_line), _NUMBER.findall(got_line)):
            if not _numbers_close(a, b):
                problems.append(f"line {n}: {b} printed, {a} shown")
    return problems


# Runs the blocks given as JSON on stdin in one namespace; prints a JSON list of their stdouts
# as its last line (the blocks' own prints are captured, not mixed into it).
_DRIVER = """
import contextlib, io, json, sys, traceback
import torch
torch.set_num_threads(1)
blocks, namespace, outputs = json.loads(sys.stdin.read()), {"__name__": "__main__"}, []
for line, code in blocks:
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
    except BaseException:
        sys.stderr.write(f"README.md block at line {line} failed; it had printed:\\n{buffer.getvalue()}\\n")
        raise
    outputs.append(buffer.getvalue())
sys.stdout.write("\\n" + json.dumps(outputs) + "\\n")
"""


def run_blocks(blocks: list[Block], workdir: Path, timeout: float = 1800) -> list[str]:
    """Each block's stdout, running them in order in one fresh process in ``workdir``."""
    (workdir / "datasets").symlink_to(ROOT / "datasets")
    env = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps([(b.line, b.code) for b in blocks]),
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


SECTIONS = parse_readme(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "section", [pytest.param(s, id=s.title, marks=[pytest.mark.slow] if s.slow else []) for s in SECTIONS]
)
def test_readme_example(section, tmp_path):
    printed = run_blocks(section.blocks, tmp_path)
    for block, out in zip(section.blocks, printed):
        if block.output is None:
            assert out == "", f"README.md:{block.line} printed output the README does not show:\n{out}"
            continue
        problems = output_differences(block.output, out)
        assert not problems, (
            f"README.md:{block.line}: the printed output differs from the README's:\n"
            + "\n".join(problems)
            + f"\n--- printed (paste into README.md if intended):\n{out}"
        )


def test_every_python_block_is_collected():
    n_fences = sum(1 for line in README.read_text(encoding="utf-8").splitlines() if line.strip() == "```python")
    assert sum(len(s.blocks) for s in SECTIONS) == n_fences > 0
    # the README shows an output for every example that prints
    assert all(b.output is not None or "print(" not in b.code for s in SECTIONS for b in s.blocks)


def test_output_comparison_tolerates_rounding_and_timings_only():
    shown = (
        "R2 0.819, best epoch 77, 136,505 parameters\n{'epoch': 93, 'seconds': 0.76, 'lr': 0.001}\n"
        "   model status   mean  fit_seconds\nensemble     ok 0.8039       3.3112\n['item807'] HR@10"
    )
    assert output_differences(shown, shown) == []
    close = shown.replace("0.819", "0.83").replace("0.76", "12.5").replace("3.3112", "40.0").replace("   mean", " mean")
    assert output_differences(shown, close) == []
    for drifted in (
        shown.replace("0.819", "0.70"),
        shown.replace("136,505", "150,000"),
        shown.replace("'lr': 0.001", "'lr': 0.1"),
        shown.replace("item807", "item808"),
        shown.replace("HR@10", "HR@20"),
        shown.replace("ensemble", "mlp"),
        shown + "\nTrue",
    ):
        assert output_differences(shown, drifted), drifted
