"""Tables in: convert user inputs to pandas and read CSV/Parquet files.

This module is the only entry point for foreign table types. Everything downstream sees a
``pandas.DataFrame`` (features) or a 1-D ``numpy`` array (targets).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "as_dataframe", "as_1d_array", "read_table", "sniff_csv", "read_marked_numbers", "describe_dialect", "TableChunks",
    "ParquetSource",
]  # fmt: skip


def _is_sparse(X) -> bool:
    return hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse")


def as_dataframe(X, *, name: str = "X") -> pd.DataFrame:
    """Convert a feature table to a pandas DataFrame without changing its values.

    Accepts pandas / polars DataFrames, pyarrow Tables or RecordBatches, numpy arrays and
    nested lists. Numpy input keeps integer column labels ``0..n-1`` (no feature names).

    Examples
    --------
    >>> import numpy as np
    >>> as_dataframe(np.zeros((2, 3))).shape
    (2, 3)
    """
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        raise ValueError(
            f"Expected a 2D table for {name}, got a pandas Series. Use series.to_frame() for a single feature."
        )
    module = type(X).__module__
    if module.startswith("polars"):
        if hasattr(X, "collect"):  # LazyFrame
            X = X.collect()
        if not hasattr(X, "columns"):
            raise ValueError(f"Expected a 2D table for {name}, got a polars Series.")
        return X.to_pandas()
    if module.startswith("pyarrow"):
        if not hasattr(X, "column_names"):
            raise ValueError(f"Expected a 2D table for {name}, got a pyarrow {type(X).__name__}.")
        return X.to_pandas()
    if _is_sparse(X):
        raise TypeError(
            f"Sparse input for {name} is not supported: densify it with X.toarray() (sparse data was passed)."
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError("Complex data not supported; pass real-valued features.")
    if arr.ndim == 1 or arr.ndim == 0:
        raise ValueError(
            f"Expected 2D array for {name}, got {arr.ndim}D array instead:\narray={arr!r}.\n"
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample."
        )
    if arr.ndim > 2:
        raise ValueError(f"Expected 2D array for {name}, got an array with shape {arr.shape}.")
    return pd.DataFrame(arr)


def as_1d_array(y, *, name: str = "y") -> np.ndarray:
    """Convert a target (list, numpy, pandas, polars or pyarrow) to a 1-D numpy array.

    A 2-D column vector is accepted with a ``DataConversionWarning`` (the sklearn convention).

    Examples
    --------
    >>> as_1d_array([1, 2, 3]).tolist()
    [1, 2, 3]
    """
    from sklearn.utils.validation import column_or_1d

    if y is None:
        raise ValueError(f"{name} is None: pass the target values.")
    module = type(y).__module__
    if module.startswith("polars"):
        y = y.to_numpy()
    elif module.startswith("pyarrow"):
        y = y.to_numpy(zero_copy_only=False) if hasattr(y, "to_numpy") else np.asarray(y)
    elif isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.to_numpy()
    elif isinstance(y, (pd.Series, pd.Index)):
        y = y.to_numpy()
    if _is_sparse(y):
        raise TypeError(f"Sparse {name} is not supported.")
    arr = np.asarray(y)
    if arr.dtype.kind == "c":
        raise ValueError("Complex data not supported; pass a real-valued target.")
    return column_or_1d(arr, warn=True)


_SNIFF_BYTES = 64 * 1024
_COMMA_DECIMAL = re.compile(r"^[-+]?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_POINT_DECIMAL = re.compile(r"^[-+]?(\d{1,3}(,\d{3})+|\d+)\.\d+$")
_POINT_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(\.\d{3})+(,\d+)?$")
_COMMA_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _open_text(path: Path):
    import gzip

    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _detect_encoding(head: bytes) -> str:
    """utf-8 (a BOM is dropped), utf-16 with a BOM, else Windows-1252 (latin-1 where it cannot decode)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8-sig")
        return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
    except UnicodeDecodeError as exc:
        if len(head) == _SNIFF_BYTES and exc.start >= len(head) - 3:  # a character cut by the sample's end
            return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def sniff_csv(
    path: str | os.PathLike, *, sep=None, decimal=None, thousands=None, encoding=None, prefer: dict | None = None
) -> dict:
    """The dialect of a CSV file, judged from its first 64 KiB: ``sep`` (``,`` ``;`` tab or
    ``|``), ``decimal`` (``.`` or ``,``), ``thousands`` (None, ``.`` or ``,``) and ``encoding``.
    Arguments that are given are kept as they are.

    ``prefer``: the number format (``decimal``, ``thousands``) of the file a model was trained
    on, for the files it predicts. A value such as ``45.000`` or ``1,234`` reads either way (a
    decimal, or thousands grouped): the file's format is judged on the other values alone, and
    is the preferred one when only such values are there.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "eu.csv"
    >>> _ = path.write_text("Preis;Menge\\n1.234,50;3\\n7,25;4\\n")
    >>> sniff_csv(path)
    {'sep': ';', 'decimal': ',', 'thousands': '.', 'encoding': 'utf-8'}
    >>> _ = path.write_text("Einkommen;Alter\\n45.000;30\\n120.500;41\\n")
    >>> sniff_csv(path)["decimal"], sniff_csv(path, prefer={"decimal": ",", "thousands": "."})["thousands"]
    ('.', '.')
    """
    import csv

    path = Path(path)
    with _open_text(path) as f:
        head = f.read(_SNIFF_BYTES)
    encoding = encoding or _detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    lines = text.splitlines()
    cut = len(head) == _SNIFF_BYTES and len(lines) > 1
    sample = "\n".join(lines[:-1] if cut else lines)  # drop a line the sample cut off
    if sep is None:
        if path.suffix.lower() == ".tsv" or ".tsv" in [s.lower() for s in path.suffixes]:
            sep = "\t"
        else:
            try:
                sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
            except csv.Error:
                sep = ","
    fields = [field.strip() for row in csv.reader(sample.splitlines()[1:], delimiter=sep) for field in row]
    if decimal is None:
        comma = [f for f in fields if _COMMA_DECIMAL.match(f)]
        point = [f for f in fields if _POINT_DECIMAL.match(f)]
        if prefer is not None:  # what reads either way is no evidence: the preferred format decides it
            comma = [f for f in comma if not _COMMA_THOUSANDS.match(f)]
            point = [f for f in point if not _POINT_THOUSANDS.match(f)]
        if prefer is not None and not comma and not point:
            # (Never the separator of a file of several columns: its "45,000" groups thousands.)
            several = len(next(csv.reader(sample.splitlines()[:1], delimiter=sep), [])) > 1
            decimal = "." if sep == "," and several else prefer.get("decimal") or "."
        else:
            decimal = "," if sep != "," and len(comma) > len(point) else "."
    if thousands is None and prefer is not None and prefer.get("decimal") == decimal:
        thousands = prefer.get("thousands")
    if thousands is None:
        pattern, mark = (_POINT_THOUSANDS, ".") if decimal == "," else (_COMMA_THOUSANDS, ",")
        # The decimal mark decided, the other mark in a number can only group its thousands
        # ("45,000" among "0.5"s, or in a comma-separated file, where the decimal mark is ".").
        if any(pattern.match(f) for f in fields):
            thousands = mark
    return {"sep": sep, "decimal": decimal, "thousands": thousands, "encoding": encoding}


def read_table(
    path: str | os.PathLike,
    *,
    columns: list[str] | None = None,
    sep: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
    encoding: str | None = None,
    nrows: int | None = None,
    prefer: dict | None = None,
) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file into a pandas DataFrame.

    Empty fields in CSV files are read as missing values. The separator, decimal mark,
    thousands separator and encoding are detected (:func:`sniff_csv`) unless given; what was
    used is in ``df.attrs["csv_dialect"]``; numbers with the file's decimal and thousands marks
    are read as numbers (:func:`read_marked_numbers`). ``nrows``: read only the first rows;
    ``prefer``: see :func:`sniff_csv`. Errors name
    the file and the problem (missing file, empty file, undecodable bytes, malformed rows,
    unknown format).

    Examples
    --------
    >>> df = read_table("datasets/adult.csv.gz")
    >>> df.shape, df.attrs["csv_dialect"]["sep"]
    ((48842, 15), ',')
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"File not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise ValueError(f"File {path} is empty.")
    suffixes = [s.lower() for s in path.suffixes]
    dialect = None
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            import pyarrow.parquet as pq

            if nrows is not None:
                batch = next(pq.ParquetFile(path).iter_batches(batch_size=nrows, columns=columns), None)
                df = batch.to_pandas() if batch is not None else pd.DataFrame()
            else:
                df = pq.read_table(path, columns=columns).to_pandas()
        elif ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
            dialect = sniff_csv(path, sep=sep, decimal=decimal, thousands=thousands, encoding=encoding, prefer=prefer)
            # low_memory=False: each column typed from all its values, not chunk by chunk.
            df = pd.read_csv(path, usecols=columns, low_memory=False, nrows=nrows, **_csv_args(dialect))
            read_marked_numbers(df, dialect)
        else:
            raise ValueError(f"Cannot tell the format of {path}: use a .csv, .csv.gz, .tsv or .parquet file.")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid {dialect['encoding'] if dialect else 'UTF-8'} text (byte {exc.start}): "
            "pass its encoding (--encoding, e.g. cp1252 or latin-1) or re-save it as UTF-8."
        ) from None
    except LookupError as exc:
        raise ValueError(f"Unknown encoding for {path}: {exc}.") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"File {path} has no columns (is it empty?).") from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"Could not parse {path} as CSV: {exc}") from None
    except (OSError, EOFError) as exc:
        raise ValueError(f"Could not read {path}: {exc}") from None
    if df.shape[0] == 0:
        raise ValueError(f"File {path} has a header but no rows.")
    if dialect is not None:
        df.attrs["csv_dialect"] = dialect
    return df


def number_format(df: pd.DataFrame) -> dict | None:
    """The decimal and thousands marks of the CSV file that ``df`` was read from
    (:func:`read_table`, :class:`TableChunks`), else None: what a model keeps of its training
    file to read the files it predicts the same way (``prefer`` of :func:`sniff_csv`).

    >>> df = pd.DataFrame({"a": [1.5]})
    >>> df.attrs["csv_dialect"] = {"sep": ";", "decimal": ",", "thousands": ".", "encoding": "utf-8"}
    >>> number_format(df), number_format(pd.DataFrame())
    ({'decimal': ',', 'thousands': '.'}, None)
    """
    dialect = df.attrs.get("csv_dialect")
    return None if dialect is None else {"decimal": dialect.get("decimal"), "thousands": dialect.get("thousands")}


def text_columns(df: pd.DataFrame) -> list[str]:
    """The columns of ``df`` held as text (its file's reader found a value that is not a number
    in them): a model keeps them to read them as text in the files it predicts, where a column
    of zip codes ``02134`` alone would be read as the number 2134, ``TRUE`` as a boolean.

    >>> text_columns(pd.DataFrame({"zip": ["02134", "K1A0B1"], "n": [1, 2]}))
    ['zip']
    """
    return [str(c) for c in df.columns if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype)]


def _csv_args(dialect: dict) -> dict:
    """``pd.read_csv``'s arguments for ``dialect``: without ``thousands``, which pandas would strip
    from every value of a column that parses, a date ``01.02.2020`` then read as 1022020
    (:func:`read_marked_numbers` reads the grouped numbers instead)."""
    return {k: v for k, v in dialect.items() if k != "thousands"}


def read_marked_numbers(df: pd.DataFrame, dialect: dict, keep_text=()) -> None:
    """In place: in the text columns of a CSV read with ``dialect``, each value that is a number
    written with its decimal mark (a comma) or its thousands groups (``1.234,50``, ``1,234.5``)
    becomes that number; a column of such numbers only becomes a float column. Other values
    are left as they are: a date ``01.02.2020`` or a code ``1.2.3`` stays text, and a column
    with a few stray labels among its numbers is then told apart by the type inference. The
    columns ``keep_text`` stay text (a model's text columns: see :func:`text_columns`).

    >>> df = pd.DataFrame({"Preis": ["1.234,50", "7,25"], "Datum": ["01.02.2020", "15.03.2021"]})
    >>> read_marked_numbers(df, {"decimal": ",", "thousands": "."})
    >>> df["Preis"].tolist(), df["Datum"].tolist()
    ([1234.5, 7.25], ['01.02.2020', '15.03.2021'])
    """
    decimal, thousands = dialect.get("decimal") or ".", dialect.get("thousands")
    if decimal == "." and thousands is None:
        return  # (pandas read them)
    grouped = rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+" if thousands else None
    fraction = rf"{re.escape(decimal)}\d+"
    # A mark is needed: a plain integer is read by pandas or the type inference as before.
    marked = rf"(?:{grouped}(?:{fraction})?|\d+{fraction})" if grouped else rf"\d+{fraction}"
    pattern = re.compile(rf"^\s*[-+]?{marked}\s*$")
    for name in df.columns:
        col = df[name]
        if name in keep_text or not (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
            continue
        # Each distinct text once (a column repeats its values).
        numbers = {}
        for value in pd.unique(col.dropna()):
            if isinstance(value, str) and pattern.match(value):
                number = value.strip().replace(thousands, "") if thousands else value.strip()
                numbers[value] = float(number.replace(decimal, "."))
        if not numbers:
            continue
        mapped = col.map(numbers).astype(np.float64)
        hit = mapped.notna()
        if hit.sum() == col.notna().sum():  # a column of such numbers (and missing values) only
            df[name] = mapped
        else:
            col = col.astype(object)  # (a copy)
            col[hit] = mapped[hit]
            df[name] = col


def describe_dialect(dialect: dict) -> str:
    """``sep ';', decimal ',', thousands '.', encoding cp1252`` for the CLI.

    >>> describe_dialect({"sep": ";", "decimal": ",", "thousands": None, "encoding": "utf-8"})
    "sep ';', decimal ',', encoding utf-8"
    """
    parts = [f"sep {dialect['sep']!r}", f"decimal {dialect['decimal']!r}"]
    if dialect.get("thousands"):
        parts.append(f"thousands {dialect['thousands']!r}")
    return ", ".join(parts + [f"encoding {dialect['encoding']}"])


class TableChunks:
    """A CSV or Parquet file read ``chunk_rows`` rows at a time: memory holds one chunk.

    Iterating yields DataFrames; ``progress`` is the share of the file read so far (bytes of a
    CSV, rows of a Parquet file), for a progress bar. A CSV's dialect is detected once
    (:func:`sniff_csv`; ``prefer``: see there) and is in ``dialect`` and each chunk's
    ``attrs["csv_dialect"]``. ``text``: columns read as text whatever their values
    (:func:`text_columns`). Each chunk's columns are typed from the chunk.

    Examples
    --------
    >>> chunks = TableChunks("datasets/adult.csv.gz", chunk_rows=20_000)
    >>> [len(c) for c in chunks], chunks.progress
    ([20000, 20000, 8842], 1.0)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        chunk_rows: int = 100_000,
        *,
        columns: list | None = None,
        sep: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
        encoding: str | None = None,
        prefer: dict | None = None,
        text: list[str] | None = None,
    ):
        if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
        self.path, self.chunk_rows, self.columns = Path(path), int(chunk_rows), columns
        self.dtype = {name: str for name in text or ()}  # (a name the file lacks is ignored)
        self.progress, self.dialect = 0.0, None
        read_table(
            self.path, columns=columns, nrows=1, sep=sep, decimal=decimal, thousands=thousands, encoding=encoding,
            prefer=prefer,
        )  # fmt: skip
        suffixes = [s.lower() for s in self.path.suffixes]
        self.parquet = ".parquet" in suffixes or ".pq" in suffixes
        if not self.parquet:
            self.dialect = sniff_csv(
                self.path, sep=sep, decimal=decimal, thousands=thousands, encoding=encoding, prefer=prefer
            )

    def __iter__(self):
        if self.parquet:
            source = ParquetSource(self.path, batch_rows=self.chunk_rows)
            done = 0
            for _, df in source.batches():
                done += len(df)
                self.progress = done / source.n_rows
                yield df if self.columns is None else df[self.columns]
            return
        size = max(self.path.stat().st_size, 1)
        with open(self.path, "rb") as raw:
            import gzip

            handle = gzip.GzipFile(fileobj=raw) if self.path.suffix.lower() == ".gz" else raw
            try:
                reader = pd.read_csv(
                    handle, usecols=self.columns, chunksize=self.chunk_rows, dtype=self.dtype, **_csv_args(self.dialect)
                )
                for df in reader:
                    self.progress = min(raw.tell() / size, 1.0)
                    read_marked_numbers(df, self.dialect, keep_text=self.dtype)
                    df.attrs["csv_dialect"] = self.dialect
                    yield df
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{self.path} is not valid {self.dialect['encoding']} text (byte {exc.start}): pass its "
                    "encoding (--encoding, e.g. cp1252 or latin-1) or re-save it as UTF-8."
                ) from None
            except pd.errors.ParserError as exc:
                raise ValueError(f"Could not parse {self.path} as CSV: {exc}") from None
        self.progress = 1.0


class ParquetSource:
    """A Parquet file, or a folder of them, read ``batch_rows`` rows at a time.

    Only the metadata is read up front (row counts per row group); :meth:`batches` yields
    ``(global_row_offset, DataFrame)`` pairs, optionally visiting the row groups in a given
    order. Memory holds one row group's pages and one batch.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> path = tempfile.mkdtemp() + "/t.parquet"
    >>> pd.DataFrame({"a": range(5)}).to_parquet(path, row_group_size=2)
    >>> src = ParquetSource(path, batch_rows=10)
    >>> src.n_rows, src.n_units, [(o, len(b)) for o, b in src.batches([2, 0])]
    (5, 3, [(4, 1), (0, 2)])
    >>> src.head(3)["a"].tolist()  # the first rows of the first row group
    [0, 1]
    """

    def __init__(self, path: str | os.PathLike, batch_rows: int = 262_144):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}.")
        path = Path(path)
        if not path.exists():
            raise ValueError(f"File not found: {path}")
        files = (
            sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".pq")) if path.is_dir() else [path]
        )
        if not files:
            raise ValueError(f"{path} holds no .parquet files.")
        self.batch_rows, self.units, self.columns = int(batch_rows), [], None
        offset = 0
        for file in files:
            try:
                pf = pq.ParquetFile(file)
            except Exception as exc:  # pyarrow raises several types for non-Parquet bytes
                raise ValueError(f"{file} is not a readable Parquet file: {exc}") from None
            names = [n for n in pf.schema_arrow.names if not n.startswith("__index_level_")]
            if self.columns is None:
                self.columns = names
                # Columns written from pandas categoricals are read back as categoricals.
                meta = pf.schema_arrow.pandas_metadata or {}
                self.categorical_columns = [
                    c["name"] for c in meta.get("columns", []) if c.get("pandas_type") == "categorical"
                ] + [f.name for f in pf.schema_arrow if pa.types.is_dictionary(f.type)]
            elif names != self.columns:
                raise ValueError(f"{file} has columns {names[:10]}, unlike {files[0]} ({self.columns[:10]}).")
            for group in range(pf.metadata.num_row_groups):
                rows = pf.metadata.row_group(group).num_rows
                if rows:
                    self.units.append((file, group, offset))
                    offset += rows
        self.n_rows = offset
        if self.n_rows == 0:
            raise ValueError(f"{path} has no rows.")

    @property
    def n_units(self) -> int:
        """Number of row groups (the units whose order :meth:`batches` can shuffle)."""
        return len(self.units)

    def head(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` rows (at most) of the first row group, read alone (a sample of the
        columns and their types, e.g. an MLflow model's input example)."""
        import pyarrow.parquet as pq

        file, group, _ = self.units[0]
        batches = pq.ParquetFile(file).iter_batches(batch_size=n, row_groups=[group], columns=self.columns)
        return self._frame(next(batches))

    def batches(self, order=None):
        import pyarrow.parquet as pq

        for unit in range(self.n_units) if order is None else order:
            file, group, offset = self.units[unit]
            reader = pq.ParquetFile(file)
            for batch in reader.iter_batches(batch_size=self.batch_rows, row_groups=[group], columns=self.columns):
                df = self._frame(batch)
                yield offset, df
                offset += len(df)

    def _frame(self, batch) -> pd.DataFrame:
        """A record batch as a DataFrame, the columns written from pandas categoricals categorical again."""
        df = batch.to_pandas()
        for name in self.categorical_columns:
            df[name] = df[name].astype("category")
        return df
