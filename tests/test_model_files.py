"""Model files: files written before the redesign still load and predict the same; unknown or
newer files give an error naming the version that wrote them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tabular_suite
from tabular_suite.core.model_file import read_model_file, write_model_file

OLD = Path(__file__).parent / "data" / "model_files_0.1.0"
TABULAR = ["mlp", "resnet", "ft_transformer", "excelformer", "autoint", "finalmlp", "tabpfn", "ensemble"]


@pytest.fixture(scope="module")
def old():
    return pd.read_csv(OLD / "X.csv"), np.load(OLD / "predictions.npz")


@pytest.mark.parametrize("name", TABULAR)
def test_files_from_before_the_redesign_predict_as_they_did(name, old):
    X, expected = old
    model = tabular_suite.load(OLD / f"{name}.tsm")
    np.testing.assert_allclose(model.predict_proba(X), expected[name], rtol=1e-5, atol=1e-6)


def test_regressor_and_recommender_files_from_before_the_redesign(old):
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
