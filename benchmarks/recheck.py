"""Re-check: our side of the in-memory benchmarks (CTR, ExcelFormer, SASRec) re-run at this
commit, next to the figures their RESULTS.md tables hold, so that a change of the training
engine (issue 25: data-parallel training, the step loop) shows if it slowed or degraded them.

Each check calls the benchmark script's own ``run_ours`` with one of its table's settings
(one seed; SASRec for a few epochs: its seconds per epoch, the metric is not comparable
then). Same data, splits and thread count (1) as the table. The peers are not re-run.

    python benchmarks/recheck.py --against b69ac07 && python benchmarks/recheck.py --write

``--against REV`` runs each check also with the package of commit REV (a git worktree under
benchmarks/_work), right after this commit's, so the two are compared on the machine as it is
now (a shared VM's speed drifts by tens of per cent between sessions). Rows go to
benchmarks/logs/recheck.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
LOG = HERE / "logs" / "recheck.jsonl"
HEADER = "## Re-check of the in-memory figures after issue 25"
DATA = HERE.parent.parent / "shared" / "data"
# name: (script, the RESULTS.md table row that holds the reference figures: its first cells,
#        the columns compared, the arguments of the script's run_ours)
CHECKS = {
    "ctr bank_marketing finalmlp": ("ctr", "| bank_marketing | finalmlp | e100 bf16 | 0,1,2 | ours |"),
    "ctr bank_marketing autoint_plus": ("ctr", "| bank_marketing | autoint_plus | e100 bf16 | 0,1,2 | ours |"),
    "excelformer california": ("excelformer", "| california | d256 h32 L3 b512 e5 lr0.001 bf16 | ours |"),
    "excelformer higgs_7k5": ("excelformer", "| higgs_7k5 | d256 h32 L3 b512 e5 lr0.001 bf16 | ours |"),
    "sasrec games": ("sasrec", "| games | bce | ours auto, seed 0 |"),
}


def check(name: str) -> dict:
    """Run one check in this process (the benchmark script's run_ours); the figures compared."""
    import torch

    torch.set_num_threads(1)
    script, _ = CHECKS[name]
    sys.path.insert(0, str(HERE))
    module = __import__(script)
    if script == "ctr":
        module.native.load()  # the compiled attention kernel, built (or found) before the run is timed
        model = name.split()[-1]
        split, categorical = module.write_split(DATA / "tabular", "bank_marketing")
        x = module.run_ours(split, categorical, model, Namespace(max_epochs=100, precision="bf16"), 0)
        return {"metric": "test AUC", "value": x["test_auc"], "sec_per_epoch": x["sec_per_epoch"]}
    if script == "excelformer":
        split, task = module.write_split(DATA / "tabular", name.split()[-1])
        a = Namespace(d_token=256, n_heads=32, n_blocks=3, batch_size=512, epochs=5, lr=1e-3, precision="bf16")
        x = module.run_ours(split, task, a)
        return {"metric": "rmse" if task == "regression" else "accuracy", "value": x["test"],
                "sec_per_epoch": x["sec_per_epoch"]}  # fmt: skip
    log = module.load(DATA / "seqrec", "games")
    x = module.run_ours(log, "games", Namespace(epochs=5, precision="auto", seed=0))
    return {"metric": "NDCG@10 (5 epochs)", "value": x["sampled"]["NDCG@10"], "sec_per_epoch": x["sec_per_epoch"]}


def reference(row_start: str) -> dict:
    """The cells of the RESULTS.md table row that starts with ``row_start``, by column name."""
    lines = (HERE / "RESULTS.md").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(row_start):
            header = next(lines[j] for j in range(i, -1, -1) if lines[j + 1].startswith("|---"))
            names = [c.strip() for c in header.strip("|").split("|")]
            return dict(zip(names, [c.strip() for c in line.strip("|").split("|")]))
    raise KeyError(f"No row starting with {row_start!r} in RESULTS.md")


def write(rows: list[dict]) -> None:
    from _results import write_section

    lines = [
        HEADER,
        "",
        "Command: `python benchmarks/recheck.py --against b69ac07 && python benchmarks/recheck.py --write` (rows "
        "in benchmarks/logs/recheck.jsonl). Our side of the CTR, ExcelFormer and SASRec benchmarks re-run with one "
        "of each table's settings (seed 0; SASRec for 5 epochs: its seconds per epoch only), next to that "
        "table's row (CTR: the mean of seeds 0-2), at this commit and, right after it, at the commit before "
        "issue 25 (b69ac07): the machine's speed drifts between sessions, so the two commits compare, not the "
        "table and now. 1 thread.",
        "",
        "| check | metric | table | now | table s/epoch | now s/epoch | commit | machine |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in sorted(rows, key=lambda r: list(CHECKS).index(r["check"])):
        ref = reference(CHECKS[r["check"]][1])
        table_metric = ref.get("test AUC (mean ± sd)", ref.get("test", ref.get("NDCG@10", ""))).split(" ")[0]
        lines.append(
            f"| {r['check']} | {r['result']['metric']} | {table_metric} | {r['result']['value']:.4f} | "
            f"{ref['s/epoch']} | {r['result']['sec_per_epoch']:.2f} | {r['commit']} | {r['machine']} |"
        )
    rows = with_beside(rows)
    for head in dict.fromkeys(r["beside"] for r in rows if r.get("beside")):  # each commit over its --against
        against = next(r["commit"] for r in rows if r.get("beside") == head)
        lines += [
            "",
            f"{head} vs {against}, measured in one session (the checks of one commit, then of the other):",
            "",
        ]
        for name in CHECKS:
            mine = [r["result"] for r in rows if r["check"] == name and r["commit"] == head and not r.get("beside")]
            other = [r["result"] for r in rows if r["check"] == name and r.get("beside") == head]
            if mine and other:
                a, b = mine[-1], other[-1]
                same = "the same" if a["value"] == b["value"] else f"{a['value']:.4f} vs {b['value']:.4f}"
                lines.append(f"- {name}: {a['metric']} {same}; s/epoch {a['sec_per_epoch'] / b['sec_per_epoch']:.2f}x")
    write_section(lines)


def with_beside(rows: list[dict]) -> list[dict]:
    """The rows, an --against row of the first runs (logged without ``beside``) given the commit it
    was measured right after: the check's row before it in the log."""
    out, last = [], {}
    for r in rows:
        if "beside" not in r and r["commit"] in AGAINST_ROWS_WITHOUT_BESIDE and r["check"] in last:
            r = {**r, "beside": last[r["check"]]}
        elif "beside" not in r:
            last[r["check"]] = r["commit"]
        out.append(r)
    return out


# The --against commit of the runs logged before rows named the commit they were measured beside.
AGAINST_ROWS_WITHOUT_BESIDE = ("b69ac07",)


def main() -> None:
    sys.path.insert(0, str(HERE))
    from _results import append_row, machine, read_rows

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checks", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    p.add_argument("--against", help="also run each check with the package of this commit")
    p.add_argument("--write", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print("RESULT " + json.dumps(check(a.one)))
        return
    rows = read_rows(LOG)
    if a.write:
        write(rows)
        return
    git = ["git", "-C", str(HERE.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    packages = {head: HERE.parent}
    if a.against:
        rev = subprocess.run([*git, "rev-parse", "--short", a.against], capture_output=True, text=True, check=True)
        tree = HERE / "_work" / f"against-{rev.stdout.strip()}"
        if not tree.exists():
            subprocess.run([*git, "worktree", "add", "--detach", str(tree), rev.stdout.strip()], check=True)
        packages[rev.stdout.strip()] = tree
    beside = dict.fromkeys(packages)  # the --against commit is measured again beside each new commit
    beside.update({commit: head for commit in packages if commit != head})
    done = {(r["check"], r["commit"], r.get("beside")) for r in with_beside(rows)}
    for name in a.checks:
        for commit, package in packages.items():
            if (name, commit, beside[commit]) in done:
                continue
            env = {**os.environ, "PYTHONPATH": str(package), "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, env=env)
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            result = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT ")))
            row = {"check": name, "commit": commit, "machine": machine(), "result": result}
            append_row(LOG, row if beside[commit] is None else {**row, "beside": beside[commit]})


if __name__ == "__main__":
    from tabular_suite.training.device import settle_heap

    settle_heap()
    main()
