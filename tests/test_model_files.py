"""Model files: files written before the redesign still load and predict the same (in fp32, the
precision they predicted in on a CPU then; with bf16 autocast, the default on CPUs with bf16
instructions since, within its rounding); unknown or newer files give an error naming the
version that wrote them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tabular_suite
from tabular_suite.core.model_file import read_model_file, write_model_file
from tabular_suite.training import device

OLD = Path(__file__).parent / "data" / "model_files_0.1.0"
TABULAR = ["mlp", "resnet", "ft_transformer", "excelformer", "autoint", "finalmlp", "tabpfn", "ensemble"]


@pytest.fixture(scope="module")
def old():
    return pd.read_csv(OLD / "X.csv"), np.load(OLD / "predictions.npz")


@pytest.fixture
def fp32_on_cpu(monkeypatch):
    """``precision="auto"`` as when the files were written: fp32 on every CPU."""
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def bf16_cpu(monkeypatch):
    """``precision="auto"`` as on a CPU with bf16 instructions (emulated on one without: slower, same rounding)."""
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)


@pytest.mark.parametrize("name", TABULAR)
def test_files_from_before_the_redesign_predict_as_they_did(name, old, fp32_on_cpu):
    X, expected = old
    model = tabular_suite.load(OLD / f"{name}.tsm")
    np.testing.assert_allclose(model.predict_proba(X), expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in TABULAR if n != "tabpfn"])
def test_files_from_before_the_redesign_predict_within_bf16_rounding_by_default(name, old, bf16_cpu):
    X, expected = old
    proba = tabular_suite.load(OLD / f"{name}.tsm").predict_proba(X)
    assert not np.allclose(proba, expected[name], rtol=1e-5, atol=1e-6)  # bf16 autocast did run
    np.testing.assert_allclose(proba, expected[name], atol=1e-2)


def test_regressor_and_recommender_files_from_before_the_redesign(old, fp32_on_cpu):
    X, expected = old
    np.testing.assert_allclose(
        tabular_suite.load(OLD / "mlp_regressor.tsm").predict(X), expected["mlp_regressor"], rtol=1e-5, atol=1e-6
    )
    rec = tabular_suite.load(OLD / "sasrec.tsm")
    assert isinstance(rec, tabular_suite.SASRecRecommender)
    np.testing.assert_array_equal(rec.recommend([0, 1], k=5)["item_id"].to_numpy(), expected["sasrec"])


def test_a_file_from_a_newer_format_names_the_version_that_wrote_it(tmp_path):
    config, tensors = read_model_file(OLD / "mlp.tsm")
    write_model_file(tmp_path / "new.tsm", {**config, "format_version": 99, "library_version": "9.9.0"}, tensors)
    with pytest.raises(ValueError, match=r"written by tabular_suite 9\.9\.0.*upgrade"):
        tabular_suite.load(tmp_path / "new.tsm")


def test_an_unknown_model_names_the_version_that_wrote_it(tmp_path):
    write_model_file(tmp_path / "m.tsm", {"estimator": "HoloFormer", "library_version": "0.7.0"}, {"w": torch.ones(1)})
    with pytest.raises(
        ValueError, match=r"'HoloFormer' \(written by tabular_suite 0\.7\.0\).*known models: .*MLPClassifier"
    ):
        tabular_suite.load(tmp_path / "m.tsm")


def test_weights_files_are_refused_with_the_way_to_use_them():
    from tabular_suite.incontext.weights import DEFAULT_WEIGHTS

    with pytest.raises(ValueError, match="TabPFNClassifier\\(weights=...\\)"):
        tabular_suite.load(DEFAULT_WEIGHTS)


def _edited(path, edit):
    """Rewrite a model file with an edited config and a recomputed checksum (it passes verification)."""
    config, tensors = read_model_file(path)
    edit(config)
    write_model_file(path, config, tensors)


@pytest.mark.parametrize(
    "kind, edit, message",
    [
        ("mlp", lambda c: c["params"].update(n_blocks=10**7), "asks for a size of 10,000,000"),
        ("mlp", lambda c: c["params"].update(d_block=512), "config does not match the tensors"),
        ("mlp", lambda c: c["params"].update(n_blocks=5), "config does not match the tensors"),
        ("sasrec", lambda c: c["params"].update(num_blocks=10**8), "asks for a size of 100,000,000"),
    ],
)
def test_an_edited_config_is_refused_before_allocating(tmp_path, kind, edit, message):
    import resource
    import time

    rng = np.random.default_rng(0)
    if kind == "mlp":
        X = rng.normal(size=(100, 3))
        model = tabular_suite.MLPRegressor(max_epochs=1, num_threads=1).fit(X, X[:, 0])
    else:
        log = pd.DataFrame({"user_id": np.repeat(np.arange(20), 5), "item_id": rng.integers(0, 30, 100)})
        model = tabular_suite.SASRecRecommender(max_epochs=1, num_threads=1).fit(log)
    path = tmp_path / "m.tsm"
    model.save(path)
    _edited(path, edit)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(ValueError, match=message):
        tabular_suite.load(path)
    assert time.perf_counter() - start < 30  # the unchecked n_blocks=10**7 MLP grew to 9.4 GB before it was stopped
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB


def test_edited_in_context_weights_are_refused(tmp_path):
    from tabular_suite.incontext.weights import load_weights, save_weights
    from tabular_suite.nn.pfn import PFNTransformer

    path = save_weights(PFNTransformer(max_features=4, d_model=8, n_heads=2, n_layers=1, d_ffn=16), tmp_path / "w.tsm")
    _edited(path, lambda c: c["model"].update(n_layers=10**6))
    with pytest.raises(ValueError, match="in-context weights: the config asks for a size"):
        load_weights(path)


def test_a_truncated_file_is_refused(tmp_path):
    X = np.random.default_rng(0).normal(size=(50, 3))
    path = tmp_path / "m.tsm"
    tabular_suite.MLPRegressor(max_epochs=1, num_threads=1).fit(X, X[:, 0]).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupted or was modified"):
        tabular_suite.load(path)
