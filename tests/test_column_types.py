"""Column kinds decided from whole columns (issue 22, point 1): stray strings in numbers are an
error with the fix, dates and free text become features that carry over to new values,
ID-like columns are flagged, and drift at predict is named."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

import tabular_suite
from conftest import FAST
from tabular_suite.data import TablePreprocessor, read_table
from tabular_suite.data.features import HighCardinalityWarning, infer_feature_types
from tabular_suite.data.preprocess import DataDriftWarning


def _numbers_with_a_stray_string(n=600, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).round(3)
    y = (x + 0.3 * rng.normal(size=n) > 0).astype(int)
    column = pd.Series(x.astype(str), dtype=object)
    column[17] = "n/a?"
    return pd.DataFrame({"x": column, "noise": rng.normal(size=n)}), y


def test_a_stray_string_in_a_numeric_csv_column_is_an_error_naming_value_and_row(tmp_path):
    X, y = _numbers_with_a_stray_string()
    path = tmp_path / "t.csv"
    X.assign(y=y).to_csv(path, index=False)
    df = read_table(path)
    assert not pd.api.types.is_numeric_dtype(df["x"])  # pandas reads the column as strings
    with pytest.raises(ValueError, match=r"Column 'x' holds numbers except for 1 value\(s\): 'n/a\?' \(row 17\)") as e:
        tabular_suite.MLPClassifier(**FAST).fit(df[["x", "noise"]], df["y"])
    assert "coerce_numeric=['x']" in str(e.value) and "categorical_features=['x']" in str(e.value)
    # The fix it names: the value becomes missing and the column stays numeric.
    est = tabular_suite.MLPClassifier(**FAST, coerce_numeric=["x"]).fit(df[["x", "noise"]], df["y"])
    assert est.feature_types_ == {"x": "numeric", "noise": "numeric"}
    assert balanced_accuracy_score(df["y"], est.predict(df[["x", "noise"]])) > 0.8
    # compare() decides once and passes the decision to every model, baselines included.
    result = tabular_suite.compare(
        df[["x", "noise"]], df["y"], models=["linear"], cv=2, coerce_numeric=["x"], num_threads=1, tracking=False
    )
    assert result.leaderboard.set_index("model").loc["linear", "mean"] > 0.8
    assert result.data_summary["column_types"] == "2 numeric"
    with pytest.raises(ValueError, match="holds numbers except"):
        tabular_suite.compare(df[["x", "noise"]], df["y"], models=["linear"], cv=2, num_threads=1, tracking=False)


def test_declared_categorical_keeps_the_strings_as_categories():
    X, y = _numbers_with_a_stray_string(100)
    pre = TablePreprocessor(categorical_features=["x"], min_frequency=1).fit(X)
    assert pre.feature_types_["x"] == "categorical" and "n/a?" in pre.categories[0] and "0.126" in pre.categories[0]


def test_mostly_strings_are_categorical_and_numeric_strings_are_numbers():
    df = pd.DataFrame(
        {
            "code": ["A1", "B2", "7", "C3"] * 10,
            "n": ["1", " 2.5", None, "3e2"] * 10,
            "flag": ["Yes", "no", "yes", None] * 10,
            "b": [True, False, True, False] * 10,
        }
    )
    assert infer_feature_types(df) == {"code": "categorical", "n": "numeric", "flag": "boolean", "b": "boolean"}
    out = TablePreprocessor().fit(df).numeric_block(df)
    np.testing.assert_array_equal(out[:4, 0], [1.0, 2.5, np.nan, 300.0])


def _dated_table(start, n, seed):
    rng = np.random.default_rng(seed)
    days = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    y = (days.day_of_week >= 5).astype(int)  # weekends
    return days, y


@pytest.mark.parametrize("form", ["iso", "us", "datetime64", "aware"])
def test_dates_become_features_that_generalise_to_a_later_year(form):
    train_days, y_train = _dated_table("2023-01-01", 800, 0)
    test_days, y_test = _dated_table("2024-01-01", 300, 1)

    def as_column(days):
        if form == "iso":
            return pd.Series(days.strftime("%Y-%m-%d"), dtype=object)
        if form == "us":
            return pd.Series(days.strftime("%m/%d/%Y"), dtype=object)
        if form == "aware":
            return pd.Series(days.tz_localize("Europe/Rome"))
        return pd.Series(days)

    X_train, X_test = pd.DataFrame({"day": as_column(train_days)}), pd.DataFrame({"day": as_column(test_days)})
    # Standard scaling: the quantile default spreads the 7 weekdays by tie-breaking noise (0.92 here).
    est = tabular_suite.MLPClassifier(num_threads=1, random_state=0, max_epochs=60, numeric_scaling="standard")
    est.fit(X_train, y_train)
    assert est.feature_types_["day"] == {"iso": "datetime:ISO8601", "us": "datetime:%m/%d/%Y"}.get(form, "datetime")
    # Every test date is new; the day of week carries over (a categorical could not).
    assert (est.predict(X_test) == y_test).mean() > 0.95


def test_day_first_dates_and_explicit_format():
    days = pd.Series(["31/01/2024", "15/02/2024", "01/03/2024"] * 10)
    assert infer_feature_types(pd.DataFrame({"d": days}))["d"] == "datetime:%d/%m/%Y"
    ambiguous = pd.DataFrame({"d": ["01/02/2024", "03/04/2024"] * 10})
    with pytest.warns(UserWarning, match=r"read as %m/%d/%Y and as %d/%m/%Y alike .* --type d=datetime:%d/%m/%Y"):
        assert infer_feature_types(ambiguous)["d"] == "datetime:%m/%d/%Y"  # month first when both read: said
    pre = TablePreprocessor(feature_types={"d": "datetime:%d/%m/%Y"}).fit(ambiguous)
    assert pre.numeric_block(ambiguous)[0, 1] == 2.0  # month of 01/02/2024 read day first
    # Dates the fitted format cannot read are missing dates, and said so (any number of rows).
    month_first = pd.DataFrame({"d": ["02/13/2024", "01/02/2024"]})
    with pytest.warns(DataDriftWarning, match=r"not dates in the format fitted, read as missing: 'd'"):
        pre.transform(month_first)
    assert np.isnan(pre.numeric_block(month_first)[0]).all() and not np.isnan(pre.numeric_block(month_first)[1]).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pre.transform(pd.DataFrame({"d": ["13/02/2024", "01/02/2024"]}))  # (both read day first)
    # Offsets that differ between values (pandas raises): dropped, the wall time kept.
    zones = pd.DataFrame({"t": ["2024-01-01T23:30+02:00", "2024-01-01T10:00+00:00", "2024-01-02"] * 5})
    hours = TablePreprocessor().fit(zones).numeric_block(zones)[:3, 4]
    assert hours.tolist() == [23.5, 10.0, 0.0]


def test_numbers_with_units_read_as_categories_are_said():
    units = {"rate": ["12%", "5%", "7.5%"] * 4, "price": ["$1,200", "$30", "$5.50"] * 4}
    df = pd.DataFrame({**units, "ok": ["a", "b"] * 6})
    with pytest.warns(UserWarning) as caught:
        kinds = infer_feature_types(df)
    assert kinds == {"rate": "categorical", "price": "categorical", "ok": "categorical"}
    said = [str(w.message) for w in caught if "unit or sign" in str(w.message)]
    assert len(said) == 2 and "'rate'" in said[0] and "'$1,200'" in said[1]


def test_free_text_becomes_text_features_that_carry_to_new_sentences():
    rng = np.random.default_rng(0)
    good = ["great", "excellent", "lovely", "superb", "wonderful"]
    bad = ["awful", "terrible", "broken", "horrible", "useless"]
    filler = ["the", "product", "was", "really", "quite", "delivery", "item", "box"]

    def review(positive):
        words = list(rng.choice(filler, 4)) + [rng.choice(good if positive else bad)]
        rng.shuffle(words)
        return " ".join(words) + f" #{rng.integers(1_000_000)}"

    y = rng.integers(0, 2, 1_000)
    X = pd.DataFrame({"review": [review(v) for v in y]})
    assert infer_feature_types(X) == {"review": "text"}
    est = tabular_suite.MLPClassifier(num_threads=1, random_state=0, max_epochs=40).fit(X[:700], y[:700])
    assert est.feature_types_ == {"review": "text"} and est.preprocessor_.n_numeric_out == 16
    assert (est.predict(X[700:]) == y[700:]).mean() > 0.9  # every test review is a new string


def test_id_like_columns_warn_and_rare_levels_share_the_unknown_code():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": [f"u{i}" for i in range(300)] + ["u0"] * 20, "x": rng.normal(size=320)})
    with pytest.warns(HighCardinalityWarning, match=r"'user' \(300 values in 320 rows\)"):
        pre = TablePreprocessor().fit(df)
    assert pre.categories[0] == ["u0"]  # seen 21 times; the 299 seen once share the unknown code
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(TablePreprocessor(min_frequency=1).fit(df).categories[0]) == 300


def test_drift_at_predict_names_the_columns():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "c": rng.choice(["p", "q"], 300)})
    y = (X["a"] > 0).astype(int)
    est = tabular_suite.MLPClassifier(**FAST).fit(X, y)
    drifted = X.head(50).assign(a=np.nan, c="new")
    with pytest.warns(DataDriftWarning, match=r"all values missing: 'a'; mostly categories not seen at fit: 'c'"):
        est.predict(drifted)
    with pytest.warns(DataDriftWarning, match=r"far outside the training range: 'b'"):
        est.predict(X.head(50).assign(b=1e6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.predict(X.head(50))


def test_column_kinds_survive_save_and_load(tmp_path):
    days, y = _dated_table("2023-01-01", 400, 0)
    X = pd.DataFrame({"day": days.strftime("%d.%m.%Y"), "n": np.arange(400.0)})
    est = tabular_suite.MLPClassifier(**FAST).fit(X, y)
    est.save(tmp_path / "m.tsm")
    loaded = tabular_suite.load(tmp_path / "m.tsm")
    assert loaded.feature_types_ == est.feature_types_ == {"day": "datetime:%d.%m.%Y", "n": "numeric"}
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


# ----------------------------------------------------------------------------- CSV dialects
def _eu_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    price = rng.uniform(1, 5_000, n).round(2)
    return pd.DataFrame({"Preis": price, "Straße": rng.choice(["Hauptstraße", "Bahnhofstraße"], n)}), price


def _eu_csv(path, df):
    """As a German spreadsheet exports it: ';', decimal comma, '.' thousands, Windows-1252."""
    lines = ["Preis;Straße"] + [
        f"{p:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".") + f";{s}" for p, s in df.itertuples(False)
    ]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))


def test_a_semicolon_csv_with_decimal_commas_reads_as_numbers(tmp_path):
    df, price = _eu_table()
    _eu_csv(tmp_path / "eu.csv", df)
    read = read_table(tmp_path / "eu.csv")
    assert read.attrs["csv_dialect"] == {"sep": ";", "decimal": ",", "thousands": ".", "encoding": "cp1252"}
    np.testing.assert_allclose(read["Preis"].to_numpy(dtype=float), price)
    assert read["Straße"].iloc[0] in ("Hauptstraße", "Bahnhofstraße")
    assert infer_feature_types(read) == {"Preis": "numeric", "Straße": "categorical"}
    # Overrides win over detection.
    assert read_table(tmp_path / "eu.csv", decimal=".", thousands=None).attrs["csv_dialect"]["decimal"] == "."


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a,b\n1.5,x\n2.25,y\n", {"sep": ",", "decimal": ".", "thousands": None}),
        ("a\tb\n1,5\tx\n2,25\ty\n", {"sep": "\t", "decimal": ",", "thousands": None}),
        ('a,b\n"1,234,567.5",x\n"2,000.25",y\n', {"sep": ",", "decimal": ".", "thousands": ","}),
        ("a|b\n7|x\n8|y\n", {"sep": "|", "decimal": ".", "thousands": None}),
    ],
)
def test_dialect_detection(tmp_path, text, expected):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    dialect = read_table(path).attrs["csv_dialect"]
    assert {k: dialect[k] for k in expected} == expected and dialect["encoding"] == "utf-8"
    assert pd.api.types.is_numeric_dtype(read_table(path)["a"])


def test_thousands_marks_never_turn_dates_or_codes_into_numbers(tmp_path):
    """pandas strips a thousands mark from every value of a column that then parses: dates
    ``01.02.2020`` became 1022020. Only values that are numbers written with the file's marks are
    read as numbers; dates stay dates, a code ``1.2.3`` text, and a stray label among numbers
    written with a decimal comma is named, not read as a category; in chunks too."""
    from tabular_suite.data.io import TableChunks

    path = tmp_path / "de.csv"
    dates = pd.date_range("2020-02-01", periods=40).strftime("%d.%m.%Y")
    rows = [f"{d};{1 + i}.{i % 10}00,50;{i % 3 + 1}.{i % 5}.{i % 2};{i},5" for i, d in enumerate(dates)]
    path.write_text("Datum;Preis;Code;Menge\n" + "\n".join(rows) + "\n")
    read = read_table(path)
    assert read.attrs["csv_dialect"]["thousands"] == "." and read["Datum"].iloc[0] == "01.02.2020"
    assert read["Preis"].dtype == np.float64 and read["Preis"].iloc[1] == 2100.5
    assert read["Menge"].iloc[3] == 3.5 and read["Code"].iloc[0] == "1.0.0"
    types = infer_feature_types(read)
    assert types["Datum"] == "datetime:%d.%m.%Y" and types["Preis"] == types["Menge"] == "numeric"
    assert types["Code"] == "categorical"
    for chunk in TableChunks(path, chunk_rows=15):
        assert chunk["Preis"].dtype == np.float64 and chunk["Datum"].iloc[0].count(".") == 2
    rows[3] = rows[3].rsplit(";", 1)[0] + ";?"  # a stray label among decimal-comma numbers
    path.write_text("Datum;Preis;Code;Menge\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="Menge"):
        infer_feature_types(read_table(path))
    # Quoted "45,000" in a comma-separated file: the comma can only group thousands.
    (tmp_path / "us.csv").write_text('income,age\n"45,000",30\n"120,500",40\n950,50\n')
    us = read_table(tmp_path / "us.csv")
    assert us.attrs["csv_dialect"]["thousands"] == ","
    assert infer_feature_types(us)["income"] == "numeric"
    assert pd.to_numeric(us["income"]).tolist() == [45000, 120500, 950]


def test_predicted_files_are_read_with_the_training_files_marks(tmp_path):
    """``45.000`` reads as 45 or 45,000: a model trained on a German file reads the files it
    predicts as its training file was read (the model file keeps the marks, an ensemble from
    compare too), and warns when a file's own values show another decimal mark."""
    from tabular_suite.batch import predict_file

    rng = np.random.default_rng(0)
    income = rng.integers(20, 200, 200) * 1000
    rows = [f"{i // 1000}.{i % 1000:03d},00;{int(i > 100_000)}" for i in income]  # 45.000,00
    (tmp_path / "train.csv").write_text("Einkommen;y\n" + "\n".join(rows) + "\n")
    df = read_table(tmp_path / "train.csv")
    X, y = df.drop(columns="y"), df["y"]
    est = tabular_suite.MLPClassifier(**FAST).fit(X, y)
    result = tabular_suite.compare(X, y, models=["linear"], cv=2, num_threads=1, tracking=False)
    (tmp_path / "new.csv").write_text("Einkommen\n45.000\n120.500\n")
    expected = pd.DataFrame({"Einkommen": [45_000.0, 120_500.0]})
    for name, model in (("mlp", est), ("compare", result.best_model_)):
        model.save(tmp_path / f"{name}.tsm")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            predict_file(str(tmp_path / f"{name}.tsm"), tmp_path / "new.csv", tmp_path / f"{name}.csv", proba=True,
                         trusted=True)  # fmt: skip
        got = pd.read_csv(tmp_path / f"{name}.csv").to_numpy()
        np.testing.assert_allclose(got, model.predict_proba(expected), rtol=1e-6)
    (tmp_path / "en.csv").write_text("Einkommen\n45000.5\n120500.25\n")
    with pytest.warns(UserWarning, match="en.csv writes decimals with '.'"):
        predict_file(est, tmp_path / "en.csv", tmp_path / "en_out.csv")


def test_predicted_files_read_text_columns_as_text_and_booleans_fold_case(tmp_path):
    """A prediction file whose zip codes are all digits (``02134``) or whose labels are all
    ``TRUE``/``FALSE`` is read by pandas as numbers or booleans: the columns the model was
    fitted on as text are read as text. Boolean and category keys ignore surrounding spaces, and
    a boolean's case (``Yes`` is ``yes``)."""
    from tabular_suite.batch import predict_file

    rng = np.random.default_rng(0)
    zips = rng.choice(["02134", "K1A0B1", "10001"], 200)
    flag = rng.choice(["TRUE", "FALSE", "maybe"], 200)
    y = (zips == "02134").astype(int)
    pd.DataFrame({"zip": zips, "flag": flag, "y": y}).to_csv(tmp_path / "train.csv", index=False)
    df = read_table(tmp_path / "train.csv")
    est = tabular_suite.MLPClassifier(**FAST, categorical_features=["zip"]).fit(df.drop(columns="y"), df["y"])
    assert est.preprocessor_.text_columns == ["zip", "flag"]
    (tmp_path / "new.csv").write_text("zip,flag\n02134,TRUE\n10001,FALSE\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "categories not seen at fit")
        predict_file(est, tmp_path / "new.csv", tmp_path / "p.csv", proba=True)
    expected = est.predict_proba(pd.DataFrame({"zip": ["02134", "10001"], "flag": ["TRUE", "FALSE"]}))
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv").to_numpy(), expected, rtol=1e-6)
    pre = TablePreprocessor().fit(pd.DataFrame({"member": ["yes", "no"] * 10, "plan": ["a", "b"] * 10}))
    assert pre.feature_types_["member"] == "boolean"
    codes = pre.category_codes(pd.DataFrame({"member": ["Yes", " YES", "no "], "plan": [" a", "b ", "A"]}))
    assert codes[:, 0].tolist() == [3, 3, 2] and codes[:, 1].tolist() == [2, 3, 1]  # ("A" is another category)


def test_category_keys_edge_cases_and_a_comma_file_never_takes_a_comma_decimal(tmp_path):
    from tabular_suite.data.io import TableChunks, sniff_csv
    from tabular_suite.data.preprocess import OrdinalCategories, _category_keys

    # Categories that differ only by spaces (a Parquet dictionary column) are one category.
    spaced = pd.DataFrame({"c": pd.Categorical(["a", "a ", "b"] * 5)})
    pre = TablePreprocessor().fit(spaced)
    assert pre.categories == [["a", "b"]] and pre.category_codes(spaced)[:3, 0].tolist() == [2, 2, 3]
    # Dates as categories keep their text; a whole number held as an object is the integer's key.
    dates = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01"])).astype("category")
    assert _category_keys(dates)[0].tolist() == ["2020-01-01 00:00:00", "2020-02-01 00:00:00"]
    assert _category_keys(pd.Series([2.0, "1.5", "A", None], dtype=object))[0].tolist() == ["2", "1.5", "A", ""]
    codes = OrdinalCategories().fit(pd.DataFrame({"c": ["a", "b", None]}))
    np.testing.assert_array_equal(
        codes.transform(pd.DataFrame({"c": [" a", "b ", None, "z"]}))[:, 0], [1, 2, 0, np.nan]
    )
    # A model from a ';' file with decimal commas predicting a ',' file: "45,000" groups thousands.
    (tmp_path / "us.csv").write_text('income,code\n"45,000","2.5"\n"120,500",A\n')
    assert sniff_csv(tmp_path / "us.csv", prefer={"decimal": ",", "thousands": "."})["decimal"] == "."
    # A model's text columns stay text in its predicted files (no number read from "2.5").
    chunk = next(iter(TableChunks(tmp_path / "us.csv", text=["code"])))
    assert chunk["income"].tolist() == [45000.0, 120500.0] and chunk["code"].tolist() == ["2.5", "A"]


def test_cli_reports_dialect_and_types_and_takes_overrides(tmp_path):
    from typer.testing import CliRunner

    from tabular_suite.cli import app as cli_app

    X, y = _numbers_with_a_stray_string(300)
    X.assign(when=pd.date_range("2024-01-01", periods=300).strftime("%d/%m/%Y"), y=y).to_csv(
        tmp_path / "t.csv", sep=";", index=False
    )
    runner = CliRunner()
    args = ["train", str(tmp_path / "t.csv"), "-t", "y", "-o", str(tmp_path / "m.tsm"), "-p", "max_epochs=3"]
    failed = runner.invoke(cli_app.app, args + ["--quiet"], env={"TABULAR_SUITE_NUM_THREADS": "1"})
    assert failed.exit_code == 1 and "--coerce-numeric x" in failed.output and "Traceback" not in failed.output
    ok = runner.invoke(
        cli_app.app,
        args + ["--quiet", "--coerce-numeric", "x", "--type", "noise=numeric"],
        env={"TABULAR_SUITE_NUM_THREADS": "1"},
    )
    assert ok.exit_code == 0, ok.output
    assert "read t.csv: 300 rows x 4 columns (sep ';', decimal '.', encoding utf-8)" in ok.output
    assert "column types: 2 numeric, 1 datetime (when)" in ok.output
    assert tabular_suite.load(tmp_path / "m.tsm").feature_types_["when"] == "datetime:%d/%m/%Y"
