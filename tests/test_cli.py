"""The command line through a real subprocess: train -> predict -> evaluate, and clean errors."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tabular_suite.estimators.persistence import MODEL_FILE_MAGIC

ENV = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "COLUMNS": "120"}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tabular_suite.cli.app", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory, ):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["u", "v", "w"], size=n)})
    df["label"] = np.where(df["a"] + (df["b"] == "u") > 0.3, "pos", "neg")
    df.to_csv(d / "train.csv", index=False)
    df.to_parquet(d / "train.parquet")
    return d


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_train_predict_evaluate_round_trip(files, ext):
    data, model = files / f"train.{ext}", files / f"m_{ext}.tsm"
    r = cli("train", data, "--target", "label", "--model", "mlp", "--out", model, "--holdout", "0.25",
            "--param", "max_epochs=15", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and model.read_bytes().startswith(MODEL_FILE_MAGIC)
    preds = files / f"pred_{ext}.{ext}"
    r = cli("predict", model, data, "--out", preds, "--proba")
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(preds) if ext == "csv" else pd.read_parquet(preds)
    assert list(out.columns) == ["proba_neg", "proba_pos"] and len(out) == 200
    r = cli("evaluate", model, data, "--target", "label")
    assert r.returncode == 0 and "roc_auc" in r.stdout


def test_errors_are_one_line_with_nonzero_exit(files, tmp_path):
    data = files / "train.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad_model = tmp_path / "bad.tsm"
    bad_model.write_bytes(b"garbage")
    cases = [
        (("train", data, "--target", "nope", "--out", tmp_path / "x.tsm"), "Target column 'nope'"),
        (("train", empty, "--target", "label", "--out", tmp_path / "x.tsm"), "is empty"),
        (("train", data, "--target", "label", "--model", "xgb", "--out", tmp_path / "x.tsm"), "Unknown model"),
        (("evaluate", bad_model, data, "--target", "label"), "not a tabular_suite model file"),
        (("train", data, "--target", "label", "--out", data), "already exists"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
