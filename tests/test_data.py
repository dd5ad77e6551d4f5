"""Data layer: input types, column roles, scaling, NaN, categories, labels, errors."""

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from conftest import FAST
from tabular_suite import MLPClassifier, MLPRegressor
from tabular_suite.data import LabelEncoder, TablePreprocessor, infer_schema, read_table
from tabular_suite.data.preprocess import MISSING_ID, UNKNOWN_ID, DataDriftWarning


def test_all_table_types_give_identical_predictions(mixed_frame):
    df, y, _ = mixed_frame
    numeric = df[["x1", "x2"]]
    inputs = {
        "pandas": df,
        "polars": pl.from_pandas(df),
        "pyarrow": pa.Table.from_pandas(df, preserve_index=False),
    }
    ref = MLPClassifier(**FAST).fit(df, y).predict_proba(df)
    for name, X in inputs.items():
        est = MLPClassifier(**FAST).fit(X, pl.Series(y) if name == "polars" else y)
        np.testing.assert_array_equal(est.predict_proba(X), ref, err_msg=name)
        assert list(est.feature_names_in_) == list(df.columns)
    est = MLPClassifier(**FAST).fit(numeric.to_numpy(), y)
    assert est.predict(numeric.to_numpy()).shape == (len(df),)
    assert not hasattr(est, "feature_names_in_")


def test_schema_inference_and_override():
    df = pd.DataFrame(
        {
            "num": [1.0, 2.0],
            "int": [1, 2],
            "obj": ["a", "b"],
            "cat": pd.Categorical(["x", "y"]),
            "flag": [True, False],
            "s": pd.Series(["u", "v"], dtype="string"),
        }
    )
    schema = infer_schema(df)
    assert schema.numeric == ("num", "int")
    assert schema.categorical == ("obj", "cat", "flag", "s")
    forced = infer_schema(df, categorical_features=["int"])
    assert forced.numeric == ("num",) and "int" in forced.categorical
    assert infer_schema(df, categorical_features=[1]).categorical[0] == "int"
    with pytest.raises(ValueError, match="'nope'"):
        infer_schema(df, categorical_features=["nope"])


def test_quantile_scaling_is_normal_and_fitted_on_train_only():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"a": rng.exponential(size=5000)})
    pre = TablePreprocessor().fit(train)
    z = pre.transform(train).x_num[:, 0]
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    assert abs(np.median(z)) < 0.05
    # A shifted test table is mapped with the train quantiles, not re-fitted.
    with pytest.warns(DataDriftWarning, match="far outside the training range: 'a'"):
        shifted = pre.transform(pd.DataFrame({"a": train["a"] + 100})).x_num[:, 0]
    assert shifted.min() > 5
    std = TablePreprocessor(numeric_scaling="standard").fit(train).transform(train).x_num[:, 0]
    assert abs(std.mean()) < 1e-5 and abs(std.std() - 1) < 1e-3


def test_missing_values_get_imputation_and_indicator():
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    pre = TablePreprocessor(numeric_scaling="standard").fit(df)
    out = pre.transform(df)
    assert pre.output_feature_names == ["a", "b", "a__missing"]
    assert out.x_num[1, 0] == 0.0  # imputed at the (scaled) mean
    np.testing.assert_array_equal(out.x_num[:, 2], [0, 1, 0, 0])
    # NaN in a column that had none at fit time is imputed (no indicator to learn from).
    late = pre.transform(pd.DataFrame({"a": [1.0], "b": [np.nan]}))
    assert late.x_num[0, 1] == 0.0


def test_categorical_codes_reserve_missing_and_unknown():
    pre = TablePreprocessor().fit(pd.DataFrame({"c": ["x", "y", None, "x"]}))
    assert pre.cardinalities == [4]
    codes = pre.transform(pd.DataFrame({"c": ["y", "never-seen", None, "x"]})).x_cat[:, 0]
    assert codes[1] == UNKNOWN_ID and codes[2] == MISSING_ID
    assert codes[0] >= 2 and codes[3] >= 2 and codes[0] != codes[3]


def test_unseen_category_at_predict_never_crashes(mixed_frame):
    df, y, _ = mixed_frame
    est = MLPClassifier(**FAST).fit(df, y)
    new = df.head(5).copy()
    new["color"] = ["purple", "red", None, "teal", "blue"]
    assert est.predict_proba(new).shape == (5, 2)
    # every unseen category is the reserved unknown code: a row predicts alike whichever it is
    row = df.head(1)
    proba = [est.predict_proba(row.assign(color=c))[0] for c in ("purple", "teal", "red")]
    np.testing.assert_array_equal(proba[0], proba[1])
    assert not np.array_equal(proba[0], proba[2])


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog"]),
        np.array([3, 7]),
        np.array([True, False]),
        np.array([0.0, 2.0]),
    ],
)
def test_labels_of_any_dtype_round_trip(labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = labels[(X[:, 0] > 0).astype(int)]
    est = MLPClassifier(**FAST).fit(X, y)
    assert est.classes_.dtype == labels.dtype
    assert set(est.predict(X)) <= set(labels)
    assert est.score(X, y) > 0.8


def test_multiclass_probabilities(mixed_frame):
    df, _, _ = mixed_frame
    y = np.array(["a", "b", "c"])[np.argsort(np.argsort(df["x1"].to_numpy())) * 3 // len(df)]
    est = MLPClassifier(max_epochs=40, num_threads=1, random_state=0).fit(df, y)
    proba = est.predict_proba(df)
    assert proba.shape == (len(df), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert est.score(df, y) > 0.7


def test_regression_target_standardized_inside_and_returned_in_units(mixed_frame):
    df, _, y = mixed_frame
    est = MLPRegressor(max_epochs=40, num_threads=1, random_state=0).fit(df, y)
    pred = est.predict(df)
    assert 500 < pred.mean() < 1500  # original units, not standardized ones
    assert est.score(df, y) > 0.8
    assert abs(est._target_scaler.mean_ - y.mean()) < 1e-9


def test_label_encoder_rejects_one_class_and_nan():
    with pytest.raises(ValueError, match="only one class"):
        LabelEncoder().fit(np.array(["a", "a"]))
    with pytest.raises(ValueError, match="missing"):
        LabelEncoder().fit(np.array([1.0, np.nan]))


def test_infinite_values_raise_naming_the_column(mixed_frame):
    df, y, _ = mixed_frame
    bad = df.copy()
    bad.loc[3, "x1"] = np.inf
    with pytest.raises(ValueError, match=r"Column 'x1' contains infinite values"):
        MLPClassifier(**FAST).fit(bad, y)
    est = MLPClassifier(**FAST).fit(df, y)
    with pytest.raises(ValueError, match="'x1'.*infinite"):
        est.predict(bad)


@pytest.mark.parametrize("column,values", [("x2", np.nan), ("color", None)])
def test_entirely_empty_column_raises_naming_it(mixed_frame, column, values):
    df, y, _ = mixed_frame
    bad = df.copy()
    bad[column] = values
    with pytest.raises(ValueError, match=rf"Column '{column}' is entirely empty"):
        MLPClassifier(**FAST).fit(bad, y)


def test_read_table_csv_parquet_and_errors(tmp_path, mixed_frame):
    df, _, _ = mixed_frame
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet")
    assert read_table(tmp_path / "t.csv").shape == df.shape
    assert read_table(tmp_path / "t.parquet").shape == df.shape
    (tmp_path / "semicolon.csv").write_text("a;b;c\n1,5;x;2\n2,5;y;3\n")
    assert list(read_table(tmp_path / "semicolon.csv").columns) == ["a", "b", "c"]
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(ValueError, match="Could not parse .*ragged.csv.*line 3"):
        read_table(tmp_path / "ragged.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "latin.csv").write_bytes("a,b\n1,caf\xe9\n".encode("latin-1"))
    latin = read_table(tmp_path / "latin.csv")  # detected
    assert latin["b"].tolist() == ["caf\xe9"] and latin.attrs["csv_dialect"]["encoding"] == "cp1252"
    with pytest.raises(ValueError, match="not valid utf-8 text .* pass its encoding"):
        read_table(tmp_path / "latin.csv", encoding="utf-8")
    with pytest.raises(ValueError, match="not found"):
        read_table(tmp_path / "missing.csv")


def test_hash_buckets_tell_rare_and_unseen_categories_apart(tmp_path):
    rng = np.random.default_rng(0)
    frequent = [f"f{i}" for i in range(5)]
    rare = [f"r{i}" for i in range(200)]  # seen once each: below min_frequency=2
    values = np.array(frequent * 40 + rare, dtype=object)
    df = pd.DataFrame({"id": values, "x": rng.normal(size=len(values))})
    plain = TablePreprocessor(random_state=0, min_frequency=2).fit(df)
    pre = TablePreprocessor(random_state=0, min_frequency=2, hash_buckets=16).fit(df)
    assert pre.categories == plain.categories == [sorted(frequent)]
    assert pre.cardinalities == [5 + 2 + 16] and plain.cardinalities == [5 + 2]
    codes = pre.transform(df).x_cat[:, 0]
    base = plain.transform(df).x_cat[:, 0]
    kept = np.isin(values, frequent)
    np.testing.assert_array_equal(codes[kept], base[kept])  # kept categories: the same codes
    assert (base[~kept] == UNKNOWN_ID).all()
    buckets = codes[~kept]
    assert ((buckets >= 7) & (buckets < 7 + 16)).all() and len(np.unique(buckets)) >= 12  # spread out
    # Unseen at predict time: hashed the same way, stable for the same value, in any table form.
    new = pd.DataFrame({"id": ["r3", "never", "never", None], "x": [0.0] * 4})
    new_codes = pre.transform(new).x_cat[:, 0]
    assert new_codes[0] == codes[list(values).index("r3")] and new_codes[1] == new_codes[2] >= 7
    assert new_codes[3] == MISSING_ID
    as_category = pre.transform(new.astype({"id": "category"})).x_cat[:, 0]
    np.testing.assert_array_equal(as_category, new_codes)
    # Saved and loaded: the same codes; rows mostly of buckets are drift like unseen categories.
    config, arrays = pre.get_state()
    np.testing.assert_array_equal(
        TablePreprocessor.from_state(config, arrays).transform(new).x_cat, pre.transform(new).x_cat
    )
    with pytest.warns(DataDriftWarning, match="id"):
        pre.transform(pd.DataFrame({"id": [f"n{i}" for i in range(20)], "x": np.zeros(20)}))
    with pytest.raises(ValueError, match="hash_buckets must be"):
        TablePreprocessor(hash_buckets=0)


def test_category_counts_are_the_same_from_categorical_and_text_columns():
    rng = np.random.default_rng(0)
    values = rng.choice(["a", "b", "c", None], 500).astype(object)
    text = pd.DataFrame({"c": values})
    cat = text.astype({"c": "category"})
    batches = lambda df: (df.iloc[i : i + 100] for i in range(0, 500, 100))  # noqa: E731
    for pre in (
        TablePreprocessor(random_state=0).fit(text),
        TablePreprocessor(random_state=0).fit_batches(batches(cat)),
    ):
        assert pre.categories == [["a", "b", "c"]]
        np.testing.assert_array_equal(pre.transform(cat).x_cat, pre.transform(text).x_cat)


def test_integer_categories_match_whether_a_file_has_missing_values_or_not():
    """pandas holds an integer column as floats as soon as one value is missing: 1001 and 1001.0
    are the same category, in the training table, a predicted one, a chunk of either, and for the
    comparison's ordinal codes. A model file written before keeps its own keys ("1001.0")."""
    from tabular_suite.data.preprocess import OrdinalCategories

    whole = pd.DataFrame({"zip": [1001, 1002, 1001, 1003] * 5, "x": np.arange(20.0)})
    gaps = whole.astype({"zip": float})
    gaps.loc[[0, 5], "zip"] = np.nan
    new = pd.DataFrame({"zip": [1001.0, 1003.0, np.nan], "x": [1.0, 2.0, 3.0]})
    chunks = lambda df: (df.iloc[i : i + 5] for i in range(0, 20, 5))  # noqa: E731 (chunk 0 has the gaps)
    for fitted in (whole, gaps):
        for pre in (
            TablePreprocessor(categorical_features=["zip"]).fit(fitted),
            TablePreprocessor(categorical_features=["zip"]).fit_batches(chunks(fitted)),
        ):
            assert pre.categories == [["1001", "1002", "1003"]]
            for rows in (new, new.astype({"zip": "Int64"}), new.iloc[:2].astype({"zip": int})):
                assert pre.category_codes(rows)[:2, 0].tolist() == [2, 4]
        codes = OrdinalCategories().fit(fitted[["zip"]])
        missing = 3 if fitted is gaps else np.nan  # ("__missing__" sorts after the digits)
        np.testing.assert_array_equal(codes.transform(new[["zip"]])[:, 0], [0, 2, missing])
    config, arrays = TablePreprocessor(categorical_features=["zip"]).fit(gaps).get_state()
    config.update(key_rule=0, categories=[["1001.0", "1002.0", "1003.0"]])  # (an older file)
    assert TablePreprocessor.from_state(config, arrays).category_codes(new)[:, 0].tolist() == [2, 4, MISSING_ID]


def test_estimators_train_with_hash_buckets():
    from tabular_suite import FinalMLPClassifier, TabPFNClassifier

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"id": [f"u{i}" for i in rng.integers(0, 400, 600)], "x": rng.normal(size=600)})
    y = (X["x"] > 0).astype(int)
    est = FinalMLPClassifier(hash_buckets=32, min_frequency=3, max_epochs=2, random_state=0, num_threads=1).fit(X, y)
    kept = len(est.preprocessor_.categories[0])
    assert est.module_.embedding.categorical.embedding.num_embeddings == kept + 2 + 32
    assert est.predict_proba(pd.DataFrame({"id": ["new1", "u7"], "x": [0.5, -0.5]})).shape == (2, 2)
    # The in-context model reads bucketed categories as missing (its codes stop at the kept ones).
    pfn = TabPFNClassifier(hash_buckets=32, min_frequency=3, num_threads=1, random_state=0).fit(X[:200], y[:200])
    assert pfn.predict_proba(X[200:260]).shape == (60, 2)


def test_ordinal_categories_give_ordinal_encoders_codes_over_the_text():
    """The same codes, and one-hot columns over them, as scikit-learn's encoders over the values'
    text (the comparison's baselines used those), for text, mixed, categorical and boolean columns."""
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from tabular_suite.data.preprocess import OrdinalCategories

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame(
        {
            "text": pd.Series(rng.choice(["a", "b", "c", None], n), dtype="string"),
            "mixed": pd.Series(rng.choice([1, "x", 2.5, None], n), dtype=object),
            "cat": pd.Series(rng.choice([3, 1, 2], n)).astype("category").where(rng.random(n) > 0.1),
            "flag": pd.Series(rng.random(n) > 0.5, dtype=object),
            "rare": pd.Series([f"r{i}" for i in rng.integers(0, 120, n)], dtype="string"),
        }
    )
    fit, new = df.iloc[:300], df.iloc[300:].copy()
    new.loc[new.index[:5], "text"] = "unseen"
    new.loc[new.index[:5], "rare"] = "r999"

    def text(X):
        return X.astype(object).where(X.notna(), "__missing__").astype(str)

    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    expected = ordinal.fit(text(fit)).transform(text(new))
    codes = OrdinalCategories().fit(fit)
    np.testing.assert_array_equal(codes.transform(new), expected)
    assert np.isnan(expected[:5, 0]).all() and not np.isnan(expected[5:, 0]).any()
    onehot = dict(handle_unknown="infrequent_if_exist", min_frequency=5, max_categories=64)
    over_text = OneHotEncoder(**onehot).fit(text(fit)).transform(text(new)).toarray()
    over_codes = OneHotEncoder(**onehot).fit(codes.transform(fit)).transform(codes.transform(new)).toarray()
    np.testing.assert_array_equal(over_codes, over_text)
    codes.fit(new)  # fitted again: its own categories, not those of the first fit
    np.testing.assert_array_equal(codes.transform(new), ordinal.fit(text(new)).transform(text(new)))
