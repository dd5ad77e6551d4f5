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

TABULAR = tabular_suite.list_models(family="tabular")
ALL_CLASSES = [tabular_suite.get_model(n).classifier for n in TABULAR] + [
    tabular_suite.get_model(n).regressor for n in TABULAR
]
SMALL = dict(d_token=16, n_heads=2, n_blocks=1)
DEVICES = (
    ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if torch.backends.mps.is_available() else [])
)


def test_registry():
    assert tabular_suite.list_models() == [
        "activator",
        "autoint",
        "excelformer",
        "finalmlp",
        "ft_transformer",
        "hourglass_mlp",
        "kan",
        "mlp",
        "resnet",
        "sasrec",
        "tabm",
        "tabpfn",
    ]
    assert tabular_suite.list_models("regression") == TABULAR + ["tabpfn"]
    assert tabular_suite.list_models("recommendation") == ["sasrec"]
    assert tabular_suite.list_models(family="in-context") == ["tabpfn"]
    est = tabular_suite.make_estimator("resnet", "classification", max_epochs=3)
    assert isinstance(est, ResNetClassifier) and est.max_epochs == 3
    assert isinstance(tabular_suite.make_estimator("MLP", "regression"), MLPRegressor)
    with pytest.raises(ValueError, match="Unknown model 'xgb'.*mlp"):
        tabular_suite.make_estimator("xgb")
    with pytest.raises(ValueError, match="Unknown task"):
        tabular_suite.make_estimator("mlp", "ranking")
    with pytest.raises(ValueError, match="MLPClassifier has no parameter .nonsense."):
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
    # The searched parameter reaches each fit: a learning rate too small to learn anything in 8
    # epochs scores clearly below a working one (listed second, so a search whose candidates were
    # all alike would pick the first), and the refitted best model is built with the grid's d_block.
    grid = GridSearchCV(MLPClassifier(**FAST), {"lr": [1e-7, 3e-3], "d_block": [128]}, cv=2).fit(df, y)
    bad, good = grid.cv_results_["mean_test_score"]
    assert good > bad + 0.2 and grid.best_params_ == {"lr": 3e-3, "d_block": 128}
    assert grid.best_estimator_.lr == 3e-3 and grid.best_estimator_.module_.blocks[0].out_features == 128
    np.testing.assert_array_equal(grid.predict(df), grid.best_estimator_.predict(df))


def test_clone_and_pickle(mixed_frame):
    df, y, _ = mixed_frame
    est = FTTransformerClassifier(**FAST, **SMALL).fit(df, y)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "module_")
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(df), est.predict_proba(df))


def test_a_failed_fit_leaves_the_estimator_as_it_was_and_pickling_changes_nothing(mixed_frame):
    df, y, _ = mixed_frame
    est = MLPClassifier(**FAST).fit(df, y)
    proba = est.predict_proba(df)
    four = np.arange(len(y)) % 4  # a new fit with other classes fails on a bad setting
    with pytest.raises(ValueError, match="max_epochs"):
        est.set_params(max_epochs=0).fit(df, four)
    assert est.classes_.tolist() == sorted(set(y)) and est.max_epochs == 0  # (its new settings stay)
    np.testing.assert_array_equal(est.predict_proba(df), proba)
    est.set_params(max_epochs=2).partial_fit(df, y)
    optimizer = est._train_state
    pickle.dumps(est)
    assert est._train_state is optimizer  # (a pickle drops the optimizer: the live estimator keeps it)


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
    small = SMALL if "FT" in cls.__name__ or "Excel" in cls.__name__ else dict(k=4) if "TabM" in cls.__name__ else {}
    est = cls(**FAST, **small).fit(df, y)
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

    from tabular_suite.core.model_file import MODEL_FILE_MAGIC

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
    with pytest.raises(ValueError, match=r"Column 'x1' holds numbers except for 1 value\(s\): 'twelve' \(row 1\)"):
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


# ------------------------------------------------------------- one source of defaults
import dataclasses  # noqa: E402
import re  # noqa: E402

from tabular_suite.core.params import param, params_doc  # noqa: E402
from tabular_suite.training.engine import TrainConfig, TrainingParams  # noqa: E402

#: A valid value other than the default for every architecture field (a new field must be added here).
EMBEDDINGS = dict(num_embeddings="periodic", n_frequencies=16, frequency_init_scale=0.1, n_bins=8, d_embedding=4)
NON_DEFAULT = {
    "mlp": dict(
        n_blocks=2, d_block=16, dropout=0.2, activation="gelu", cat_embedding_dim=4, bidirectional=True, **EMBEDDINGS
    ),
    "activator": dict(
        n_blocks=2,
        d_token=16,
        d_hidden=24,
        activation="silu",
        num_embeddings="piecewise-linear",
        n_frequencies=16,
        frequency_init_scale=0.1,
        n_bins=8,
    ),
    "hourglass_mlp": dict(
        n_blocks=2, d_wide=32, d_narrow=8, train_input_projection=True, cat_embedding_dim=4, **EMBEDDINGS
    ),
    "kan": dict(
        n_blocks=1, d_block=16, n_grid=5, grid_range=1.5, first_layer_norm=True, cat_embedding_dim=4, **EMBEDDINGS
    ),
    "resnet": dict(
        n_blocks=2, d_block=16, d_hidden_multiplier=1.5, dropout1=0.1, dropout2=0.05, cat_embedding_dim=4, **EMBEDDINGS
    ),
    "tabm": dict(
        arch_type="tabm-mini",
        k=4,
        n_blocks=2,
        d_block=16,
        dropout=0.2,
        activation="gelu",
        scaling_init="normal",
        **EMBEDDINGS,
    ),
    "ft_transformer": dict(
        n_blocks=2,
        d_token=16,
        n_heads=2,
        attention_dropout=0.1,
        ffn_d_hidden_multiplier=2.0,
        ffn_dropout=0.2,
        residual_dropout=0.05,
        num_embeddings="piecewise-linear",
        n_frequencies=16,
        frequency_init_scale=0.1,
        n_bins=8,
    ),
    "excelformer": dict(
        n_blocks=2, d_token=16, n_heads=4, attention_dropout=0.1, ffn_dropout=0.1, residual_dropout=0.1, init_scale=0.5
    ),
    "autoint": dict(
        embedding_dim=8,
        attention_layers=2,
        n_heads=4,
        attention_dim=16,
        use_residual=False,
        use_scale=True,
        layer_norm=True,
        attention_dropout=0.1,
        dnn_hidden=(8, 4),
        dnn_dropout=0.1,
        batch_norm=True,
    ),
    "finalmlp": dict(
        embedding_dim=4,
        mlp1_hidden=(8, 8),
        mlp2_hidden=(4,),
        mlp1_dropout=0.1,
        mlp2_dropout=0.2,
        batch_norm=True,
        use_gates=False,
        gate_hidden=(6,),
        n_heads=2,
    ),
    "sasrec": dict(maxlen=8, hidden_units=16, num_blocks=1, num_heads=2, dropout=0.1, norm="pre", init="normal"),
}
#: Estimator fields mapped onto the module rather than passed as they are: AutoInt+'s widths
#: (the estimator keeps FuxiCTR's 3 x 400 behind use_dnn; the module's () means plain AutoInt).
MAPPED = {("autoint", "dnn_hidden")}
ESTIMATORS = [(n, getattr(tabular_suite.get_model(n), kind)) for n in TABULAR for kind in ("classifier", "regressor")]
ESTIMATORS.append(("sasrec", tabular_suite.SASRecRecommender))


def _module(est, name):
    if name == "sasrec":
        return est._build_module(20)
    return est._build_module(2, [3], 1)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=lambda v: getattr(v, "__name__", v))
def test_architecture_defaults_have_one_source(name, cls):
    config = (cls._module_cls if name != "sasrec" else tabular_suite.nn.sasrec.SASRec).config_class
    assert issubclass(cls, config)
    est = cls()
    names = [f.name for f in dataclasses.fields(config)]
    assert sorted(NON_DEFAULT[name]) == sorted(names)
    for f in dataclasses.fields(config):
        if (name, f.name) not in MAPPED:
            assert getattr(est, f.name) == f.default, f.name
            assert NON_DEFAULT[name][f.name] != f.default, f.name
    # The module the estimator builds gets the estimator's values of every config field.
    plain_autoint = {"dnn_hidden": ()} if name == "autoint" else {}  # use_dnn=False
    assert _module(est, name).config == {**dataclasses.asdict(config()), **plain_autoint}
    extra = {"use_dnn": True} if name == "autoint" else {}
    assert _module(cls(**NON_DEFAULT[name], **extra), name).config == NON_DEFAULT[name]


def test_autoint_plus_widths_reach_the_module_only_with_use_dnn():
    est = tabular_suite.AutoIntClassifier(dnn_hidden=(8,))
    assert est.dnn_hidden == (8,) and _module(est, "autoint").dnn is None
    est.set_params(use_dnn=True)
    assert _module(est, "autoint").config["dnn_hidden"] == (8,)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=lambda v: getattr(v, "__name__", v))
def test_training_defaults_have_one_source(name, cls):
    est = cls()
    overridden = {f.name for f in dataclasses.fields(TrainingParams) if getattr(est, f.name) != f.default}
    recipes = {  # a model's own recipe: declared once, in its estimator class
        "ft_transformer": {"lr"},
        "excelformer": {"max_epochs", "batch_size", "lr", "weight_decay", "scheduler", "warmup_epochs", "patience"},
        "autoint": {"max_epochs", "batch_size", "weight_decay", "scheduler", "patience", "grad_clip"},
        "finalmlp": {"max_epochs", "batch_size", "weight_decay", "scheduler", "patience", "grad_clip"},
        "sasrec": {"max_epochs", "batch_size", "weight_decay", "patience"},
        "tabm": {"lr", "weight_decay", "grad_clip"},
        "activator": {"weight_decay"},
        "hourglass_mlp": {"weight_decay", "scheduler"},
        "kan": {"weight_decay"},
    }
    assert overridden == recipes.get(name, set())
    assert TrainingParams().max_epochs == TrainConfig().max_epochs == MLPClassifier().max_epochs == 300
    if name != "sasrec":  # the engine gets the estimator's values
        config = cls(num_threads=1, lr=0.05, max_epochs=7, batch_size=64)._train_config(seed=0, n_train=1000)
        assert (config.lr, config.max_epochs, config.batch_size) == (0.05, 7, 64)
        assert (config.patience, config.scheduler, config.grad_clip) == (est.patience, est.scheduler, est.grad_clip)


@pytest.mark.parametrize("name, cls", ESTIMATORS, ids=lambda v: getattr(v, "__name__", v))
def test_every_parameter_is_documented_with_its_default(name, cls):
    doc = cls.__doc__
    for param_name in cls().get_params(deep=False):
        assert re.search(rf"^    {param_name} : .+\n        \S", doc, re.M), f"{param_name} is not documented"
    assert len(re.findall(r"^    \w+ : ", doc, re.M)) == len(cls().get_params(deep=False))  # once each
    assert ">>>" in doc.split("    Examples\n    --------\n")[1]


def test_docs_show_each_models_own_defaults():
    assert "    max_epochs : int, default=500\n" in tabular_suite.ExcelFormerClassifier.__doc__
    assert '    batch_size : int or "auto", default="auto"\n' in tabular_suite.ExcelFormerRegressor.__doc__
    assert "    lr : float, default=0.0001\n" in FTTransformerClassifier.__doc__
    assert "    dnn_hidden : tuple of int, default=(400, 400, 400)\n" in tabular_suite.AutoIntClassifier.__doc__
    assert "    max_epochs : int, default=300\n" in MLPClassifier.__doc__


def test_params_doc_renders_an_overriding_default_with_the_base_description():
    @dataclasses.dataclass(kw_only=True, eq=False)
    class Base:
        width: int = param(8, "Width of  every\n layer.")
        rate: float | None = param(1e-5, "A rate.")
        mode: str = param("a", "The mode.", type='{"a", "b"}')

    @dataclasses.dataclass(kw_only=True, eq=False)
    class Child(Base):
        width: int = 16
        extra: tuple = param((1, 2), "Added by the child.")

    assert params_doc(Base) == (
        "    width : int, default=8\n        Width of every layer.\n"
        "    rate : float or None, default=1e-5\n        A rate.\n"
        '    mode : {"a", "b"}, default="a"\n        The mode.'
    )
    assert params_doc(Child, skip=["rate"]).splitlines() == [
        "    width : int, default=16",
        "        Width of every layer.",
        '    mode : {"a", "b"}, default="a"',
        "        The mode.",
        "    extra : tuple, default=(1, 2)",
        "        Added by the child.",
    ]
    assert params_doc(Base, Child).count("width") == 1  # no duplicates: the first class renders it

    @dataclasses.dataclass
    class Undocumented:
        x: int = 1

    with pytest.raises(ValueError, match="Undocumented.x has no description"):
        params_doc(Undocumented)


def test_estimators_stay_hashable_and_compare_by_identity():
    # The config dataclasses use eq=False: an estimator inheriting them keeps object equality.
    a, b = MLPClassifier(), MLPClassifier()
    assert a != b and len({a, b}) == 2 and a == a
    assert repr(MLPClassifier(d_block=16, max_epochs=3)) == "MLPClassifier(d_block=16, max_epochs=3)"
