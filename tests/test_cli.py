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
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,label\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    one_class = tmp_path / "one_class.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["x", "x", "x"]}).to_csv(one_class, index=False)
    assert cli("train", data, "--target", "label", "--out", tmp_path / "good.tsm", "--param", "max_epochs=2",
               "--quiet").returncode == 0
    tampered = tmp_path / "tampered.tsm"
    raw = bytearray((tmp_path / "good.tsm").read_bytes())
    raw[-50] ^= 0x01
    tampered.write_bytes(bytes(raw))
    cases = [
        (("train", data, "--target", "nope", "--out", tmp_path / "x.tsm"), "Target column 'nope'"),
        (("train", empty, "--target", "label", "--out", tmp_path / "x.tsm"), "is empty"),
        (("train", data, "--target", "label", "--model", "xgb", "--out", tmp_path / "x.tsm"), "Unknown model"),
        (("evaluate", bad_model, data, "--target", "label"), "not a tabular_suite model file"),
        (("train", data, "--target", "label", "--out", data), "already exists"),
        (("train", latin, "--target", "label", "--out", tmp_path / "x.tsm"), "not valid UTF-8"),
        (("train", one_class, "--target", "label", "--out", tmp_path / "x.tsm"), "only one class"),
        (("predict", tampered, data, "--out", tmp_path / "p.csv"), "corrupted or was modified"),
        (("predict", tmp_path / "missing.tsm", data, "--out", tmp_path / "p.csv"), "not found"),
        (("evaluate", tmp_path / "good.tsm", one_class, "--target", "label"), "lacks columns the model was trained on: b"),
        (("train", data, "--target", "label", "--param", "max_epochs", "--out", tmp_path / "x.tsm"),
         "key=value"),
    ]
    for args, message in cases:
        r = cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.tsm").exists() and not (tmp_path / "p.csv").exists()
    r = cli("--debug", "train", data, "--target", "nope", "--out", tmp_path / "x.tsm")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_datasets_and_models_commands():
    r = cli("datasets")
    assert r.returncode == 0 and "adult" in r.stdout and "california_housing" in r.stdout
    r = cli("datasets", "adult")
    assert r.returncode == 0 and "CC BY 4.0" in r.stdout and "workclass" in r.stdout
    r = cli("models")
    assert r.returncode == 0 and "ft_transformer" in r.stdout
    for command in ("train", "predict", "evaluate", "datasets", "models"):
        r = cli(command, "--help")
        assert r.returncode == 0 and "Example" in r.stdout, command


def test_pfn_pretrain_and_export_averaging_two_runs(tmp_path):
    from tabular_suite.pfn.pretrain import load_weights

    tiny = ["--steps", "1", "--d-model", "16", "--n-layers", "1", "--n-heads", "2", "--d-ffn", "32",
            "--max-rows", "160", "--tokens-per-step", "320", "--eval-every", "0", "--no-eval-bundled"]
    for seed in (0, 1):
        r = cli("pfn", "pretrain", "--checkpoint", tmp_path / f"run{seed}.pt", "--seed", seed, *tiny)
        assert r.returncode == 0, r.stderr
    out = tmp_path / "soup.tsm"
    r = cli("pfn", "export", tmp_path / "run0.pt", tmp_path / "run1.pt", "--out", out)
    assert r.returncode == 0, r.stderr
    model, config = load_weights(out)
    assert config["step"] == [1, 1] and model.config["d_model"] == 16
    r = cli("pfn", "export", tmp_path / "run0.pt", tmp_path / "missing.pt", "--out", tmp_path / "x.tsm")
    assert r.returncode != 0 and "missing.pt does not exist" in r.stderr + r.stdout
