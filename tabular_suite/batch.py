"""Predict and evaluate files too large for memory: read in chunks, write as they go.

:func:`predict_file` reads a CSV or Parquet file ``chunk_rows`` rows at a time and appends
each chunk's predictions to the output, which appears complete or not at all (written under a
temporary name and renamed at the end). Peak memory is one chunk, whatever the file's size.
:func:`evaluate_file` scores a labelled file the same way. The CLI's ``predict`` and
``evaluate`` are these functions.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .core.files import atomic_path, check_output_path
from .core.model_file import load
from .data.io import TableChunks

__all__ = ["predict_file", "evaluate_file", "model_columns", "metrics_of"]


def _model(model, trusted: bool):
    if isinstance(model, (str, os.PathLike)):
        model = load(model, trusted=trusted)
    if not hasattr(model, "predict") or hasattr(model, "recommend"):
        raise ValueError(
            f"{type(model).__name__} is not a tabular model: predict and evaluate take a model from `train` or "
            "`compare --out` (use `recommend predict` / `recommend evaluate` for a recommender)."
        )
    return model


def _chunks(est, data, chunk_rows: int, dialect: dict, keep: list[str] = ()) -> TableChunks:
    """``data`` in chunks, a CSV read with the decimal and thousands marks of the model's training
    file where its own values read either way (``45.000``: see :func:`~tabular_suite.data.io.sniff_csv`),
    with a warning when its values show other marks, and the columns the model was fitted on as
    text read as text (zip codes ``02134``, ``TRUE`` among other labels), as are the ``keep``
    columns (kept columns the model does not read: copied to an output as the file writes them,
    ``007``)."""
    pre = getattr(est, "preprocessor_", None)
    trained = getattr(est, "number_format", None) or getattr(pre, "number_format", None)
    text = list(getattr(est, "text_columns", None) or getattr(pre, "text_columns", None) or [])
    text += [c for c in keep if c not in text]
    chunks = TableChunks(data, chunk_rows, prefer=trained, text=text or None, **dialect)
    read, user = chunks.dialect, {k: v for k, v in dialect.items() if v is not None}
    if trained and read and "decimal" not in user and read["decimal"] != trained["decimal"]:
        warnings.warn(
            f"{Path(data).name} writes decimals with {read['decimal']!r}, the file the model was trained on with "
            f"{trained['decimal']!r}: its numbers are read with {read['decimal']!r}. If that is wrong, pass the "
            f"decimal mark (--decimal {trained['decimal']!r}; decimal= in Python).",
            UserWarning,
            stacklevel=3,
        )
    return chunks


def model_columns(est, X: pd.DataFrame, source="the data") -> pd.DataFrame:
    """The model's feature columns of ``X`` in its order (files often carry extras: ids, the target).

    >>> import numpy as np, tabular_suite
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    >>> est = tabular_suite.MLPRegressor(max_epochs=1, num_threads=1).fit(X, [0.0, 1.0, 2.0, 3.0])
    >>> model_columns(est, X.assign(id=1)[["id", "b", "a"]]).columns.tolist()
    ['a', 'b']
    """
    if not hasattr(est, "feature_names_in_"):
        return X
    missing = [c for c in est.feature_names_in_ if c not in X.columns]
    if missing:
        raise ValueError(f"{source} lacks columns the model was trained on: {', '.join(map(str, missing))}.")
    return X[list(est.feature_names_in_)]


def _outputs(est, X: pd.DataFrame, proba: bool) -> pd.DataFrame:
    if proba:
        if getattr(est, "classes_", None) is None:
            raise ValueError("proba needs a classifier; this model is a regressor.")
        return pd.DataFrame(est.predict_proba(X), columns=[f"proba_{c}" for c in est.classes_], index=X.index)
    return pd.DataFrame({"prediction": est.predict(X)}, index=X.index)


def predict_file(
    model,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    proba: bool = False,
    keep_columns: list[str] | None = None,
    chunk_rows: int = 100_000,
    overwrite: bool = False,
    trusted: bool = False,
    on_chunk: Callable[[int, float], None] | None = None,
    **dialect,
) -> int:
    """Predict every row of the CSV/Parquet file ``data`` and write the predictions to ``out``
    (``.csv`` or ``.parquet``: one ``prediction`` column, or ``proba_<class>`` columns), after
    the ``keep_columns`` of ``data`` (an id to join them on: copied as text as written there, or
    as floats for a column the model reads as numbers).

    ``model`` is a fitted estimator or a model file's path. The output path is checked before
    any work (an existing file needs ``overwrite=True``; a missing folder is created when it is
    written); the file appears only once every row is written. ``on_chunk(rows_done, share_of_file_read)``
    is called after each chunk (a progress bar). ``dialect``: ``sep``, ``decimal``,
    ``thousands``, ``encoding`` of a CSV (detected when left out; a value that reads either
    way, ``45.000``, with the marks of the model's training file). Returns the number of rows.

    Examples
    --------
    >>> import tempfile, tabular_suite
    >>> folder = Path(tempfile.mkdtemp())
    >>> X = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) % 7})
    >>> X.to_csv(folder / "rows.csv", index=False)
    >>> est = tabular_suite.MLPRegressor(max_epochs=2, num_threads=1, random_state=0).fit(X, X["a"])
    >>> predict_file(est, folder / "rows.csv", folder / "out" / "pred.csv", chunk_rows=30)
    100
    >>> pd.read_csv(folder / "out" / "pred.csv").shape
    (100, 1)
    >>> _ = predict_file(est, folder / "rows.csv", folder / "keyed.csv", keep_columns=["b"])
    >>> pd.read_csv(folder / "keyed.csv").columns.tolist()
    ['b', 'prediction']
    """
    model_path = model if isinstance(model, (str, os.PathLike)) else None
    out = check_output_path(out, force=overwrite, flag="overwrite=True (CLI: --force)", inputs=(data, model_path))
    keep = _keep_columns(keep_columns)
    est = _model(model, trusted)
    features = set(getattr(est, "feature_names_in_", ()))
    chunks = _chunks(est, data, chunk_rows, dialect, [c for c in keep if c not in features])
    parquet = out.suffix.lower() in (".parquet", ".pq")
    rows = 0
    with atomic_path(out) as tmp:
        writer = None
        try:
            for chunk in chunks:
                result = _outputs(est, model_columns(est, chunk, Path(data).name), proba)
                if keep:
                    result = _kept(chunk, keep, result, Path(data).name, features)
                if parquet:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    table = pa.Table.from_pandas(result, preserve_index=False)
                    writer = writer or pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))  # (a column all missing in a chunk: null type)
                else:
                    result.to_csv(tmp, mode="a", header=rows == 0, index=False)
                rows += len(result)
                if on_chunk is not None:
                    on_chunk(rows, chunks.progress)
        finally:
            if writer is not None:
                writer.close()
    return rows


def _keep_columns(names) -> list[str]:
    if names is None:
        return []
    names = [names] if isinstance(names, str) else list(names)
    if len(set(names)) < len(names):
        raise ValueError(f"keep_columns names a column twice: {names}.")
    return names


def _kept(chunk: pd.DataFrame, keep: list[str], result: pd.DataFrame, source: str, features) -> pd.DataFrame:
    """The ``keep`` columns of ``chunk`` followed by the predictions ``result``, each kept column
    of one type in every chunk (a chunk's missing value must not turn whole numbers into floats
    in the middle of a Parquet file): text as read, or for a column the model reads as numbers,
    floats."""
    missing = [c for c in keep if c not in chunk.columns]
    if missing:
        raise ValueError(f"{source} has no column {', '.join(map(repr, missing))} to keep (its columns: "
                         f"{', '.join(map(str, chunk.columns[:20]))}).")  # fmt: skip
    clash = [c for c in keep if c in result.columns]
    if clash:
        raise ValueError(f"The kept column {clash[0]!r} has the name of a prediction column; rename it in the file.")
    kept = {}
    for c in keep:
        numeric = c in features and pd.api.types.is_numeric_dtype(chunk[c]) and not pd.api.types.is_bool_dtype(chunk[c])
        kept[c] = chunk[c].astype("float64" if numeric else "string")
    return pd.concat([pd.DataFrame(kept, index=chunk.index), result], axis=1)


def metrics_of(est, y, outputs: np.ndarray) -> dict:
    """Metrics of a classifier's probabilities (accuracy, balanced accuracy, log loss and, for
    two classes, ROC AUC) or of a regressor's predictions (RMSE, MAE, R²) against ``y``. The
    labels are the model's own decisions (a compare() model's tuned threshold included). Labels
    the model never saw make log loss and ROC AUC undefined: a warning says so.

    >>> import tabular_suite
    >>> X = pd.DataFrame({"a": np.arange(40.0)}); y = np.where(X["a"] > 20, "up", "down")
    >>> est = tabular_suite.MLPClassifier(max_epochs=1, num_threads=1, random_state=0).fit(X, y)
    >>> sorted(metrics_of(est, y, est.predict_proba(X)))
    ['accuracy', 'balanced_accuracy', 'log_loss', 'roc_auc']
    """
    from sklearn import metrics as skm

    if getattr(est, "classes_", None) is not None:
        threshold = getattr(est, "threshold", None)
        if threshold is not None and len(est.classes_) == 2:  # (as EnsembleModel.predict decides)
            pred = est.classes_[(outputs[:, 1] >= threshold).astype(int)]
        else:
            pred = est.classes_[outputs.argmax(1)]
        out = {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred)}
        unseen = ~np.isin(y, est.classes_)
        if not unseen.any():
            out["log_loss"] = skm.log_loss(y, outputs, labels=est.classes_)
            if len(est.classes_) == 2:
                out["roc_auc"] = skm.roc_auc_score(y == est.classes_[1], outputs[:, 1])
        else:
            labels = ", ".join(map(repr, pd.unique(np.asarray(y)[unseen])[:5].tolist()))
            warnings.warn(
                f"{int(unseen.sum())} row(s) have labels the model was not trained on ({labels}): they count as "
                "errors in accuracy; log loss and ROC AUC are left out.",
                UserWarning,
                stacklevel=2,
            )
        return out
    y = np.asarray(y, dtype=float)
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, outputs))),
        "mae": skm.mean_absolute_error(y, outputs),
        "r2": skm.r2_score(y, outputs),
    }


def evaluate_file(
    model,
    data: str | os.PathLike,
    target: str,
    *,
    chunk_rows: int = 100_000,
    trusted: bool = False,
    on_chunk: Callable[[int, float], None] | None = None,
    **dialect,
) -> tuple[dict, int]:
    """Metrics (:func:`metrics_of`) of ``model`` on the labelled file ``data``, read in chunks:
    memory holds one chunk plus the targets and outputs (a few numbers per row). Returns the
    metrics and the number of rows."""
    est = _model(model, trusted)
    classifier = getattr(est, "classes_", None) is not None
    targets, outputs = [], []
    rows, chunks = 0, _chunks(est, data, chunk_rows, dialect)
    for chunk in chunks:
        if target not in chunk.columns:
            raise ValueError(
                f"Target column {target!r} is not in {Path(data).name} "
                f"(columns: {', '.join(map(str, chunk.columns[:20]))})."
            )
        X = model_columns(est, chunk.drop(columns=[target]), Path(data).name)
        targets.append(chunk[target].to_numpy())
        outputs.append((est.predict_proba(X) if classifier else est.predict(X)).astype(np.float64))
        rows += len(chunk)
        if on_chunk is not None:
            on_chunk(rows, chunks.progress)
    return metrics_of(est, np.concatenate(targets), np.concatenate(outputs)), rows
