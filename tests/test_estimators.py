"""Estimators: registry, sklearn integration, persistence, devices and error messages."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import tabular_suite
from conftest import FAST
from tabular_suite import FTTransformerClassifier, MLPClassifier, MLPRegressor, ResNetClassifier, load

ALL_CLASSES = [
    tabular_suite.get_model(n).classifier for n in tabular_suite.list_models()
] + [tabular_suite.get_model(n).regressor for n in tabular_suite.list_models()]
SMALL = dict(d_token=16, n_heads=2, n_blocks=1)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (
    ["mps"] if torch.backends.mps.is_available() else []
)


def test_registry():
    assert tabular_suite.list_models() == ["autoint", "excelformer", "finalmlp", "ft_transformer", "mlp", "resnet"]
    assert tabular_suite.list_models("regression") == tabular_suite.list_models()
    est = tabular_suite.make_estimator("resnet", "classification", max_epochs=3)
    assert isinstance(est, ResNetClassifier) and est.max_epochs == 3
    assert isinstance(tabular_suite.make_estimator("MLP", "regression"), MLPRegressor)
    with pytest.raises(ValueError, match="Unknown model 'xgb'.*mlp"):
        tabular_suite.make_estimator("xgb")
    with pytest.raises(ValueError, match="Unknown task"):
        tabular_suite.make_estimator("mlp", "ranking")
    with pytest.raises(ValueError, match="Invalid parameter.*nonsense"):
        tabular_suite.make_estimator("mlp", nonsense=1)
    with pytest.raises(ValueError, match="already registered"):
        tabular_suite.register_model("mlp", "again", classifier=ResNetClassifier)


def test_paper_defaults():
    ft = FTTransformerClassifier()
    assert (ft.n_blocks, ft.d_token, ft.n_heads, ft.attention_dropout, ft.ffn_dropout) == (3, 192, 8, 0.2, 0.1)
    assert (ft.lr, ft.weight_decay, ft.patience, ft.batch_size) == (1e-4, 1e-5, 16, 256)
    assert abs(ft.ffn_d_hidden_multiplier - 4 / 3) < 1e-12


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_every_estimator_has_a_docstring_with_an_example(cls):
    assert "Examples" in cls.__doc__ and ">>>" in cls.__doc__
    assert "random_state" in cls.__doc__


def test_pipeline_cross_val_and_grid_search(mixed_frame):
    df, y, _ = mixed_frame
    pipe = make_pipeline(FunctionTransformer(lambda d: d.assign(x3=d["x1"] * 2)), MLPClassifier(**FAST))
    scores = cross_val_score(pipe, df, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.7
    grid = GridSearchCV(MLPClassifier(**FAST), {"d_block": [16, 32]}, cv=2).fit(df, y)
    assert grid.best_params_["d_block"] in (16, 32)
    assert grid.predict(df).shape == (len(df),)


def test_clone_and_pickle(mixed_frame):
    df, y, _ = mixed_frame
    est = FTTransformerClassifier(**FAST, **SMALL).fit(df, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "module_")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(df), est.predict_proba(df))


@pytest.mark.parametrize("fit_device", DEVICES)
@pytest.mark.parametrize("predict_device", DEVICES)
def test_fitted_on_one_device_predicts_on_another(mixed_frame, tmp_path, fit_device, predict_device):
    df, y, _ = mixed_frame
    est = MLPClassifier(**FAST, device=fit_device).fit(df, y)
    expected = est.predict_proba(df)
    for restored in (pickle.loads(pickle.dumps(est)), _save_load(est, tmp_path)):
        assert all(p.device.type == "cpu" for p in restored.module_.parameters())
        restored.set_params(device=predict_device)
        np.testing.assert_allclose(restored.predict_proba(df), expected, atol=1e-5)


def _save_load(est, tmp_path):
    path = tmp_path / "model.tsm"
    est.save(path)
    return load(path)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_save_load_round_trip(cls, mixed_frame, tmp_path):
    df, y_cls, y_reg = mixed_frame
    y = y_reg if cls.__name__.endswith("Regressor") else y_cls
    params = {**FAST, **(SMALL if "FT" in cls.__name__ or "Excel" in cls.__name__ else {})}
    est = cls(**params).fit(df, y)
    restored = _save_load(est, tmp_path)
    assert type(restored) is cls and restored.get_params() == est.get_params()
    np.testing.assert_array_equal(restored.predict(df), est.predict(df))
    assert restored.history_ == est.history_
    if hasattr(est, "classes_"):
        np.testing.assert_array_equal(restored.classes_, est.classes_)
    assert cls.load(tmp_path / "model.tsm").n_features_in_ == df.shape[1]


def test_save_load_numpy_input_and_class_check(tmp_path):
    X = np.random.default_rng(0).normal(size=(60, 3))
    est = MLPRegressor(**FAST).fit(X, X[:, 0])
    est.save(tmp_path / "m.tsm")
    assert np.array_equal(load(tmp_path / "m.tsm").predict(X), est.predict(X))
    with pytest.raises(ValueError, match="not a MLPClassifier"):
        MLPClassifier.load(tmp_path / "m.tsm")


def test_tampered_truncated_and_foreign_files_raise(mixed_frame, tmp_path):
    df, y, _ = mixed_frame
    path = tmp_path / "m.tsm"
    MLPClassifier(**FAST).fit(df, y).save(path)
    data = bytearray(path.read_bytes())
    tampered = tmp_path / "tampered.tsm"
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted or was modified"):
        load(tampered)
    truncated = tmp_path / "truncated.tsm"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="corrupted or was modified"):
        load(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"a": 1}, foreign)
    with pytest.raises(ValueError, match="not a tabular_suite model file"):
        load(foreign)
    with pytest.raises(ValueError, match="not found"):
        load(tmp_path / "nothing.tsm")


def test_loading_never_unpickles_code(tmp_path):
    """Even with a valid checksum, a payload holding arbitrary objects is refused."""
    import hashlib
    import io

    from tabular_suite.estimators.persistence import MODEL_FILE_MAGIC

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    buffer = io.BytesIO()
    torch.save({"config": "{}", "tensors": {}, "x": Evil()}, buffer)
    payload = buffer.getvalue()
    path = tmp_path / "evil.tsm"
    path.write_bytes(MODEL_FILE_MAGIC + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(ValueError, match="could not be decoded"):
        load(path)


# ---------------------------------------------------------------------------- errors
def test_missing_and_extra_columns_are_named(mixed_frame):
    df, y, _ = mixed_frame
    est = MLPClassifier(**FAST).fit(df, y)
    with pytest.raises(ValueError, match=r"(?s)seen at fit time, yet now missing.*- color"):
        est.predict(df.drop(columns="color"))
    with pytest.raises(ValueError, match=r"(?s)unseen at fit time.*- extra"):
        est.predict(df.assign(extra=1.0))
    with pytest.raises(ValueError, match="same columns"):
        est.predict(df[["x2", "x1", "color", "flag"]])


def test_wrong_shapes(mixed_frame):
    df, y, _ = mixed_frame
    with pytest.raises(ValueError, match="Expected 2D"):
        MLPClassifier(**FAST).fit(df["x1"].to_numpy(), y)
    with pytest.raises(ValueError, match="X has 240 rows but y has 10"):
        MLPClassifier(**FAST).fit(df, y[:10])
    est = MLPClassifier(**FAST).fit(df[["x1", "x2"]].to_numpy(), y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 2"):
        est.predict(np.zeros((2, 3)))


def test_strings_in_numeric_column_at_predict(mixed_frame):
    df, y, _ = mixed_frame
    est = MLPClassifier(**FAST).fit(df, y)
    bad = df.head(3).astype({"x1": object})
    bad.loc[1, "x1"] = "twelve"
    with pytest.raises(ValueError, match=r"Numeric column 'x1' contains non-numeric values such as 'twelve'"):
        est.predict(bad)


def test_one_class_and_empty_tables(mixed_frame):
    df, y, _ = mixed_frame
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier(**FAST).fit(df, np.full(len(df), "yes"))
    with pytest.raises(ValueError, match="0 sample"):
        MLPClassifier(**FAST).fit(df.iloc[:0], y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        MLPClassifier(**FAST).fit(df[[]], y)
    with pytest.raises(ValueError, match="regressor needs a numeric target"):
        MLPRegressor(**FAST).fit(df, y)
    with pytest.raises(ValueError, match="NaN or infinite"):
        MLPRegressor(**FAST).fit(df, np.r_[np.nan, np.ones(len(df) - 1)])


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.zeros((2, 2)))
