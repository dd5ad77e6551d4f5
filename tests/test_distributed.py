"""Data-parallel training on torch.distributed (tabular_suite.training.distributed): two local
processes under torchrun train one model that matches single-process training within noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tabular_suite
from tabular_suite.training.distributed import Ranks

# Each rank fits the same table; prints its rank, its test predictions and the fit's history.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    import tabular_suite
    from tabular_suite.training.distributed import Ranks, rank_and_world

    class Steps:  # counts the optimisation steps (no callback: one would add a collective a step)
        n = 0
        idle = 0  # the most parameters left to another rank at a step (a sharded update)
        step = Ranks.step

        def counted(ranks, optimizers, sparse=()):
            Steps.step(ranks, optimizers, sparse)
            Steps.n += 1
            params = [p for o in optimizers if o is not None for g in o.param_groups for p in g["params"]]
            Steps.idle = max(Steps.idle, sum(p.grad is None for p in params))

    Ranks.step = Steps.counted
    if os.environ.get("SLOW_RANK") == str(rank_and_world()[0]):  # this rank updates its part late
        adamw_step = torch.optim.AdamW.step
        torch.optim.AdamW.step = lambda self, *a, **k: time.sleep(0.02) or adamw_step(self, *a, **k)

    df = pd.read_csv(sys.argv[1])
    y = df.pop("y")
    kind, out = sys.argv[2], sys.argv[3]
    params = dict(max_epochs=6, random_state=0, num_threads=1)
    if kind.startswith("finalmlp"):
        params.update(sparse_embeddings=True, mlp1_hidden=(32,), mlp2_hidden=(32,), gate_hidden=(16,), n_heads=2)
    if kind.endswith("_per_process"):
        params.update(per_process_batch=True)
    if kind == "sasrec":  # 600 users walking items i -> i+1; the last item of each is the test
        rng = np.random.default_rng(0)
        rows = [(f"u{u}", f"i{(s + t) % 40}") for u, s in enumerate(rng.integers(0, 40, 600))
                for t in range(int(rng.integers(5, 12)))]
        log = pd.DataFrame(rows, columns=["user_id", "item_id"])
        last = log.groupby("user_id").tail(1)
        params.update(maxlen=12, hidden_units=16, batch_size=64, patience=None, max_epochs=20)
        est = tabular_suite.SASRecRecommender(**params).fit(log.drop(last.index))
        proba = est.recommend([f"u{u}" for u in range(100)], k=3)["score"].tolist()
        test_metric = est.evaluate(last)["NDCG@10"]
        # The validator, its users shared out over the ranks, and on one rank's own:
        import tabular_suite.recsys.recommender as R
        evaluate = R.SASRecRecommender._validator(est, est.sequences_, np.arange(600), 0)
        shared = evaluate(est.module_)[1]
        R.Ranks = type("Alone", (R.Ranks,), {"predict_shared": lambda self, f, inputs, unit: f(inputs)})
        validation_shared_ok = shared == evaluate(est.module_)[1]
    else:
        est = tabular_suite.make_estimator(kind.split("_")[0], "classification", **params)
        if kind.endswith("_parquet"):  # streamed: each rank reads its share of the row groups
            est.fit_parquet(sys.argv[1].replace(".csv", ".parquet"), "y", batch_rows=200)
        else:
            est.fit(df[:1600], y[:1600])
        proba, test_metric, validation_shared_ok = est.predict_proba(df[1600:])[:, 1].tolist(), None, None
    est.save(out)
    # The trained model holds its own memory (a sharded update's parameters lived in a shared file).
    module = getattr(est, "module_", None)
    owned = module is None or all(p.untyped_storage().nbytes() == p.nbytes for p in module.parameters())
    rank, world = rank_and_world()
    ranks = Ranks()  # the gradient exchange on its own: rank r sends r
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.full((3,), float(rank))
    ranks.average_gradients([weight])
    # Validation rows shared out (4 chunks of 256 rows and a part): each rank's, gathered in order.
    shared = ranks.predict_shared(lambda part: part[0] * 2, [torch.arange(1000)], 256)
    with open(f"{out}.{rank}.json", "w") as f:  # a file per rank: the ranks' stdout lines interleave
        json.dump({"rank": rank, "world": world, "proba": proba, "test_metric": test_metric,
                   "val_metric": [h.get("val_NDCG@10") for h in est.history_],
                   "validation_shared_ok": validation_shared_ok,
                   "epochs": len(est.history_), "train_loss": [h["train_loss"] for h in est.history_],
                   "steps": Steps.n, "idle": Steps.idle, "owned": owned, "mean_grad": weight.grad.tolist(),
                   "shared_ok": shared.tolist() == list(range(0, 2000, 2)),
                   "exchange": "shared memory" if ranks._shared else "network"}, f)
    """
)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    df["user"] = rng.choice([f"u{i}" for i in range(60)], n)
    df["y"] = ((df.a + df.b * df.c + (df.user < "u2") + rng.normal(scale=0.5, size=n)) > 0.3).astype(int)
    path = tmp_path_factory.mktemp("ddp") / "table.csv"
    df.to_csv(path, index=False)
    df[:1600].to_parquet(path.with_suffix(".parquet"), row_group_size=200)  # 8 row groups
    return path


_RUNS: dict = {}  # (kind, n, env) -> each rank's output: a run two tests need is launched once


def _torchrun(tmp_path: Path, table: Path, kind: str, n: int, **env) -> list[dict]:
    key = (str(table), kind, n, tuple(sorted(env.items())))
    if key not in _RUNS:
        _RUNS[key] = _launch(tmp_path, table, kind, n, **env)
    return _RUNS[key]


def _launch(tmp_path: Path, table: Path, kind: str, n: int, **env) -> list[dict]:
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{kind}_{n}{'_'.join(env)}.tsm"
    # --max-restarts: a group that fails to connect on a loaded machine starts again (as in production).
    args = [str(script), str(table), kind, str(out)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", "--max-restarts=2",
           *args]  # fmt: skip
    if n == 1 and not env:  # one process: a plain interpreter (no launcher to start), as a user runs a script
        cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [{**json.loads(Path(f"{out}.{rank}.json").read_text()), "model_path": out} for rank in range(n)]


# Each group of processes costs 15-40 s on two loaded cores (interpreter start-up, imports, the
# rendezvous): the default suite keeps one of each kind of run (two ranks of an MLP here; a
# streamed fit over two ranks from the CLI below), the others are marked slow (make test-all).
SLOW = pytest.mark.slow


@pytest.mark.parametrize("kind", ["mlp", pytest.param("finalmlp", marks=SLOW), pytest.param("mlp_parquet", marks=SLOW)])
def test_two_processes_train_one_model_as_one_process_does(tmp_path, table, kind):
    from sklearn.metrics import roc_auc_score

    two = _torchrun(tmp_path, table, kind, 2)
    assert [r["rank"] for r in two] == [0, 1] and all(r["world"] == 2 for r in two)
    # The ranks end with the same model (gradients averaged every step, rank 0's decisions).
    np.testing.assert_allclose(two[0]["proba"], two[1]["proba"], rtol=0, atol=1e-6)
    assert two[0]["train_loss"] == two[1]["train_loss"]  # the loss over both ranks' rows
    # One process on the same rows: the same schedule (global batch), the same quality within noise.
    one = _torchrun(tmp_path, table, kind, 1)[0]
    assert one["world"] == 1 and one["epochs"] == two[0]["epochs"]
    y_test = pd.read_csv(table)["y"].to_numpy()[1600:]
    auc_one, auc_two = roc_auc_score(y_test, one["proba"]), roc_auc_score(y_test, two[0]["proba"])
    assert abs(auc_one - auc_two) < 0.03, (auc_one, auc_two)
    assert auc_two > 0.8
    loaded = tabular_suite.load(two[0]["model_path"])  # written once, by rank 0
    test = pd.read_csv(table).drop(columns="y")[1600:]
    np.testing.assert_allclose(loaded.predict_proba(test)[:, 1], two[0]["proba"], atol=1e-6)
    # Local ranks average through shared memory; the mean of the ranks' gradients 0 and 1:
    assert all(r["exchange"] == "shared memory" and r["mean_grad"] == [0.5] * 3 for r in two)
    assert all(r["shared_ok"] for r in two)
    # The optimizer's work shared out: each rank updates a part of the parameters (another's
    # have no gradient on it after the step).
    assert all(r["idle"] > 0 for r in two) and one["idle"] == 0
    assert all(r["owned"] for r in two)
    if kind == "finalmlp":
        # The network path (other machines, NCCL) trains the same model.
        network = _torchrun(tmp_path, table, kind, 2, TABULAR_SUITE_SHARED_GRADIENTS="0")
        assert all(r["exchange"] == "network" and r["mean_grad"] == [0.5] * 3 for r in network)
        np.testing.assert_allclose(network[0]["proba"], two[0]["proba"], rtol=0, atol=1e-5)
        assert network[0]["steps"] == two[0]["steps"] == one["steps"]


@SLOW  # three more pairs of processes
def test_the_shared_memory_exchange_variants_train_the_same_model(tmp_path, table):
    two = _torchrun(tmp_path, table, "finalmlp", 2)
    # Each rank updating everything (as before the sharded update) trains the same model:
    # every value is updated once, by the same arithmetic.
    replicated = _torchrun(tmp_path, table, "finalmlp", 2, TABULAR_SUITE_SHARD_OPTIMIZER="0")
    assert all(r["idle"] == 0 for r in replicated)
    np.testing.assert_allclose(replicated[0]["proba"], two[0]["proba"], rtol=0, atol=1e-6)
    assert replicated[0]["train_loss"] == two[0]["train_loss"]
    # A rank that updates its part late is waited for: the other's next step reads its updates.
    late = _torchrun(tmp_path, table, "finalmlp", 2, SLOW_RANK="1")
    np.testing.assert_allclose(late[0]["proba"], two[0]["proba"], rtol=0, atol=1e-6)
    # Shared memory with a gloo all-gather as the barrier (off x86-64) instead of the spin:
    # the same sums in the same order, the same model.
    gathered = _torchrun(tmp_path, table, "finalmlp", 2, TABULAR_SUITE_SPIN_BARRIER="0")
    assert all(r["exchange"] == "shared memory" and r["mean_grad"] == [0.5] * 3 for r in gathered)
    np.testing.assert_allclose(gathered[0]["proba"], two[0]["proba"], rtol=0, atol=1e-6)


@SLOW
def test_two_processes_train_one_sasrec_as_one_process_does(tmp_path, table):
    two = _torchrun(tmp_path, table, "sasrec", 2)
    np.testing.assert_allclose(two[0]["proba"], two[1]["proba"], rtol=0, atol=1e-5)
    # Each rank ranks its share of the 600 validation users: the figures of one rank ranking all.
    assert all(r["validation_shared_ok"] for r in two)
    assert two[0]["val_metric"] == two[1]["val_metric"] and None not in two[0]["val_metric"]
    one = _torchrun(tmp_path, table, "sasrec", 1)[0]
    assert one["steps"] == two[0]["steps"] and one["epochs"] == two[0]["epochs"] == 20
    # The next item is fully predictable: both learn it, within noise of each other.
    assert two[0]["test_metric"] > 0.5 and abs(one["test_metric"] - two[0]["test_metric"]) < 0.1, (
        one["test_metric"],
        two[0]["test_metric"],
    )
    assert abs(one["val_metric"][-1] - two[0]["val_metric"][-1]) < 0.1


def test_shared_exchange_gives_up_when_a_rank_never_arrives():
    from tabular_suite.training.distributed import _SharedExchange

    class TwoRanks:  # rank 0 of 2, alone: rank 1's header never shows the step
        rank, world = 0, 2

    exchange = _SharedExchange(TwoRanks(), "/dev/shm")
    exchange.timeout = 0.2
    headers = torch.zeros(2, 3, dtype=torch.long)
    headers[0, 0] = 1
    with pytest.raises(RuntimeError, match="did not reach training step 1 within"):
        exchange._wait(headers, 1)
    headers[1, 0] = 1  # both ranks there: no wait
    exchange._wait(headers, 1)


@SLOW
def test_per_process_batch_takes_fewer_larger_steps(tmp_path, table):
    from sklearn.metrics import roc_auc_score

    one = _torchrun(tmp_path, table, "mlp", 1)[0]
    two = _torchrun(tmp_path, table, "mlp_per_process", 2)
    np.testing.assert_allclose(two[0]["proba"], two[1]["proba"], rtol=0, atol=1e-6)
    # Each rank takes batch_size rows a step: an epoch in about half the steps of one process.
    assert two[0]["epochs"] == one["epochs"] == 6
    assert two[0]["steps"] < 0.7 * one["steps"], (two[0]["steps"], one["steps"])
    auc = roc_auc_score(pd.read_csv(table)["y"].to_numpy()[1600:], two[0]["proba"])
    assert auc > 0.8, auc


@SLOW
def test_cli_train_with_workers_writes_one_model(tmp_path, table):
    out = tmp_path / "workers.tsm"
    cmd = [sys.executable, "-m", "tabular_suite.cli.app", "train", str(table), "--target", "y", "--model", "mlp",
           "--out", str(out), "--holdout", "0.2", "--workers", "2", "--quiet", "-p", "max_epochs=4"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("saved MLPClassifier") == 1  # rank 0 speaks; the other trains silently
    assert "roc_auc" in proc.stdout and out.exists()
    bad = subprocess.run(cmd[:-5] + ["--force", "--workers", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--workers must be at least 1" in bad.stderr + bad.stdout


def test_ranks_share_an_epoch_equally():
    ranks = Ranks()
    ranks.rank, ranks.world, ranks.active = 1, 3, True
    order = torch.arange(10)
    assert ranks.shard(order).tolist() == [3, 4, 5]  # 10 // 3 rows each; the last row waits an epoch
    assert ranks.batch_size(256) == 86 and ranks.batch_size(256, per_process=True) == 256


@pytest.mark.slow  # (make test-all: kept out of `make test`'s 10 minutes)
def test_cli_train_streams_a_parquet_folder(tmp_path, table):
    folder = tmp_path / "parts"
    folder.mkdir()
    df = pd.read_csv(table)
    df[:1000].to_parquet(folder / "a.parquet", row_group_size=250)
    df[1000:1600].to_parquet(folder / "b.parquet", row_group_size=300)
    base = [sys.executable, "-m", "tabular_suite.cli.app", "train", str(folder), "--target", "y", "--model", "mlp",
            "--quiet", "-p", "max_epochs=4"]  # fmt: skip
    out = tmp_path / "streamed.tsm"
    proc = subprocess.run([*base, "--out", str(out), "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("streamed 1,600 rows") == 1 and "rows/s" in proc.stdout  # rank 0 speaks
    assert tabular_suite.load(out).predict_proba(df[1600:].drop(columns="y")).shape == (400, 2)
    # Refused before any process starts (typer's runner, in this process):
    from typer.testing import CliRunner

    from tabular_suite.cli import app

    def invoke(*args):
        return CliRunner().invoke(app.app, [*base[3:], "--out", str(tmp_path / "x.tsm"), *args])

    refused = invoke("--holdout", "0.2")
    assert refused.exit_code == 1 and "--stream trains on every row" in refused.stderr
    refused = invoke("--workers", "0")
    assert refused.exit_code == 1 and "--workers must be at least 1" in refused.stderr + refused.stdout


def test_checkpoint_resumes_an_interrupted_fit(tmp_path, monkeypatch):
    from tabular_suite import MLPClassifier
    from tabular_suite.tabular import base
    from tabular_suite.training.callbacks import Callback
    from tabular_suite.training.engine import checkpoint_seed

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 5)), columns=[f"x{i}" for i in range(5)])
    y = (X.x0 + X.x1 > 0).astype(int)

    class Interrupt(Callback):
        def on_epoch_end(self, state, logs):
            if logs["epoch"] == 3:
                raise KeyboardInterrupt

    checkpoint = tmp_path / "run.ckpt"
    params = dict(max_epochs=6, patience=None, random_state=0, num_threads=1)
    whole = MLPClassifier(**params).fit(X, y)
    est = MLPClassifier(**params, checkpoint=str(checkpoint), callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y)
    assert checkpoint.exists()  # saved after epoch 2
    est.set_params(callbacks=None).fit(X, y)  # finds it: epochs 3-6
    losses = [h["train_loss"] for h in est.history_]
    assert [h["epoch"] for h in est.history_] == [1, 2, 3, 4, 5, 6]
    # The same epochs as without the interruption (weights, optimizer, schedule and random streams resumed).
    assert losses == [h["train_loss"] for h in whole.history_]
    np.testing.assert_array_equal(est.predict_proba(X), whole.predict_proba(X))
    assert not checkpoint.exists()  # trained to the end
    with pytest.raises(KeyboardInterrupt):  # leaves a checkpoint of a narrower model
        MLPClassifier(**params, d_block=32, checkpoint=str(checkpoint), callbacks=[Interrupt()]).fit(X, y)
    with pytest.raises(ValueError, match="holds another model"):
        MLPClassifier(**params, d_block=64, checkpoint=str(checkpoint)).fit(X, y)
    # Other settings (the optimizer state would bring back the old learning rate): an error.
    with pytest.raises(ValueError, match="lr 0.001 there, 0.0003 here"):
        MLPClassifier(**params, d_block=32, lr=3e-4, checkpoint=str(checkpoint)).fit(X, y)
    with pytest.raises(ValueError, match="monitor 'loss' there, 'score' here"):  # its best epoch is by loss
        MLPClassifier(**params, d_block=32, monitor="score", checkpoint=str(checkpoint)).fit(X, y)
    # Other rows (a grid search's folds sharing one checkpoint path): an error, not another fold's weights.
    with pytest.raises(ValueError, match="written by a fit on other rows"):
        MLPClassifier(**params, d_block=32, checkpoint=str(checkpoint)).fit(X[:500], y[:500])
    weights = np.linspace(0.5, 1.5, 600)
    with pytest.raises(ValueError, match="other rows"):
        MLPClassifier(**params, d_block=32, checkpoint=str(checkpoint)).fit(X, y, sample_weight=weights)
    checkpoint.unlink()
    # random_state=None: a new seed each fit, but a resumed fit takes the interrupted fit's seed
    # (its validation rows and batch order); the same epochs as the fit never interrupted.
    free = {**params, "random_state": None, "patience": 16}
    first = MLPClassifier(**free, checkpoint=str(checkpoint), callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        first.fit(X, y)
    assert not hasattr(first, "preprocessor_")  # (a failed fit leaves the estimator as it was: unfitted)
    seed = checkpoint_seed(checkpoint)
    resumed = MLPClassifier(**free, checkpoint=str(checkpoint)).fit(X, y)
    assert resumed._seed == seed and [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4, 5, 6]
    monkeypatch.setattr(base, "derive_seed", lambda random_state: seed)  # that fit, never interrupted
    np.testing.assert_array_equal(resumed.predict_proba(X), MLPClassifier(**free).fit(X, y).predict_proba(X))


KILLED = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    import tabular_suite
    from tabular_suite.training.callbacks import Callback
    from tabular_suite.training.distributed import rank_and_world

    table, checkpoint, marker = sys.argv[1:4]

    class KillRankOne(Callback):  # the first attempt's rank 1 dies after epoch 3
        def on_epoch_end(self, state, logs):
            if logs["epoch"] == 3 and rank_and_world()[0] == 1 and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)

    df = pd.read_csv(table)
    y = df.pop("y")
    resumed = os.path.exists(checkpoint)
    est = tabular_suite.MLPClassifier(max_epochs=6, patience=None, random_state=0, num_threads=1,
                                      checkpoint=checkpoint, callbacks=[KillRankOne()]).fit(df[:1600], y[:1600])
    with open(f"{checkpoint}.{rank_and_world()[0]}.json", "w") as f:  # a file per rank (stdout lines interleave)
        json.dump({"rank": rank_and_world()[0], "resumed": resumed, "epochs": [h["epoch"] for h in est.history_],
                   "proba": est.predict_proba(df[1600:])[:, 1].tolist()}, f)
    """
)


@SLOW
def test_a_killed_worker_resumes_from_the_last_checkpoint(tmp_path, table):
    from sklearn.metrics import roc_auc_score

    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    checkpoint, marker = tmp_path / "run.ckpt", tmp_path / "killed.marker"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "--max-restarts=1",
           str(script), str(table), str(checkpoint), str(marker)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in proc.stderr.splitlines() if "Error" in line and "ChildFailedError" not in line]
    assert proc.returncode == 0, "\n".join(errors[-20:]) or proc.stderr[-3000:]
    assert marker.exists()  # a worker was killed, and torchrun restarted the group
    rows = [json.loads(Path(f"{checkpoint}.{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in rows] == [0, 1]  # the restarted attempt finished on both ranks
    assert all(r["resumed"] for r in rows)  # ... from the checkpoint the first attempt left
    assert all(r["epochs"] == [1, 2, 3, 4, 5, 6] for r in rows)
    np.testing.assert_allclose(rows[0]["proba"], rows[1]["proba"], atol=1e-6)
    assert roc_auc_score(pd.read_csv(table)["y"].to_numpy()[1600:], rows[0]["proba"]) > 0.8
    assert not checkpoint.exists()


@SLOW
def test_ray_train_fits_one_model_over_workers(tmp_path, table, monkeypatch):
    import ray  # a test dependency (pyproject [test]): missing is a failure, not a skip
    from mlflow import MlflowClient
    from sklearn.metrics import roc_auc_score

    from tabular_suite import tracking
    from tabular_suite.training.distributed import fit_on_ray

    df = pd.read_csv(table)
    y = df.pop("y").to_numpy()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    monkeypatch.chdir(tmp_path)  # the store's relative path is this folder's, not the workers'
    try:
        est = tabular_suite.MLPClassifier(max_epochs=6, random_state=0, num_threads=1)
        tracking.autolog(tracking_uri="sqlite:///runs.db", experiment_name="on-ray")
        try:
            fitted = fit_on_ray(est, df[:1600], y[:1600], num_workers=2, storage_path=str(tmp_path / "ray"))
            streamed = fit_on_ray(
                est, str(table.with_suffix(".parquet")), num_workers=2, target="y", batch_rows=200,
                storage_path=str(tmp_path / "ray"),
            )  # fmt: skip
        finally:
            tracking.autolog(disable=True)
    finally:
        ray.shutdown()
    assert est.__dict__.get("module_") is None  # the estimator given is left unfitted; a fitted copy returns
    # Each tracked fit (a table, a stream): one run (rank 0's) in this process's store and experiment, its id
    # on the model.
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs.db'}")
    runs = [client.get_run(model.mlflow_run_id_) for model in (fitted, streamed)]
    assert {client.get_experiment(run.info.experiment_id).name for run in runs} == {"on-ray"}
    assert all(run.data.params["max_epochs"] == "6" and run.info.status == "FINISHED" for run in runs)
    assert len(client.search_runs([runs[0].info.experiment_id])) == 2
    for model in (fitted, streamed):
        assert len(model.history_) >= 2
        assert roc_auc_score(y[1600:], model.predict_proba(df[1600:])[:, 1]) > 0.8
