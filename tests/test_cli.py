"""The command line: train -> predict -> evaluate and clean errors through a real subprocess; option
generation, error classes and the PFN pre-training command in this process (``invoke``)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import tabular_suite
from tabular_suite.cli import app as cli_app
from tabular_suite.core.model_file import MODEL_FILE_MAGIC
from tabular_suite.incontext.pretrain import PretrainConfig

ENV = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "COLUMNS": "120"}


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "tabular_suite.cli", *map(str, args)],  # (cli/__main__.py)
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )


def cli_all(*calls):
    """Independent CLI calls, two processes at a time (start-up dominates each, on one thread)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda args: cli(*args), calls))


@pytest.fixture
def invoke():
    """Run the CLI in this process (``app``, not ``main``: this process's allocator is left alone)."""
    runner = CliRunner()
    return lambda *args, env=None: runner.invoke(cli_app.app, [str(a) for a in args], env=env)


TINY_PFN = [
    "--steps",
    "1",
    "--d-model",
    "16",
    "--n-layers",
    "1",
    "--n-heads",
    "2",
    "--d-ffn",
    "32",
    "--max-rows",
    "160",
    "--tokens-per-step",
    "320",
]


@pytest.fixture(scope="module")
def files(
    tmp_path_factory,
):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(["u", "v", "w"], size=n)})
    df["label"] = np.where(df["a"] + (df["b"] == "u") > 0.3, "pos", "neg")
    df.to_csv(d / "train.csv", index=False)
    df.to_parquet(d / "train.parquet")
    return d


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_train_predict_evaluate_round_trip(files, ext, invoke):
    """CSV: the training in a real process (python -m tabular_suite.cli.app); the rest, and Parquet, in this
    process (typer's runner), the same commands."""
    data, model = files / f"train.{ext}", files / f"m_{ext}.tsm"

    def run(*args):
        if ext == "csv" and args[0] == "train":
            return cli(*args)
        r = invoke(*args)
        return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)

    r = run(
        "train",
        data,
        "--target",
        "label",
        "--model",
        "mlp",
        "--out",
        model,
        "--holdout",
        "0.25",
        "--param",
        "max_epochs=15",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and model.read_bytes().startswith(MODEL_FILE_MAGIC)
    preds = files / f"pred_{ext}.{ext}"
    r = run("predict", model, data, "--out", preds, "--proba")
    assert r.returncode == 0, r.stderr
    out = pd.read_csv(preds) if ext == "csv" else pd.read_parquet(preds)
    assert list(out.columns) == ["proba_neg", "proba_pos"] and len(out) == 200
    r = run("evaluate", model, data, "--target", "label")
    assert r.returncode == 0 and "roc_auc" in r.stdout


def test_predict_keeps_the_named_columns_as_the_file_writes_them(invoke, tmp_path):
    # An id the model never read is copied before the predictions, leading zeros and all; a
    # kept feature stays a number for the model; unknown or clashing names are errors.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": [f"{i:03d}" for i in range(60)], "a": rng.normal(size=60)})
    df["y"] = df["a"] * 2
    df.to_csv(tmp_path / "rows.csv", index=False)
    tabular_suite.MLPRegressor(max_epochs=2, num_threads=1).fit(df[["a"]], df["y"]).save(tmp_path / "m.tsm")
    r = invoke("predict", tmp_path / "m.tsm", tmp_path / "rows.csv", "-o", tmp_path / "p.csv",
               "--keep-columns", "id, a", "--chunk-rows", "25", "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = pd.read_csv(tmp_path / "p.csv", dtype={"id": str})
    assert out.columns.tolist() == ["id", "a", "prediction"] and out["id"].tolist() == df["id"].tolist()
    assert (tmp_path / "p.csv").read_text().splitlines()[1].startswith("000,")
    np.testing.assert_allclose(out["a"], df["a"], rtol=1e-9)
    # To Parquet, chunk by chunk: a kept whole-number feature with missing values in the second
    # chunk only, and a text column missing in the whole first chunk, keep one type per column.
    df["n"] = np.arange(60.0)
    df.loc[30:35, "n"] = np.nan
    df["note"] = [None] * 25 + ["x"] * 35
    df.to_csv(tmp_path / "rows3.csv", index=False)
    model = tabular_suite.MLPRegressor(max_epochs=2, num_threads=1).fit(df[["a", "n"]], df["y"])
    model.save(tmp_path / "m3.tsm")
    r = invoke("predict", tmp_path / "m3.tsm", tmp_path / "rows3.csv", "-o", tmp_path / "p.parquet",
               "--keep-columns", "id,n,note", "--chunk-rows", "25", "--quiet")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = pd.read_parquet(tmp_path / "p.parquet")
    assert out["id"].tolist() == df["id"].tolist() and out["note"].isna().sum() == 25
    np.testing.assert_array_equal(out["n"], df["n"])
    for keep, message in (("id,nope", "has no column 'nope' to keep"), ("prediction", "name of a prediction column")):
        df.assign(prediction=1).to_csv(tmp_path / "rows2.csv", index=False)
        r = invoke("predict", tmp_path / "m.tsm", tmp_path / "rows2.csv", "-o", tmp_path / "q.csv",
                   "--keep-columns", keep, "--quiet")  # fmt: skip
        assert r.exit_code == 1 and message in r.stderr and not (tmp_path / "q.csv").exists(), r.output


def test_train_an_in_context_model(invoke, files, tmp_path):
    """tabpfn has no training loop: no progress bar, epochs or MLflow run to pass on."""
    r = invoke(
        "train",
        files / "train.csv",
        "--target",
        "label",
        "--model",
        "tabpfn",
        "--out",
        tmp_path / "pfn.tsm",
        "--holdout",
        "0.25",
        "--param",
        "n_estimators=1",
    )
    assert r.exit_code == 0 and "saved TabPFNClassifier to" in r.stdout and "roc_auc" in r.stdout, r.output
    r = invoke(
        "train", files / "train.csv", "--target", "label", "--model", "tabpfn", "--out", tmp_path / "x.tsm", "--track"
    )
    assert r.exit_code == 1 and "--track logs a training run" in r.stderr and not (tmp_path / "x.tsm").exists()


def test_errors_are_one_line_with_nonzero_exit(files, tmp_path, invoke):
    """Each mistake in this process (typer's runner); two in real processes for their exit codes."""
    data = files / "train.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    bad_model = tmp_path / "bad.tsm"
    bad_model.write_bytes(b"garbage")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,label\n1,caf\xe9\n2,th\xe9\n".encode("latin-1"))
    one_class = tmp_path / "one_class.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["x", "x", "x"]}).to_csv(one_class, index=False)
    r = invoke("train", data, "--target", "label", "--out", tmp_path / "good.tsm", "--param", "max_epochs=2", "--quiet")
    assert r.exit_code == 0, r.output
    tampered = tmp_path / "tampered.tsm"
    raw = bytearray((tmp_path / "good.tsm").read_bytes())
    raw[-50] ^= 0x01
    tampered.write_bytes(bytes(raw))
    cases = [
        (("train", data, "--target", "nope", "--out", tmp_path / "x.tsm"), "Target column 'nope'"),
        (("train", empty, "--target", "label", "--out", tmp_path / "x.tsm"), "is empty"),
        (("train", data, "--target", "label", "--model", "xgb", "--out", tmp_path / "x.tsm"), "Unknown model"),
        (("evaluate", bad_model, data, "--target", "label"), "not a tabular_suite model file"),
        (("train", data, "--target", "label", "--out", tmp_path / "good.tsm"), "already exists"),
        # An input is never overwritten, even with --force.
        (("train", data, "--target", "label", "--out", data, "--force"), "is also an input"),
        (("predict", tmp_path / "good.tsm", data, "--out", data, "--force"), "is also an input"),
        (("predict", tmp_path / "good.tsm", data, "--out", tmp_path / "good.tsm", "--force"), "is also an input"),
        (
            ("train", latin, "--target", "label", "--out", tmp_path / "x.tsm", "--encoding", "utf-8"),
            "not valid utf-8 text",
        ),
        (("train", one_class, "--target", "label", "--out", tmp_path / "x.tsm"), "only one class"),
        (("predict", tampered, data, "--out", tmp_path / "p.csv"), "corrupted or was modified"),
        (("predict", tmp_path / "missing.tsm", data, "--out", tmp_path / "p.csv"), "not found"),
        (
            ("evaluate", tmp_path / "good.tsm", one_class, "--target", "label"),
            "lacks columns the model was trained on: b",
        ),
        (("train", data, "--target", "label", "--param", "max_epochs", "--out", tmp_path / "x.tsm"), "key=value"),
        (
            ("train", data, "--target", "label", "--out", tmp_path / "x.tsm", "--tracking-uri", "sqlite:///x.db"),
            "add --track",
        ),
        (("compare", data, "--target", "label", "--models", "linear", "--refit"), "--refit refits the best model"),
    ]
    kept = {path: path.read_bytes() for path in (data, tmp_path / "good.tsm")}
    process, debug = cli_all(cases[0][0], ("--debug", "train", data, "--target", "nope", "--out", tmp_path / "x.tsm"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert process.returncode == 1 and cases[0][1] in process.stderr and "Traceback" not in process.stderr
    for args, message in cases:
        r = invoke(*args)
        assert r.exit_code == 1, (args, r.output)
        assert message in r.stderr and "Traceback" not in r.output, r.output
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.tsm").exists() and not (tmp_path / "p.csv").exists()
    assert all(path.read_bytes() == content for path, content in kept.items())


def test_datasets_and_models_commands(invoke):
    r = invoke("datasets")
    assert r.exit_code == 0 and "adult" in r.stdout and "california_housing" in r.stdout
    r = invoke("datasets", "adult")
    assert r.exit_code == 0 and "CC BY 4.0" in r.stdout and "workclass" in r.stdout
    r = invoke("models")
    assert r.exit_code == 0 and "family" in r.stdout
    for name in tabular_suite.list_models():
        family = tabular_suite.get_model(name).family
        assert any(f" {name} " in line and f" {family} " in line for line in r.stdout.splitlines()), (name, r.stdout)
    for command in (["train"], ["predict"], ["evaluate"], ["datasets"], ["models"], ["pfn", "pretrain"]):
        r = invoke(*command, "--help")
        assert r.exit_code == 0 and "Example" in r.stdout, command


def test_pfn_pretrain_and_export_averaging_two_runs(invoke, tmp_path):
    from tabular_suite.incontext.weights import load_weights

    tiny = [*TINY_PFN, "--eval-every", "0", "--no-eval-bundled"]
    for seed in (0, 1):
        r = invoke("pfn", "pretrain", "--checkpoint", tmp_path / f"run{seed}.pt", "--seed", seed, *tiny)
        assert r.exit_code == 0, r.output
    out = tmp_path / "soup.tsm"
    r = invoke("pfn", "export", tmp_path / "run0.pt", tmp_path / "run1.pt", "--out", out)
    assert r.exit_code == 0, r.output
    model, config = load_weights(out)
    assert config["step"] == [1, 1] and model.config["d_model"] == 16
    r = invoke("pfn", "export", tmp_path / "run0.pt", tmp_path / "missing.pt", "--out", tmp_path / "x.tsm")
    assert r.exit_code != 0 and "missing.pt does not exist" in r.output


def test_pfn_pretrain_evaluates_on_the_bundled_datasets_by_default(invoke, tmp_path):
    r = invoke("pfn", "pretrain", "--checkpoint", tmp_path / "run.pt", *TINY_PFN, "--eval-every", "1")
    assert r.exit_code == 0, r.output
    for figure in ("eval_accuracy", "auc_adult", "auc_credit_g", "real_auc_mean"):
        assert f'"{figure}"' in r.stdout, r.stdout
    assert "auc_california_housing" not in r.stdout  # a regression table


def test_pfn_pretrain_options_are_the_config_fields(invoke, monkeypatch, tmp_path):
    pretrain = typer.main.get_command(cli_app.app).commands["pfn"].commands["pretrain"]
    options = {option.name: option for option in pretrain.params}
    help_lines = invoke("pfn", "pretrain", "--help", env={"COLUMNS": "300"}).stdout.splitlines()
    for field in dataclasses.fields(PretrainConfig):
        flag = "--" + field.name.replace("_", "-")
        option = options[field.name]
        assert option.opts == [flag] and option.default == field.default and option.help == field.metadata["doc"]
        [line] = [line for line in help_lines if f" {flag} " in line]
        assert f"[default: {field.default}]" in line, line

    seen = []
    module = sys.modules[PretrainConfig.__module__]  # the package's `pretrain` attribute is the function
    monkeypatch.setattr(module, "pretrain", lambda cfg, *args, **kwargs: seen.append(cfg) or {"steps": []})
    r = invoke(
        "pfn",
        "pretrain",
        "-c",
        tmp_path / "x.pt",
        "--no-eval-bundled",
        "--d-model",
        16,
        "--lr",
        "0.001",
        "--precision",
        "fp32",
    )
    assert r.exit_code == 0, r.output
    assert seen == [PretrainConfig(d_model=16, lr=0.001, precision="fp32")]


def test_user_error_is_one_line_and_exit_1(invoke, tmp_path):
    r = invoke("train", tmp_path / "missing.csv", "--target", "y", "--out", tmp_path / "m.tsm")
    assert r.exit_code == 1 and r.stderr.strip().splitlines() == [f"error: File not found: {tmp_path / 'missing.csv'}"]
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)


def test_unexpected_error_points_to_debug(invoke, monkeypatch):
    import tabular_suite.datasets

    monkeypatch.setattr(tabular_suite.datasets, "list_datasets", lambda: {}["x"])
    r = invoke("datasets")
    assert r.exit_code == cli_app.EXIT_UNEXPECTED_ERROR == 3
    assert r.stderr.strip().splitlines() == [
        "error: unexpected KeyError: 'x' (a bug in tabular-suite?); rerun with --debug for the traceback"
    ]
    assert "Traceback" not in r.output
    # --debug: the exception leaves the CLI, and Python prints its traceback
    code = (
        "import sys, tabular_suite.datasets as d; d.list_datasets = lambda: {}['x']; "
        "from tabular_suite.cli.app import main; sys.argv[0] = 'tabular-suite'; main()"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "--debug", "datasets"], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert r.returncode != 0 and "Traceback" in r.stderr and "KeyError: 'x'" in r.stderr, r.stderr


def test_cli_settles_the_heap_at_start_up(invoke, monkeypatch):
    calls = []
    monkeypatch.setattr(cli_app, "settle_heap", lambda: calls.append(1) or True)
    assert invoke("models").exit_code == 0 and calls == []  # the app inside another process: not its allocator
    monkeypatch.setattr(sys, "argv", ["tabular-suite", "models"])
    with pytest.raises(SystemExit) as exit_info:
        cli_app.main()
    assert exit_info.value.code == 0 and calls == [1]


def test_weights_calibration_and_threshold_from_the_command_line(tmp_path):
    """--sample-weight takes a column out of the features and weighs the rows (train and compare);
    compare says what it fitted on the out-of-fold predictions."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.where(X[:, 0] + rng.normal(0, 1, 400) > 1.4, "yes", "no")
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "w": rng.uniform(0.5, 2, 400), "y": y}).to_csv(data, index=False)
    runner = CliRunner()
    res = runner.invoke(
        cli_app.app,
        ["compare", str(data), "-t", "y", "--models", "linear", "--cv", "3", "--num-threads", "1",
         "--sample-weight", "w", "--class-weight", '{"yes": 2}', "--metric", "balanced_accuracy",
         "--calibrate", "temperature"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "calibration: temperature" in res.output and "decision threshold:" in res.output
    assert "numeric: 2" in res.output or "'a'" not in res.output  # two features: w is not one
    res = runner.invoke(
        cli_app.app,
        ["train", str(data), "-t", "y", "--model", "mlp", "--out", str(tmp_path / "m.tsm"), "--sample-weight", "w",
         "--param", "max_epochs=2", "--param", "num_threads=1", "--quiet", "--holdout", "0.2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert tabular_suite.load(tmp_path / "m.tsm").n_features_in_ == 2
    res = runner.invoke(cli_app.app, ["compare", str(data), "-t", "y", "--models", "linear", "--class-weight", "x"])
    assert res.exit_code == 1 and "--class-weight must be balanced" in res.output
    res = runner.invoke(cli_app.app, ["compare", str(data), "-t", "y", "--models", "linear", "--sample-weight", "v"])
    assert res.exit_code == 1 and "not a column of X" in res.output
