"""Runs cut short and wrong inputs (issue 22, points 3, 4 and 7): outputs appear complete or not
at all, paths are checked before the work, user mistakes are one red line with a non-zero exit."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

import tabular_suite

ENV = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "COLUMNS": "200"}


def cli(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "tabular_suite.cli.app", *map(str, args)], capture_output=True, text=True, env=ENV, **kw
    )


@pytest.fixture(scope="module")
def model_and_rows(tmp_path_factory):
    """A small regressor and a 300,000-row CSV that takes it seconds to predict in 5,000-row chunks."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2_000, 5)), columns=list("abcde"))
    est = tabular_suite.MLPRegressor(max_epochs=5, num_threads=1, random_state=0).fit(X, X["a"] + X["b"])
    est.save(folder / "m.tsm")
    big = pd.DataFrame(rng.normal(size=(300_000, 5)).round(4), columns=list("abcde"))
    big.assign(y=big["a"] + big["b"]).to_csv(folder / "rows.csv", index=False)  # the file also holds the target
    return folder, est, big


def _start_predict(folder, out):
    return subprocess.Popen(
        [sys.executable, "-m", "tabular_suite.cli.app", "predict", folder / "m.tsm", folder / "rows.csv",
         "-o", out, "--force", "--chunk-rows", "5000", "--quiet"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_temporary(folder, name, proc, timeout=120):
    """Wait until the output's temporary file has grown (the run is mid-way), then return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tmp = [p for p in folder.iterdir() if p.name.startswith(f".{name}.") and p.stat().st_size > 20_000]
        if tmp:
            return tmp[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the prediction never started writing")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_predict_cut_short_leaves_the_old_output_whole(model_and_rows, sig):
    folder, _, _ = model_and_rows
    out = folder / f"pred_{sig.name}.csv"
    out.write_text("prediction\nold\n")
    proc = _start_predict(folder, out)
    tmp = _wait_for_temporary(folder, out.name, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert out.read_text() == "prediction\nold\n"  # the earlier file, untouched
    if sig == signal.SIGKILL:
        assert proc.returncode == -9 and tmp.exists()  # only a temporary beside it, never a partial target
    else:
        assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
        assert not tmp.exists()


def test_predict_streams_in_chunks_into_a_new_folder(model_and_rows):
    folder, est, big = model_and_rows
    out = folder / "new" / "deeper" / "pred.parquet"
    r = cli("predict", folder / "m.tsm", folder / "rows.csv", "-o", out, "--chunk-rows", "70000", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "wrote 300,000 predictions" in r.stdout
    written = pd.read_parquet(out)["prediction"].to_numpy()
    np.testing.assert_allclose(written[:1000], est.predict(big.head(1000)), rtol=1e-5)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.parquet"]
    metrics, rows = tabular_suite.evaluate_file(est, folder / "rows.csv", "y", chunk_rows=50_000)
    assert rows == 300_000 and metrics["r2"] > 0.5


def test_user_mistakes_are_one_red_line(model_and_rows, tmp_path):
    folder, _, _ = model_and_rows
    data = tmp_path / "d.csv"
    pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3] * 5, "item_id": [1, 2, 3, 1, 2, 3] * 5}).to_csv(data, index=False)
    rec = tmp_path / "rec.tsm"
    assert cli("recommend", "fit", data, "-o", rec, "-p", "max_epochs=1", "--quiet").returncode == 0
    (tmp_path / "folder").mkdir()
    cases = [
        (("predict", rec, folder / "rows.csv", "-o", tmp_path / "p.csv"), "not a tabular model"),
        (("evaluate", rec, folder / "rows.csv", "-t", "a"), "not a tabular model"),
        (("train", data, "-t", "item_id", "-o", tmp_path / "folder", "--force"), "is a folder"),
        (("predict", folder / "m.tsm", folder / "rows.csv", "-o", tmp_path / "folder"), "is a folder"),
        (("train", data, "-t", "item_id", "-o", tmp_path / "m.tsm", "-p", "max_epoch=3"), "did you mean 'max_epochs'"),
        (("predict", folder / "m.tsm", tmp_path / "missing.csv", "-o", tmp_path / "p2.csv"), "not found"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p2.csv").exists()


def test_compare_with_no_successful_model_exits_non_zero(tmp_path):
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    # An empty column: every deep model refuses it (the baselines would drop it).
    pd.DataFrame({"a": rng.normal(size=60), "e": np.nan, "y": rng.integers(0, 2, 60)}).to_csv(data, index=False)
    r = cli("compare", data, "-t", "y", "--models", "mlp,resnet", "--cv", "2")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no model" in r.stderr and "Traceback" not in r.stderr
