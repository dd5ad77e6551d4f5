"""What each column is, decided from the whole column, and the features dates and text become.

:func:`infer_feature_types` gives every column one kind: ``numeric``, ``categorical``,
``boolean``, ``datetime`` or ``text``. A column that is numeric except for a few values is an
error that names the values and the fix, never a quiet categorical. :class:`DateFeatures` and
:class:`TextFeatures` turn a datetime or text column into numeric features that carry over to
values never seen at fit (a new date, a new sentence).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..core.params import param

__all__ = [
    "KINDS",
    "DataParams",
    "DateFeatures",
    "TextFeatures",
    "HighCardinalityWarning",
    "infer_feature_types",
    "parse_numbers",
]

KINDS = ("numeric", "categorical", "boolean", "datetime", "text")
#: Dense features per text column.
TEXT_DIM = 16

#: Numbers are at least this share of a string column's values: the rest are stray values (an error).
NUMERIC_MAJORITY = 0.5
#: Free text: on average at least this many words per value, and mostly distinct values.
TEXT_MIN_WORDS = 2.5
#: A categorical column with more distinct values than this share of its rows is ID-like.
ID_LIKE_SHARE = 0.5
ID_LIKE_MIN_LEVELS = 50
_BOOL_PAIRS = [{"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"}]
#: Date formats tried on strings after ISO 8601 (month-first before day-first where both fit).
DATE_FORMATS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%b %d, %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%d %B %Y",
)


class HighCardinalityWarning(UserWarning):
    """A categorical column whose values are mostly distinct (an identifier, say)."""


@dataclasses.dataclass(kw_only=True, repr=False, eq=False)
class DataParams:
    """How columns are read: the data parameters every table estimator shares (one declaration)."""

    categorical_features: Any = param(
        None,
        "Columns to treat as categorical whatever their values (other columns' kinds are inferred).",
        type="list of column names or positions, boolean mask, or None",
    )
    feature_types: Any = param(
        None,
        'Kind of given columns, overriding inference: {"col": kind} with kind one of "numeric", '
        '"categorical", "boolean", "datetime" (or "datetime:<strptime format>"), "text". Values that do not '
        "parse as a date become missing dates (for numbers see ``coerce_numeric``). The kinds decided are in "
        "``feature_types_`` after fit.",
        type="dict or None",
    )
    coerce_numeric: Any = param(
        None,
        "Numeric columns whose values that are not numbers (typos, 'n/a?') become missing values. "
        "Without it such a column is an error naming the values.",
        type="list of column names or None",
    )
    min_frequency: int | None = param(
        None,
        "Categories seen fewer times than this at fit share the 'unknown' code. None: 2 for ID-like "
        "columns (mostly distinct values; a warning names them), 1 (no grouping) for the others.",
    )
    hash_buckets: int | None = param(
        None,
        "Categories not kept at fit (rarer than ``min_frequency``) and those first seen at predict time "
        "take one of this many extra codes per column, by a stable hash of their value, instead of the one "
        "'unknown' code: vocabularies of tens of millions of ids keep their frequent ids and still tell "
        "the rare ones apart. None: the one 'unknown' code. (The in-context model reads them as missing.)",
    )


# --------------------------------------------------------------------------- numbers
def parse_numbers(col: pd.Series) -> pd.Series:
    """``col`` as float64 (NaN where missing or not a number). Booleans and timedeltas
    (seconds) are numbers; strings are parsed after stripping spaces."""
    if ptypes.is_bool_dtype(col.dtype):
        return col.astype("float64")
    if ptypes.is_timedelta64_dtype(col.dtype):
        return col.dt.total_seconds()
    if ptypes.is_numeric_dtype(col.dtype) and not isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Series(col.to_numpy(dtype=np.float64, na_value=np.nan), index=col.index)
    values = col.astype(object)
    if values.map(lambda v: isinstance(v, str)).any():
        values = values.map(lambda v: v.strip() if isinstance(v, str) else v)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _stray_values(col: pd.Series, parsed: pd.Series, limit: int = 5) -> str:
    bad = col.notna() & parsed.isna()
    positions = np.flatnonzero(bad.to_numpy())
    shown = []
    for value in pd.unique(col[bad])[:limit]:
        rows = positions[(col.iloc[positions] == value).to_numpy()][:3]
        where = ", ".join(map(str, rows)) + (", ..." if (col.iloc[positions] == value).sum() > 3 else "")
        shown.append(f"{value!r} (row{'s' if len(rows) > 1 else ''} {where})")
    more = pd.unique(col[bad]).size - len(shown)
    return ", ".join(shown) + (f" and {more} other value(s)" if more > 0 else "")


def stray_numbers_error(name, col: pd.Series, parsed: pd.Series) -> ValueError:
    n_bad = int((col.notna() & parsed.isna()).sum())
    return ValueError(
        f"Column {name!r} holds numbers except for {n_bad} value(s): {_stray_values(col, parsed)} "
        "(rows count from 0, header excluded). Fit with "
        f"coerce_numeric=[{name!r}] (CLI: --coerce-numeric {name}) to read such values as missing, or with "
        f"categorical_features=[{name!r}] (CLI: --categorical {name}) if the column holds categories."
    )


# ----------------------------------------------------------------------------- dates
def _date_format(values: pd.Series) -> str | None:
    """The first format (``"ISO8601"`` or one of :data:`DATE_FORMATS`) that parses every value."""
    sample = values if len(values) <= 2_000 else values.sample(2_000, random_state=0)
    for fmt in ("ISO8601", *DATE_FORMATS):
        try:
            parsed = pd.to_datetime(sample, format=fmt, errors="coerce", utc=True)
        except (ValueError, TypeError):
            continue
        if parsed.notna().all():
            if len(sample) < len(values) and pd.to_datetime(values, format=fmt, errors="coerce", utc=True).isna().any():
                continue
            return fmt
    return None


def _warn_if_day_and_month_swap(name, values: pd.Series, fmt: str) -> None:
    """Warn when the dates read as ``fmt`` read as other dates with day and month swapped (every
    day 12 or less: ``01/02/2020``, ``03/04/2020``): the first format that fits is a guess then."""
    other = fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")
    if other == fmt or other not in DATE_FORMATS:
        return
    sample = values if len(values) <= 2_000 else values.sample(2_000, random_state=0)
    as_fmt = pd.to_datetime(sample, format=fmt, errors="coerce")
    as_other = pd.to_datetime(sample, format=other, errors="coerce")
    if as_other.notna().all() and (as_other != as_fmt).any():
        warnings.warn(
            f"Column {name!r}: its dates read as {fmt} and as {other} alike (no day above 12); they are read as "
            f"{fmt}. If they are {other}, pass feature_types={{{name!r}: 'datetime:{other}'}} "
            f"(CLI: --type {name}=datetime:{other}).",
            UserWarning,
            stacklevel=4,
        )


def _looks_like_dates(values: pd.Series) -> bool:
    """Cheap pre-check: a date has digits and a separator, and is short."""
    sample = values.iloc[:200]
    return bool(sample.str.len().max() <= 40 and sample.str.contains(r"\d", regex=True).all())


def to_datetime(col: pd.Series, fmt: str | None) -> pd.Series:
    """``col`` as naive datetime64 (NaT where missing or unparseable), in the wall time the values
    were written in (time-zone offsets are dropped, not converted: a Monday stays a Monday),
    also when the offsets differ between values.

    >>> to_datetime(pd.Series(["2024-01-01T23:30+02:00", "2024-01-01T10:00Z", None]), "ISO8601").tolist()
    [Timestamp('2024-01-01 23:30:00'), Timestamp('2024-01-01 10:00:00'), NaT]
    """
    if ptypes.is_datetime64_any_dtype(col.dtype):
        out = col
    else:
        values = col.astype(object).where(col.notna(), None)
        try:
            out = pd.to_datetime(values, format=fmt, errors="coerce")
        except (ValueError, TypeError):  # offsets that differ between values (pandas 3 raises)
            out = None
        if out is None or not ptypes.is_datetime64_any_dtype(out.dtype):  # (pandas 2: objects)
            # The offset after a time of day dropped ("10:00+02:00" -> "10:00"; a date "01-02-2020" kept).
            wall = values.astype(str).str.replace(
                r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}:?\d{2})$", r"\1", regex=True
            )
            wall_fmt = None if fmt is None else fmt.replace("%z", "").strip()
            out = pd.to_datetime(wall.where(col.notna(), None), format=wall_fmt, errors="coerce")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out


class DateFeatures:
    """A datetime column as numbers that generalise to new dates.

    Year, month, day of month, day of week, hour, days elapsed since 1970-01-01, and sine and
    cosine encodings of the month, the day of week and the hour (so December sits next to
    January). Missing or unparseable dates give missing features.

    Examples
    --------
    >>> col = pd.Series(["2024-01-31", "2024-12-01 18:30", None])
    >>> f = DateFeatures("ISO8601")
    >>> f.transform(col)[:2, :6].round(1).tolist()
    [[2024.0, 1.0, 31.0, 2.0, 0.0, 19753.0], [2024.0, 12.0, 1.0, 6.0, 18.5, 20058.8]]
    """

    NAMES = ("year", "month", "day", "weekday", "hour", "days", "month_sin", "month_cos", "weekday_sin",
             "weekday_cos", "hour_sin", "hour_cos")  # fmt: skip

    def __init__(self, fmt: str | None = None):
        self.fmt = fmt

    def transform(self, col: pd.Series) -> np.ndarray:
        dt = to_datetime(col, self.fmt)
        acc = dt.dt
        hour = acc.hour + acc.minute / 60 + acc.second / 3600
        month, weekday = acc.month.astype("float64"), acc.day_of_week.astype("float64")
        days = (dt - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86_400
        cols = [acc.year, month, acc.day, weekday, hour, days]
        for value, period in ((month - 1, 12), (weekday, 7), (hour, 24)):
            angle = 2 * np.pi * value.astype("float64") / period
            cols += [np.sin(angle), np.cos(angle)]
        return np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])


# ------------------------------------------------------------------------------ text
class TextFeatures:
    """Free text as a small dense block: hashed character n-grams (2-4, within words),
    tf-idf weighted, projected on their top singular vectors (latent semantic analysis).

    The hashing is stateless; the fitted state is the idf weights and the projection (``dim``
    x ``n_hash`` floats), so new texts, words and typos map near similar ones.

    Examples
    --------
    >>> texts = pd.Series(["red wine", "white wine", "red car", "fast car"] * 5)
    >>> TextFeatures(dim=2).fit(texts).transform(texts).shape
    (20, 2)
    """

    def __init__(self, dim: int = TEXT_DIM, n_hash: int = 4096, random_state: int = 0):
        self.dim, self.n_hash, self.random_state = dim, n_hash, random_state

    def _counts(self, col: pd.Series):
        from sklearn.feature_extraction.text import HashingVectorizer

        texts = col.astype(object).where(col.notna(), "").astype(str)
        vectorizer = HashingVectorizer(
            analyzer="char_wb", ngram_range=(2, 4), n_features=self.n_hash, alternate_sign=False, norm=None
        )
        return vectorizer.transform(texts.tolist())

    def _tfidf(self, counts):
        from sklearn.preprocessing import normalize

        counts = counts.astype(np.float64)
        counts.data = np.log1p(counts.data)  # sublinear term frequency
        return normalize(counts.multiply(self.idf_).tocsr())

    def fit(self, col: pd.Series) -> TextFeatures:
        from sklearn.decomposition import TruncatedSVD

        observed = col[col.notna()]
        if len(observed) > 20_000:
            observed = observed.sample(20_000, random_state=self.random_state)
        counts = self._counts(observed)
        df = np.bincount(counts.indices, minlength=self.n_hash)
        self.idf_ = np.log((1 + counts.shape[0]) / (1 + df)) + 1
        tfidf = self._tfidf(counts)
        k = max(1, min(self.dim, tfidf.shape[0] - 1, np.count_nonzero(df) - 1))
        svd = TruncatedSVD(n_components=k, random_state=self.random_state % (2**31), algorithm="randomized")
        svd.fit(tfidf)
        self.components_ = np.zeros((self.dim, self.n_hash))
        self.components_[:k] = svd.components_
        return self

    def transform(self, col: pd.Series) -> np.ndarray:
        out = np.asarray(self._tfidf(self._counts(col)) @ self.components_.T)
        out[col.isna().to_numpy()] = np.nan
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        return {"idf": self.idf_, "components": self.components_}

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> TextFeatures:
        components = np.asarray(arrays["components"], dtype=np.float64)
        self = cls(dim=components.shape[0], n_hash=components.shape[1])
        self.idf_, self.components_ = np.asarray(arrays["idf"], dtype=np.float64), components
        return self


# ------------------------------------------------------------------------- inference
def _column_list(spec, df: pd.DataFrame, what: str) -> list:
    """Column labels from names, integer positions or a boolean mask."""
    if spec is None or (isinstance(spec, str) and spec == "from_dtype"):
        return []
    if isinstance(spec, str):
        spec = [spec]
    spec = list(spec)
    if spec and all(isinstance(s, (bool, np.bool_)) for s in spec):
        if len(spec) != df.shape[1]:
            raise ValueError(f"{what} is a boolean mask of length {len(spec)}, but X has {df.shape[1]} columns.")
        return [c for c, flag in zip(df.columns, spec) if flag]
    out = []
    for s in spec:
        if s in df.columns:
            out.append(s)
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < df.shape[1]:
            out.append(df.columns[s])
        else:
            raise ValueError(f"{what} names {s!r}, which is not a column of X (columns: {list(df.columns)[:20]}).")
    return out


def resolve_overrides(df: pd.DataFrame, categorical_features=None, feature_types=None, coerce_numeric=None):
    """The user's decisions as ``{column: kind}`` (a kind may carry a date format) and the coerced columns."""
    overrides = {c: "categorical" for c in _column_list(categorical_features, df, "categorical_features")}
    if feature_types is not None:
        if not isinstance(feature_types, dict):
            raise ValueError(f'feature_types must be a dict {{"column": kind}}, got {type(feature_types).__name__}.')
        for name, kind in feature_types.items():
            (column,) = _column_list([name], df, "feature_types")
            base = str(kind).split(":", 1)[0]
            if base not in KINDS:
                raise ValueError(f"feature_types[{name!r}] is {kind!r}; use one of {', '.join(KINDS)}.")
            overrides[column] = str(kind)
    coerced = _column_list(coerce_numeric, df, "coerce_numeric")
    for column in coerced:
        if overrides.setdefault(column, "numeric") != "numeric":
            raise ValueError(f"Column {column!r} is both in coerce_numeric and declared {overrides[column]!r}.")
    return overrides, coerced


def infer_feature_types(
    df: pd.DataFrame,
    categorical_features=None,
    feature_types=None,
    coerce_numeric=None,
    *,
    from_numpy: bool = False,
) -> dict:
    """The kind of every column of ``df``, from its whole contents, as ``{column: kind}``.

    Kinds: ``numeric`` (numbers, and strings that all parse as numbers), ``boolean`` (bool
    dtype, or two values such as yes/no, true/false), ``datetime`` (datetime64, or strings that
    all parse with one date format: ISO 8601 or a :data:`DATE_FORMATS` entry; the kind then
    reads ``"datetime:<format>"``), ``text`` (mostly distinct strings of several words) and
    ``categorical`` (everything else). ``categorical_features``, ``feature_types`` and
    ``coerce_numeric`` override the inference (see :class:`DataParams`).

    A string column whose values are mostly numbers, with a few that are not, is an error that
    names the values and their rows and the two fixes.

    Examples
    --------
    >>> df = pd.DataFrame({"x": ["1.5", "2", None], "when": ["2024-01-02", "2024-03-04", None],
    ...                    "ok": ["yes", "no", "yes"], "city": ["Rome", "Oslo", "Rome"]})
    >>> infer_feature_types(df)
    {'x': 'numeric', 'when': 'datetime:ISO8601', 'ok': 'boolean', 'city': 'categorical'}
    >>> infer_feature_types(pd.DataFrame({"x": ["1", "2", "3", "n/a?"]}))
    Traceback (most recent call last):
    ...
    ValueError: Column 'x' holds numbers except for 1 value(s): 'n/a?' (row 3) (rows count from 0, ...
    """
    return decide_types(df, categorical_features, feature_types, coerce_numeric, from_numpy=from_numpy)[0]


def decide_types(
    df: pd.DataFrame, categorical_features=None, feature_types=None, coerce_numeric=None, *, from_numpy=False
):
    """:func:`infer_feature_types`'s ``{column: kind}`` and the columns whose stray values are read
    as missing (``coerce_numeric`` resolved to labels)."""
    overrides, coerced = resolve_overrides(df, categorical_features, feature_types, coerce_numeric)
    kinds = {name: overrides.get(name) or _infer(name, df[name], from_numpy) for name in df.columns}
    return kinds, coerced


def _infer(name, col: pd.Series, from_numpy: bool) -> str:
    dtype = col.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if ptypes.is_complex_dtype(dtype):
        raise ValueError(f"Complex data not supported (column {name!r}).")
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if ptypes.is_numeric_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
        return "numeric"
    observed = col[col.notna()]
    if len(observed) == 0:
        return "numeric" if from_numpy else "categorical"  # the preprocessor rejects an empty column
    inferred = pd.api.types.infer_dtype(observed, skipna=True)  # one C pass over the values
    if inferred == "boolean":
        return "boolean"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "numeric"
    if inferred in ("datetime", "datetime64", "date"):
        return "datetime"
    if inferred not in ("string", "mixed", "mixed-integer"):
        return "categorical"  # bytes, periods, intervals, objects: their values are labels
    if inferred != "string" and (from_numpy or not observed.map(lambda v: isinstance(v, str)).any()):
        return "categorical"  # numbers mixed with labels in a numpy array, or other objects
    parsed = parse_numbers(col)
    n_numbers = int(parsed.notna().sum())
    if n_numbers == len(observed):
        return "numeric"
    if n_numbers >= NUMERIC_MAJORITY * len(observed):
        raise stray_numbers_error(name, col, parsed)
    strings = observed.astype(str).str.strip()
    uniques = pd.Series(pd.unique(strings))
    lowered = set(uniques.str.lower())
    if len(lowered) == 2 and any(lowered == pair for pair in _BOOL_PAIRS):
        return "boolean"
    if _looks_like_dates(uniques):
        fmt = _date_format(uniques)
        if fmt is not None:
            _warn_if_day_and_month_swap(name, uniques, fmt)
            return f"datetime:{fmt}"
    words = uniques.iloc[:1_000].str.split().str.len().mean()
    if words >= TEXT_MIN_WORDS and len(uniques) > ID_LIKE_SHARE * len(observed) and len(uniques) >= 20:
        return "text"
    _warn_if_numbers_with_units(name, uniques)
    return "categorical"


_WITH_UNITS = r"[-+(]?\s*[$€£¥]?\s*\d[\d,.' ]*\s*[%$€£¥]?\)?"


def _warn_if_numbers_with_units(name, uniques: pd.Series) -> None:
    """Warn when a column read as categories holds numbers written with a unit (``12%``,
    ``$1,200``, ``(5)``): each value is then a label of its own, not a quantity."""
    sample = uniques.iloc[:2_000]
    units = sample.str.contains(r"[%$€£¥()]", regex=True)
    if len(sample) >= 3 and units.mean() >= 0.5 and sample.str.fullmatch(_WITH_UNITS).mean() >= 0.9:
        example = sample[units].iloc[0]
        warnings.warn(
            f"Column {name!r} holds numbers written with a unit or sign (e.g. {example!r}): it is read as categories, "
            "each value a label of its own. To use them as numbers, remove the symbols (a percentage as its number) "
            "before fitting.",
            UserWarning,
            stacklevel=4,
        )


def is_id_like(n_levels: int, n_rows: int) -> bool:
    """Mostly distinct values: too many levels to learn from (an identifier, a free-form code)."""
    return n_levels >= ID_LIKE_MIN_LEVELS and n_levels > ID_LIKE_SHARE * n_rows


def warn_id_like(columns: list[tuple[Any, int, int]]) -> None:
    """One :class:`HighCardinalityWarning` naming the ID-like columns ``(name, levels, rows)``."""
    if columns:
        shown = ", ".join(f"{name!r} ({levels:,} values in {rows:,} rows)" for name, levels, rows in columns)
        warnings.warn(
            f"ID-like categorical column(s) {shown}: levels seen once share the 'unknown' code "
            "(min_frequency); drop identifier columns, they cannot generalise to new rows.",
            HighCardinalityWarning,
            stacklevel=3,
        )


def describe_types(kinds: dict) -> str:
    """A one-line summary of ``{column: kind}``, e.g. ``3 numeric, 1 datetime (signup)``.

    >>> describe_types({"a": "numeric", "b": "numeric", "d": "datetime:ISO8601", "t": "text"})
    '2 numeric, 1 datetime (d), 1 text (t)'
    """
    parts = []
    for kind in KINDS:
        names = [str(c) for c, k in kinds.items() if k.split(":", 1)[0] == kind]
        if not names:
            continue
        shown = (
            ""
            if kind in ("numeric", "categorical")
            else f" ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
        )
        parts.append(f"{len(names)} {kind}{shown}")
    return ", ".join(parts)
