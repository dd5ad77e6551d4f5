"""Property-based fuzzing of the data layer and the CSV reader (issue 22, point 8): any table of
mixed types, missing values, odd encodings and dialects is read back as written, and either
preprocesses into finite model inputs or is refused with a ValueError naming the problem."""

import string

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabular_suite.data import TablePreprocessor, read_table
from tabular_suite.data.features import KINDS

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
WORDS = st.text(alphabet=string.ascii_letters + "äöüéß ", min_size=1, max_size=12).map(str.strip).filter(bool)


@st.composite
def columns(draw, n):
    kind = draw(st.sampled_from(["float", "int", "str", "numeric_str", "bool", "date", "date_str", "text"]))
    missing = draw(st.floats(0, 0.5))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "float":
        values = list(rng.normal(size=n) * 10 ** draw(st.integers(-3, 6)))
    elif kind == "int":
        values = list(rng.integers(-1000, 1000, n))
    elif kind == "str":
        levels = draw(st.lists(WORDS, min_size=1, max_size=6, unique=True))
        values = list(rng.choice(levels, n))
    elif kind == "numeric_str":
        values = [f"{v:.3f}" for v in rng.normal(size=n)]
    elif kind == "bool":
        values = list(rng.integers(0, 2, n).astype(bool))
    elif kind == "date":
        values = list(pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D"))
    elif kind == "date_str":
        values = list(
            (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 2000, n), unit="D")).strftime("%Y-%m-%d")
        )
    else:
        words = draw(st.lists(WORDS, min_size=3, max_size=10))
        values = [" ".join(rng.choice(words, 4)) + f" {i}" for i in range(n)]
    mask = rng.random(n) < missing
    return pd.Series(
        [None if m else v for v, m in zip(values, mask)],
        dtype=object if kind not in ("float", "int", "bool", "date") else None,
    )


@st.composite
def tables(draw):
    n = draw(st.integers(2, 60))
    k = draw(st.integers(1, 5))
    return pd.DataFrame({f"c{j}": draw(columns(n)) for j in range(k)})


@FUZZ
@given(tables())
def test_preprocessing_gives_finite_inputs_or_a_value_error(df):
    try:
        pre = TablePreprocessor(min_frequency=1).fit(df)
    except ValueError:
        return  # refused with a message (e.g. an entirely empty column)
    assert set(pre.feature_types_) == set(df.columns)
    assert all(k.split(":")[0] in KINDS for k in pre.feature_types_.values())
    out = pre.transform(df)
    assert out.x_num.shape == (len(df), pre.n_numeric_out) and np.isfinite(out.x_num).all()
    assert out.x_cat.shape == (len(df), len(pre.schema.categorical)) and (out.x_cat >= 0).all()
    again = TablePreprocessor.from_state(*pre.get_state()).transform(df)  # what a saved model does
    np.testing.assert_array_equal(again.x_num, out.x_num)
    np.testing.assert_array_equal(again.x_cat, out.x_cat)
    one_row = pre.transform(df.iloc[:1])  # a single row with anything missing still works
    np.testing.assert_allclose(one_row.x_num, out.x_num[:1], rtol=1e-6, atol=1e-6)


@FUZZ
@given(
    st.integers(1, 40),
    st.sampled_from([",", ";", "\t", "|"]),
    st.sampled_from([".", ","]),
    st.sampled_from(["utf-8", "cp1252", "utf-8-sig"]),
    st.integers(0, 2**16),
)
def test_csv_dialects_read_back_as_written(tmp_path_factory, n, sep, decimal, encoding, seed):
    if decimal == "," and sep == ",":
        decimal = "."  # a comma-separated file cannot carry decimal commas unquoted
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n).round(4) * 100,
            "k": rng.integers(0, 50, n),
            "name": rng.choice(["Zoë", "Ødegård", "café", "plain"], n),
        }
    )
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    df.to_csv(path, sep=sep, decimal=decimal, encoding=encoding, index=False)
    read = read_table(path)
    assert read.attrs["csv_dialect"]["sep"] == sep
    np.testing.assert_allclose(read["x"].to_numpy(dtype=float), df["x"].to_numpy(), rtol=1e-9)
    np.testing.assert_array_equal(read["k"].to_numpy(), df["k"].to_numpy())
    assert read["name"].tolist() == df["name"].tolist()
