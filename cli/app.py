"""``tabular-suite``: train, predict and evaluate tabular models on CSV/Parquet files.

Thin by design: parse arguments, call the library, print the result.

Exit codes: 0 on success; 1 for an error in the user's input (the library's ``ValueError``, a
missing or unreadable file, a missing optional dependency), printed as one red line; 2 for a
command line click rejects (unknown option, missing argument); 3 for any other exception, which
is likely a bug in tabular-suite: one red line asking to rerun with ``--debug``, which shows the
traceback; 130 when interrupted (Ctrl-C, or SIGTERM, which the CLI handles the same way). Every
file the CLI writes appears complete or not at all.

At start-up (:func:`main`: the ``tabular-suite`` script and ``python -m tabular_suite.cli.app``)
the CLI calls :func:`tabular_suite.training.device.settle_heap`: it is a process that trains, so
it opts in to keeping freed tensor memory in the heap (the library never changes the allocator by
itself; ``TABULAR_SUITE_SETTLE_HEAP=0`` turns it off). Running ``app`` inside another process
(e.g. typer's CliRunner) leaves that process's allocator alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import os
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# typer builds every command's options when the app starts, and `pfn pretrain`'s come from this dataclass.
from tabular_suite.batch import metrics_of
from tabular_suite.core.files import atomic_path, check_output_path
from tabular_suite.data.features import describe_types
from tabular_suite.incontext.pretrain import PretrainConfig
from tabular_suite.training.device import settle_heap

app = typer.Typer(
    help="Deep learning on tables: train, predict and evaluate models on CSV/Parquet files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (logs, CI, READMEs) gets room for the leaderboard instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
_state = {"debug": False}


#: Exceptions that mean the input is wrong, not the program: the library raises ValueError for bad
#: data and arguments (its convention), the OS the rest. See also :func:`_is_user_error`.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    typer.BadParameter,
)
EXIT_USER_ERROR = 1
EXIT_UNEXPECTED_ERROR = 3  # 2 is click's exit code for a rejected command line
EXIT_INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C


def _fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines) if lines else type(exc).__name__


def _is_user_error(exc: Exception) -> bool:
    """A :data:`USER_ERRORS` exception, or a missing optional dependency (an ImportError not about our own modules)."""
    if isinstance(exc, ImportError):
        return not (exc.name or "").startswith("tabular_suite")
    return isinstance(exc, USER_ERRORS)


def _run(fn):
    """Run a command's body: user errors become one red line, anything else one line pointing to ``--debug``.

    With ``--debug`` every exception propagates with its traceback.
    """
    try:
        return fn()
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _fail("interrupted; files being written were removed (outputs are complete or absent)", EXIT_INTERRUPTED)
    except Exception as exc:
        if _state["debug"]:
            raise
        if _is_user_error(exc):
            _fail(_one_line(exc))
        what = type(exc).__name__ + (f": {_one_line(exc)}" if str(exc).strip() else "")
        _fail(
            f"unexpected {what} (a bug in tabular-suite?); rerun with --debug for the traceback", EXIT_UNEXPECTED_ERROR
        )


def _tracking_succeeded() -> None:
    """End a --track command with an error when MLflow tracking failed (outputs are already written)."""
    from tabular_suite import tracking

    if tracking.failures():
        raise ValueError(f"{tracking.failures()[0]}; the outputs were written, the run was not recorded.")


def _parse_params(params: list[str]) -> dict:
    out = {}
    for item in params or []:
        if "=" not in item:
            raise ValueError(f"--param expects key=value, got {item!r}.")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


_SEP = typer.Option(None, "--sep", help="CSV separator (default: detected among , ; tab |).")
_DECIMAL = typer.Option(None, "--decimal", help="Decimal mark of CSV numbers: . or , (default: detected).")
_ENCODING = typer.Option(None, "--encoding", help="Encoding of a CSV file (default: detected; utf-8, else cp1252).")
_CATEGORICAL = typer.Option([], "--categorical", help="Columns to read as categories (comma-separated; repeatable).")
_COERCE = typer.Option(
    [], "--coerce-numeric", help="Numeric columns whose values that are not numbers become missing (comma-separated)."
)
_TYPE = typer.Option(
    [], "--type", help="column=kind, kind one of numeric, categorical, boolean, datetime[:format], text (repeatable)."
)
_SAMPLE_WEIGHT = typer.Option(
    None, "--sample-weight", help="Column holding each row's training weight (>= 0; not a feature)."
)
_CHUNK_ROWS = typer.Option(100_000, "--chunk-rows", help="Rows read at a time (memory holds one chunk).")
_TRUST_HELP = "Allow a compare ensemble with scikit-learn/GBDT members (stored with pickle); only for files you made."


def _data_path(data: Path) -> Path:
    """DATA as a file path: a file, or the name of a bundled dataset."""
    from tabular_suite import datasets

    if not data.exists() and str(data) in datasets.list_datasets():
        return datasets.dataset_path(str(data))
    return data


@contextlib.contextmanager
def _progress(verbose: bool, what: str):
    """A progress bar on stderr over the share of the file read; yields its update function."""
    if not verbose:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(what), BarColumn(), TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=1.0, rows=0)
        yield lambda rows, share: bar.update(task, completed=share, rows=rows)


def _read_data(data: Path, dialect: dict | None = None):
    """A CSV/Parquet file, or the name of a bundled dataset (see `tabular-suite datasets`).

    ``dialect``: the user's --sep/--decimal/--encoding (None values are detected); what was
    used is printed for a CSV file."""
    import tabular_suite
    from tabular_suite import datasets
    from tabular_suite.data.io import describe_dialect

    if not data.exists() and str(data) in datasets.list_datasets():
        return tabular_suite.read_table(datasets.dataset_path(str(data)))
    df = tabular_suite.read_table(data, **(dialect or {}))
    if "csv_dialect" in df.attrs:
        shape = f"{df.shape[0]:,} rows x {df.shape[1]} columns"
        console.print(f"read {data.name}: {shape} ({describe_dialect(df.attrs['csv_dialect'])})", highlight=False)
    return df


def _check_tracking(track: bool, tracking_uri: str | None) -> None:
    """--tracking-uri without --track would be ignored: an error instead."""
    if tracking_uri is not None and not track:
        raise ValueError("--tracking-uri is the MLflow store of --track: add --track to log the run there.")


def _dialect(sep: str | None, decimal: str | None, encoding: str | None) -> dict:
    if sep is not None and sep.lower() in ("tab", "\\t"):
        sep = "\t"
    if decimal is not None and decimal not in (".", ","):
        raise ValueError(f"--decimal must be '.' or ',', got {decimal!r}.")
    return {"sep": sep, "decimal": decimal, "encoding": encoding}


def _model_params(values: list[str]) -> dict:
    """--param model.key=value (repeatable) as compare's model_params (values as in _parse_params)."""
    out: dict = {}
    for item in values:
        model, dot, rest = item.partition(".")
        if not (dot and model.strip() and "=" in rest and rest.split("=", 1)[0].strip()):
            raise ValueError(f"--param {item!r}: write model.key=value, e.g. --param mlp.max_epochs=50.")
        out.setdefault(model.strip().lower(), {}).update(_parse_params([rest]))
    return out


def _column_options(categorical: list[str], coerce_numeric: list[str], types: list[str]) -> dict:
    """--categorical / --coerce-numeric (comma-separated, repeatable) and --type col=kind as data parameters."""

    def names(values):
        return [n.strip() for v in values for n in v.split(",") if n.strip()] or None

    kinds = {}
    for item in types:
        if "=" not in item:
            raise ValueError(f"--type expects column=kind, got {item!r}.")
        column, kind = item.split("=", 1)
        kinds[column.strip()] = kind.strip()
    return {
        "categorical_features": names(categorical),
        "coerce_numeric": names(coerce_numeric),
        "feature_types": kinds or None,
    }


def _split_target(df, target: str):
    if target not in df.columns:
        raise ValueError(
            f"Target column {target!r} is not in the file (columns: {', '.join(map(str, df.columns[:20]))})."
        )
    return df.drop(columns=[target]), df[target].to_numpy()


def _split_weight(X, column: str | None):
    """``(X without the weight column, the weights or None)``."""
    if column is None:
        return X, None
    if column not in X.columns:
        names = ", ".join(map(str, X.columns[:20]))
        raise ValueError(f"--sample-weight column {column!r} is not in the file (columns: {names}).")
    return X.drop(columns=[column]), X[column].to_numpy()


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and library warnings.")):
    _state["debug"] = debug
    if not debug:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """Keep the terminal to our own output: MLflow's migrations log and its advisory warnings are
    dropped, and other warnings (data drift, ID-like columns, tracking) print as one line each."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if "mlflow" in str(filename):
            return
        if _state["debug"]:
            show(message, category, filename, lineno, file, line)
        else:  # one yellow line (drift, ID-like columns, a failed tracking store): no source line
            text = " ".join(str(message).split())
            Console(stderr=True, soft_wrap=True).print(f"[yellow]warning:[/] {escape(text)}", highlight=False)

    warnings.showwarning = showwarning


@app.command()
def models():
    """List the registered models: their family (tabular, in-context, recommendation), tasks and description.

    Example: tabular-suite models
    """

    def run():
        import tabular_suite

        table = Table(title="tabular_suite models")
        for col in ("name", "family", "tasks", "description"):
            table.add_column(col)
        for name in tabular_suite.list_models():
            spec = tabular_suite.get_model(name)
            table.add_row(name, spec.family, ", ".join(spec.tasks), spec.description)
        console.print(table)

    _run(run)


@app.command("datasets")
def datasets_command(name: str | None = typer.Argument(None, help="Show one dataset in detail.")):
    """List the bundled datasets, or show one (its source, licence and first rows).

    Example: tabular-suite datasets adult
    """

    def run():
        from tabular_suite import datasets

        if name is None:
            table = Table(title="bundled datasets")
            for col in ("name", "task", "target", "rows", "licence"):
                table.add_column(col)
            for n in datasets.list_datasets():
                info = datasets.dataset_info(n)
                table.add_row(n, info["task"], info["target"], f"{info['rows']:,}", info["license"])
            console.print(table)
            return
        info = datasets.dataset_info(name)
        for key in ("description", "task", "target", "rows", "source", "license"):
            console.print(f"[bold]{key}[/]: {info[key]}")
        console.print(f"[bold]file[/]: {datasets.dataset_path(name)}")
        console.print(datasets.load_dataset(name).frame.head().to_string())

    _run(run)


@app.command()
def train(
    data: Path = typer.Argument(..., help="CSV or Parquet file with features and the target."),
    target: str = typer.Option(..., "--target", "-t", help="Name of the target column."),
    model: str = typer.Option("mlp", "--model", "-m", help="Registered model name (see `models`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the fitted model (.tsm)."),
    task: str | None = typer.Option(None, help="classification or regression (default: inferred from the target)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Estimator parameter key=value (repeatable)."),
    holdout: float = typer.Option(
        0.0, help="Share of rows held out to report test metrics (0 = none); the model saved is fitted on the others."
    ),
    sample_weight: str | None = _SAMPLE_WEIGHT,
    seed: int = typer.Option(0, help="random_state for the split and the model."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    track: bool = typer.Option(False, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
    stream: bool = typer.Option(
        False,
        "--stream",
        help="Read DATA (Parquet) in batches (fit_parquet) instead of loading it (always for a folder).",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Train data-parallel in this many local processes (torch.distributed; the same as "
        "torchrun --nproc-per-node N). Rank 0 writes the model and the MLflow run.",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Train the --workers on a Ray cluster with Ray Train (an address, 'auto', or 'local' to start "
        "a Ray here) instead of local processes.",
    ),
    categorical: list[str] = _CATEGORICAL,
    coerce_numeric: list[str] = _COERCE,
    types: list[str] = _TYPE,
    sep: str | None = _SEP,
    decimal: str | None = _DECIMAL,
    encoding: str | None = _ENCODING,
):
    """Train a model on DATA (a file or a bundled dataset name) and save it.

    Example: tabular-suite train datasets/adult.csv.gz --target class --model mlp --out adult.tsm --holdout 0.2 --track
    """

    def run():
        from sklearn.model_selection import train_test_split

        import tabular_suite
        from tabular_suite.data import infer_task
        from tabular_suite.training.distributed import is_main_process

        check_output_path(out, force=force, inputs=[data])
        _check_tracking(track, tracking_uri)
        if workers < 1:
            raise ValueError(f"--workers must be at least 1, got {workers}.")
        fit = _ray_fit(ray_address, workers)
        if workers > 1 and fit is None and "WORLD_SIZE" not in os.environ:
            raise typer.Exit(_launch_workers(workers))
        console.quiet = not is_main_process()  # the other ranks train silently
        columns = _column_options(categorical, coerce_numeric, types)
        tracked = (tracking_uri, experiment) if track else None
        if stream or data.is_dir():
            est = _train_streamed(data, target, model, out, task, param, seed, verbose, columns, holdout, sample_weight,
                                  fit, tracked)  # fmt: skip
            _report_run(est, tracked)
            return
        df = _read_data(data, _dialect(sep, decimal, encoding))
        X, y = _split_target(df, target)
        X, weights = _split_weight(X, sample_weight)
        chosen = task or infer_task(y)
        params = {"random_state": seed, **{k: v for k, v in columns.items() if v is not None}, **_parse_params(param)}
        est = tabular_suite.make_estimator(model, chosen, **params)
        trained_by_the_engine = "verbose" in est.get_params()  # an in-context model has no training loop
        if trained_by_the_engine and "verbose" not in params:
            est.set_params(verbose=int(verbose))
        if tracked:
            _track_fit(est, model, params, *tracked)
        if holdout > 0:
            strat = y if chosen == "classification" else None
            rows = np.arange(len(y))
            train_rows, test_rows = train_test_split(rows, test_size=holdout, random_state=seed, stratify=strat)
            X, X_test, y, y_test = X.iloc[train_rows], X.iloc[test_rows], y[train_rows], y[test_rows]
            weights = None if weights is None else weights[train_rows]
        weighted = {} if weights is None else {"sample_weight": weights}
        est = fit(est, X, y, **weighted) if fit is not None else est.fit(X, y, **weighted)
        console.print(f"column types: {describe_types(est.feature_types_)}", highlight=False)
        est.save(out)
        summary = f" ({est.n_params_:,} parameters, best epoch {est.best_epoch_})" if trained_by_the_engine else ""
        console.print(f"saved {type(est).__name__}{summary} to {out}")
        if holdout > 0:
            classifier = getattr(est, "classes_", None) is not None
            metrics = metrics_of(est, y_test, est.predict_proba(X_test) if classifier else est.predict(X_test))
            console.print(_metrics_table(f"{model} on {data.name}: {len(y_test)} held-out rows", metrics))
        if holdout > 0 and getattr(est, "mlflow_run_id_", None):
            from tabular_suite import tracking

            tracking.log_test_metrics(est.mlflow_run_id_, metrics, tracking.resolve_tracking_uri(tracking_uri))
        _report_run(est, tracked)

    _run(run)


def _track_fit(est, model: str, params: dict, tracking_uri: str | None, experiment: str) -> None:
    """``train --track``: the estimator's fit is tracked, to ``tracking_uri`` and ``experiment``."""
    from tabular_suite import tracking

    if "tracking" not in est.get_params():
        raise ValueError(f"--track logs a training run; {model!r} ({type(est).__name__}) has none to log.")
    tracking.autolog(tracking_uri=tracking_uri, experiment_name=experiment)
    if "tracking" not in params:
        est.set_params(tracking=True)


def _report_run(est, tracked) -> None:
    """Name a trained model's MLflow run; with --track (``tracked``: ``(tracking_uri, experiment)``),
    fail when tracking failed."""
    if getattr(est, "mlflow_run_id_", None):
        from tabular_suite import tracking

        uri = tracking.resolve_tracking_uri(tracked[0] if tracked else None)
        console.print(f"MLflow run {est.mlflow_run_id_} in {uri} (browse: mlflow ui --backend-store-uri {uri})")
    if tracked:
        _tracking_succeeded()


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model file saved by `train`."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with the feature columns."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv or .parquet)."),
    proba: bool = typer.Option(False, "--proba", help="Write class probabilities instead of labels."),
    keep_columns: str | None = typer.Option(
        None, "--keep-columns", help="Comma-separated columns of DATA written before the predictions (an id)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    trust: bool = typer.Option(False, "--trust", help=_TRUST_HELP),
    chunk_rows: int = _CHUNK_ROWS,
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    sep: str | None = _SEP,
    decimal: str | None = _DECIMAL,
    encoding: str | None = _ENCODING,
):
    """Predict DATA with a saved model and write the predictions.

    Example: tabular-suite predict adult.tsm new_rows.csv --out predictions.csv --keep-columns id
    """

    def run():
        import tabular_suite

        check_output_path(out, force=force, inputs=[model, data])
        est = tabular_suite.load(model, trusted=trust)
        if proba and getattr(est, "classes_", None) is None:
            raise ValueError("--proba needs a classifier; this model is a regressor.")
        with _progress(verbose, "predicting") as on_chunk:
            keep = None if keep_columns is None else [c.strip() for c in keep_columns.split(",") if c.strip()]
            rows = tabular_suite.predict_file(
                est, _data_path(data), out, proba=proba, keep_columns=keep, chunk_rows=chunk_rows,
                overwrite=force, on_chunk=on_chunk, **_dialect(sep, decimal, encoding),
            )  # fmt: skip
        console.print(f"wrote {rows:,} predictions to {out}")

    _run(run)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model file saved by `train`."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with features and the target."),
    target: str = typer.Option(..., "--target", "-t", help="Name of the target column."),
    trust: bool = typer.Option(False, "--trust", help=_TRUST_HELP),
    chunk_rows: int = _CHUNK_ROWS,
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    sep: str | None = _SEP,
    decimal: str | None = _DECIMAL,
    encoding: str | None = _ENCODING,
):
    """Print metrics of a saved model on labelled DATA.

    Example: tabular-suite evaluate adult.tsm test.csv --target class
    """

    def run():
        import tabular_suite

        with _progress(verbose, "evaluating") as on_chunk:
            metrics, rows = tabular_suite.evaluate_file(
                model, _data_path(data), target, chunk_rows=chunk_rows, trusted=trust, on_chunk=on_chunk,
                **_dialect(sep, decimal, encoding),
            )  # fmt: skip
        console.print(_metrics_table(f"{model.name} on {data.name} ({rows:,} rows)", metrics))

    _run(run)


@app.command("compare")
def compare_command(
    data: Path = typer.Argument(..., help="CSV or Parquet file, or a bundled dataset name."),
    target: str | None = typer.Option(
        None, "--target", "-t", help="Target column (default for a bundled dataset: its target)."
    ),
    models: str | None = typer.Option(None, "--models", help="Comma-separated model names (default: the preset's)."),
    params: list[str] = typer.Option(
        [], "--param", "-p", help="A candidate's setting model.key=value (value read as JSON, else text; repeatable)."
    ),
    cv: int = typer.Option(5, help="Cross-validation folds."),
    holdout: str = typer.Option(
        "auto",
        help="One fit per model scored on this share of rows instead of --cv folds: a fraction, auto (large tables "
        "under a short --time-limit) or none.",
    ),
    sample_weight: str | None = _SAMPLE_WEIGHT,
    class_weight: str | None = typer.Option(
        None, "--class-weight", help='balanced, or JSON {"class": weight} (classification).'
    ),
    calibrate: str = typer.Option(
        "auto", help="Calibrate the best model's probabilities: auto, temperature, isotonic or none."
    ),
    decision_threshold: str = typer.Option(
        "auto", "--decision-threshold", help="Binary: auto (tuned for the metric), none (argmax) or a number in (0, 1)."
    ),
    metric: str | None = typer.Option(
        None, help="accuracy, roc_auc, log_loss, f1_macro, balanced_accuracy | rmse, mae, r2."
    ),
    preset: str = typer.Option("fast", help="fast (small deep models, <= 40 epochs) or best (paper defaults)."),
    time_limit: float | None = typer.Option(None, "--time-limit", help="Seconds for the whole comparison."),
    model_time_limit: float | None = typer.Option(None, "--model-time-limit", help="Seconds per model (all folds)."),
    task: str | None = typer.Option(None, help="classification or regression (default: inferred)."),
    seed: int = typer.Option(0, help="random_state for folds and models."),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here."),
    importance: bool = typer.Option(
        False, "--importance", help="Print the best row's permutation feature importance (out of fold)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Save the best model/ensemble here (.tsm)."),
    refit: bool = typer.Option(
        False, "--refit", help="Refit the best on all rows instead of keeping the fold models (k-fold bagging)."
    ),
    tune: int = typer.Option(
        0,
        "--tune",
        help="Search hyperparameters (Optuna TPE from a portfolio) with at most this many trials per model; "
        "-1: as many as half of each model's time allows. 0: no search.",
    ),
    portfolio: bool = typer.Option(
        True,
        "--portfolio/--no-portfolio",
        help="With --time-limit and a kept model (--out, --track, --report or --importance): spend the time the "
        "models leave on further configurations of the GBDTs and deep models (rows lightgbm_2, mlp_2, ...), bagged "
        "and ensembled like the first.",
    ),
    bag_sets: int = typer.Option(
        1,
        "--bag-sets",
        help="With --time-limit, --cv folds and a kept model: fit the models again on up to this many k-fold splits "
        "with the time left (AutoGluon's num_bag_sets); 1 (the default): one split.",
    ),
    infer_limit: float | None = typer.Option(
        None, "--infer-limit", help="Seconds per row the saved best model may take to predict (ensemble within it)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --report/--out if they exist."),
    track: bool = typer.Option(
        False, "--track/--no-track", help="Log to MLflow: a parent run, one nested run per model."
    ),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
    register: str | None = typer.Option(
        None, "--register", help="With --track: register the best model in the MLflow model registry under this name."
    ),
    backend: str = typer.Option("local", help="local, or ray (each model x fold a Ray task)."),
    ray_address: str | None = typer.Option(None, help="Ray cluster address (backend ray; default: start a local Ray)."),
    num_threads: int | None = typer.Option(None, help="Threads per model (default: all cores but one)."),
    verbose: bool = typer.Option(
        True, "--verbose/--quiet", help="Live progress (model, fold, time left, best so far) and a line per model."
    ),
    categorical: list[str] = _CATEGORICAL,
    coerce_numeric: list[str] = _COERCE,
    types: list[str] = _TYPE,
    sep: str | None = _SEP,
    decimal: str | None = _DECIMAL,
    encoding: str | None = _ENCODING,
):
    """Rank models on DATA by cross-validation; print the leaderboard, optionally report and save the best.

    Example: tabular-suite compare california --cv 3 --time-limit 300 --report report.html --out best.tsm --track
    """

    def run():
        import tabular_suite
        from tabular_suite import datasets

        for path in (report, out):
            if path is not None:
                check_output_path(path, force=force, inputs=[data])
        _check_tracking(track, tracking_uri)
        if refit and out is None and not track:
            raise ValueError("--refit refits the best model on all rows for --out or --track: give one of them.")
        column = target
        if column is None:
            if data.exists() or str(data) not in datasets.list_datasets():
                raise ValueError("--target is required (it can be left out only for a bundled dataset).")
            column = datasets.dataset_info(str(data))["target"]
        columns = _column_options(categorical, coerce_numeric, types)
        X, y = _split_target(_read_data(data, _dialect(sep, decimal, encoding)), column)
        with _compare_progress(verbose) as on_progress:
            result = tabular_suite.compare(
                X,
                y,
                **columns,
                sample_weight=sample_weight,
                class_weight=_class_weight(class_weight),
                calibrate=None if calibrate.lower() == "none" else calibrate.lower(),
                decision_threshold=_threshold(decision_threshold),
                models=None if models is None else [m.strip() for m in models.split(",") if m.strip()],
                model_params=_model_params(params),
                task=task or "auto",
                cv=cv,
                holdout=_holdout(holdout),
                metric=metric,
                preset=preset,
                time_limit=time_limit,
                model_time_limit=model_time_limit,
                random_state=seed,
                tracking=track,
                experiment=experiment if track else None,
                backend=backend,
                ray_address=ray_address,
                num_threads=num_threads,
                bag=out is not None or track or report is not None or importance,
                refit=refit and (out is not None or track),
                tune=_tune(tune),
                portfolio=portfolio,
                bag_sets=bag_sets,
                infer_limit=infer_limit,
                tracking_uri=tracking_uri,
                registered_model_name=register,
                progress=on_progress,
            )

        result.settings["command"] = shlex.join(["tabular-suite", *sys.argv[1:]])
        console.print(f"column types: {result.data_summary['column_types']}", highlight=False)
        console.print(_leaderboard_table(result, data))
        for _, row in result.leaderboard.iterrows():
            if row["status"] != "ok" and isinstance(row["error"], str):
                console.print(
                    f"[yellow]{row['model']}[/]: {row['status']}: {row['error']}", highlight=False, soft_wrap=True
                )
        for line in _postprocessing_lines(result):
            console.print(line, highlight=False, soft_wrap=True)
        fitted = result.leaderboard[result.leaderboard["model"] != "ensemble"]
        if not fitted["mean"].notna().any():
            raise ValueError(f"no model finished a fold ({', '.join(fitted['model'])}); see the errors above.")
        if out is not None:
            result.save(out)
            members = result.best_model_.members.items()
            once = [n for n, m in members if len(getattr(m, "models", ())) == 1]  # in-context model, forests
            once = f"; {', '.join(once)}: one fit on all rows" if once else ""
            how = f"bagged (each member: {cv} fold models{' per k-fold split' if bag_sets > 1 else ''}{once})"
            how = "refitted on all rows" if result.refit_status else how
            if not result.refit_status and result.settings["holdout"]:
                how = f"once-fitted (each member: one model, {result.settings['holdout']:.1%} of rows held out)"
            console.print(f"saved the {how} {result.best_model_!r} to {out}", soft_wrap=True)
            from tabular_suite.core.model_file import read_model_file

            pickled = [n for n, m in read_model_file(out)[0]["members"].items() if m["kind"] == "pickle"]
            if pickled:
                console.print(
                    f"({', '.join(pickled)} stored with pickle: predict/evaluate load it with --trust, as "
                    "tabular_suite.load(path, trusted=True) does; only for a file you made)",
                    soft_wrap=True,
                )
        table = None
        if importance or report is not None:
            table = result.feature_importance()
        if importance:
            console.print(_importance_table(table, result))
        if report is not None:
            result.report(report, importance=table)
            console.print(f"wrote the report to {report}")
        if result.mlflow_run_id:
            uri = tabular_suite.tracking.resolve_tracking_uri(tracking_uri)
            console.print(f"MLflow run {result.mlflow_run_id} in {uri} (browse: mlflow ui --backend-store-uri {uri})")
        if result.mlflow_model_uri:
            console.print(f"MLflow model {result.mlflow_model_uri}", highlight=False)
        if result.registered_model_version:
            console.print(f"registered as {register} version {result.registered_model_version}", highlight=False)
        if track:
            _tracking_succeeded()

    _run(run)


def _holdout(text: str):
    """--holdout: "auto", "none" or a fraction in (0, 1)."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < 1:
        raise ValueError(f"--holdout must be auto, none or a fraction in (0, 1), got {text!r}.")
    return value


def _importance_table(importance, result) -> Table:
    title = (
        f"permutation importance of {importance.attrs['model']}: how much worse {result.metric.name} gets when a "
        f"column is shuffled (out of fold, {int(importance['n_repeats'].iloc[0])} shuffles)"
    )
    table = Table(title=title, title_justify="left")
    for col in ("feature", "importance", "stddev"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for name, row in importance.head(25).iterrows():
        table.add_row(str(name), f"{row['importance']:.4g}", f"{row['stddev']:.2g}")
    if len(importance) > 25:
        table.add_row(f"... {len(importance) - 25} more", "", "")
    return table


@contextlib.contextmanager
def _compare_progress(verbose: bool):
    """A live status line (model, fold, time left, best so far) and a printed line per finished
    model; yields compare's ``progress`` callback (None when quiet)."""
    if not verbose:
        yield None
        return
    err = Console(stderr=True)
    with err.status("starting the comparison", spinner="dots") as status:

        def on_progress(e: dict) -> None:
            best = f"best so far {e['best_model']} {e['best_score']:.4g}" if e["best_model"] else "no score yet"
            left = f" · {e['time_left']:.0f} s left" if e["time_left"] is not None else ""
            where = f"{e['model']} ({e['model_index'] + 1}/{e['n_models']})"
            if e["event"] == "fold_start":
                status.update(f"{where} fold {e['fold'] + 1}/{e['n_folds']} · {best}{left}")
            elif e["event"] == "trial_end":
                status.update(f"{where} tuning, trial {e['trial'] + 2} · {best}{left}")
            elif e["event"] == "model_end":
                score = f"{e['score']:.4g}" if e["score"] is not None else "no score"
                line = f"[{e['elapsed']:5.0f} s] {where}: {e['status']}, {score} · {best}{left}"
                err.print(line, highlight=False, soft_wrap=True)

        yield on_progress


def _tune(trials: int) -> bool | int:
    if trials < -1:
        raise ValueError(f"--tune must be a number of trials >= 1, -1 (as time allows) or 0 (none), got {trials}.")
    return {0: False, -1: True}.get(trials, trials)


def _ray_fit(ray_address: str | None, workers: int):
    """With --ray-address: ``fit(est, X, y, **params)`` training on Ray Train's workers; else None."""
    if ray_address is None:
        return None
    from tabular_suite.training.distributed import fit_on_ray

    address = None if ray_address == "local" else ray_address

    def fit(est, X, y=None, **params):
        return fit_on_ray(est, X, y, num_workers=workers, ray_address=address, **params)

    return fit


def _train_streamed(data, target, model, out, task, param, seed, verbose, columns, holdout, sample_weight, fit,
                    tracked):  # fmt: skip
    """``train --stream``: fit_parquet over a Parquet file or folder, memory at about one batch; the
    fitted estimator. ``tracked``: ``(tracking_uri, experiment)`` with --track, else None."""
    import tabular_suite
    from tabular_suite.data import infer_task
    from tabular_suite.data.io import ParquetSource

    if holdout > 0 or sample_weight is not None:
        raise ValueError("--stream trains on every row as read: hold rows out in a file of their own and use "
                         "`evaluate`; row weights need an in-memory table (drop --stream).")  # fmt: skip
    source = ParquetSource(data)
    if target not in source.columns:
        raise ValueError(f"--target {target!r} is not a column of {data} (columns: {', '.join(source.columns[:20])}).")
    first = next(iter(source.batches()))[1] if task is None else None
    chosen = task or infer_task(first[target].to_numpy())
    params = {"random_state": seed, **{k: v for k, v in columns.items() if v is not None}, **_parse_params(param)}
    est = tabular_suite.make_estimator(model, chosen, **params)
    if not hasattr(est, "fit_parquet"):
        raise ValueError(f"{model!r} ({type(est).__name__}) does not stream; train it on a table (drop --stream).")
    if "verbose" not in params:
        est.set_params(verbose=int(verbose))
    if tracked:
        _track_fit(est, model, params, *tracked)
    est = fit(est, str(data), target=target) if fit is not None else est.fit_parquet(data, target)
    est.save(out)
    history = est.history_[-1] if est.history_ else {}
    speed = f", {history['rows_per_s']:,.0f} rows/s" if "rows_per_s" in history else ""
    console.print(f"streamed {source.n_rows:,} rows of {data}; saved {type(est).__name__} "
                  f"({est.n_params_:,} parameters, best epoch {est.best_epoch_}{speed}) to {out}")  # fmt: skip
    return est


def _launch_workers(n: int) -> int:
    """Run this same command in ``n`` local processes under torchrun (one process group); the
    exit code of the group."""
    args = list(sys.argv[1:])
    for i, arg in enumerate(args):  # drop --workers N / --workers=N
        if arg == "--workers":
            del args[i : i + 2]
            break
        if arg.startswith("--workers="):
            del args[i]
            break
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
           "-m", "tabular_suite.cli.app", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run(cmd, env=env).returncode


def _class_weight(text: str | None):
    if text is None or text == "balanced":
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(f'--class-weight must be balanced or a JSON object such as {{"yes": 3}}, got {text!r}.')
    return value


def _threshold(text: str):
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"--decision-threshold must be auto, none or a number in (0, 1), got {text!r}.") from None


def _postprocessing_lines(result) -> list[str]:
    """What compare fitted on the out-of-fold predictions, in words."""
    post, lines = result.postprocessing, []
    cal = post.get("calibration", {})
    if "method" in cal:
        verdict = "applied" if cal["applied"] else "not applied (it did not help)"
        lines.append(
            f"calibration: {cal['method']} {verdict}; cross-fitted log loss {cal['log_loss_before']:.4f} -> "
            f"{cal['log_loss_after']:.4f}, ECE {cal['before']['ece']:.4f} -> {cal['after']['ece']:.4f}"
        )
    t = post.get("threshold")
    if t and t["tuned"]:
        verdict = f"{t['threshold']:.3f}" if t["applied"] else "0.5 kept (a tuned one did not help on held-out folds)"
        lines.append(
            f"decision threshold: {verdict}; cross-fitted {result.metric.name} {t['cross_fitted_score_at_0.5']:.4f} "
            f"at 0.5, {t['cross_fitted_score']:.4f} tuned"
        )
    elif t:
        lines.append(f"decision threshold: {t['threshold']:g} (given)")
    if "intervals" in post:
        i = post["intervals"]
        lines.append(
            f"90% prediction interval: width {i['width']:.4g}, cross-fitted coverage {i['cross_fitted_coverage']:.3f}"
        )
    return lines


recommend_app = typer.Typer(
    help="Next-item recommendation (SASRec) from interaction logs: fit, predict, evaluate.",
    no_args_is_help=True,
)
app.add_typer(recommend_app, name="recommend")


def _write_table(result, out: Path) -> None:
    with atomic_path(out) as tmp:
        if out.suffix.lower() in (".parquet", ".pq"):
            result.to_parquet(tmp, index=False)
        else:
            result.to_csv(tmp, index=False)


def _as_model_values(values: list[str], known):
    """CLI strings -> the dtype of the model's users/items (integer ids stay integers)."""
    kind = getattr(known, "dtype", np.dtype(object)).kind
    if kind in "iuf":
        try:
            return np.asarray(values, dtype=float).astype(known.dtype).tolist()
        except ValueError:
            raise ValueError(f"The model's ids are numbers; got {values[:3]}.") from None
    return values


def _evaluation_table(title: str, results: list[dict]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("protocol", "users", *[k for k in results[0] if k not in ("protocol", "users")]):
        table.add_column(col, justify="left" if col == "protocol" else "right")
    for r in results:
        table.add_row(
            *[f"{v:.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()]
        )
    return table


def _both_protocols(rec, test, k: int = 10, n_negatives: int = 100) -> list[dict]:
    results = [rec.evaluate(test, protocol="full", k=k)]
    try:
        results.append(rec.evaluate(test, protocol="sampled", k=k, n_negatives=n_negatives))
    except ValueError as exc:  # a catalogue too small for the sampled protocol
        console.print(f"[yellow]sampled protocol skipped:[/] {exc}", highlight=False, soft_wrap=True)
    return results


@recommend_app.command("fit")
def recommend_fit(
    data: Path = typer.Argument(..., help="CSV or Parquet interaction log (one row per user-item interaction)."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to save the fitted recommender (.tsm)."),
    user_col: str = typer.Option("user_id", "--user-col", help="User column."),
    item_col: str = typer.Option("item_id", "--item-col", help="Item column."),
    time_col: str | None = typer.Option(None, "--time-col", help="Timestamp column (default: row order)."),
    param: list[str] = typer.Option([], "--param", "-p", help="SASRecRecommender parameter key=value (repeatable)."),
    test_last: bool = typer.Option(False, "--test-last", help="Hold out each user's last item and report HR/NDCG@10."),
    seed: int = typer.Option(0, help="random_state of the model."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    track: bool = typer.Option(False, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: str | None = typer.Option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
    ),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
):
    """Fit SASRec on an interaction log and save it.

    Example: tabular-suite recommend fit ratings.csv --user-col user --item-col movie -o rec.tsm --test-last
    """

    def run():
        import pandas as pd

        from tabular_suite import make_estimator
        from tabular_suite.recsys.metrics import leave_one_out_split

        check_output_path(out, force=force, inputs=[data])
        _check_tracking(track, tracking_uri)
        log = _read_data(data)
        params = {"random_state": seed, "verbose": int(verbose), **_parse_params(param)}
        rec = make_estimator(
            "sasrec", "recommendation", user_col=user_col, item_col=item_col, time_col=time_col, **params
        )
        test = None
        if test_last:
            train, valid, test = leave_one_out_split(log, user_col, item_col, time_col)
            log = pd.concat([train, valid]).sort_index()
        rec.fit(log)
        rec.save(out)
        console.print(
            f"saved SASRecRecommender ({rec.n_params_:,} parameters, {len(rec.users_):,} users, "
            f"{len(rec.items_):,} items, best epoch {rec.best_epoch_}) to {out}"
        )
        results = []
        if test is not None:
            results = _both_protocols(rec, test)
            console.print(_evaluation_table(f"{data.name}: each user's last item held out", results))
        if track:
            from tabular_suite import tracking

            run_id = tracking.log_recommender(rec, results, experiment=experiment, tracking_uri=tracking_uri)
            if run_id:
                uri = tracking.resolve_tracking_uri(tracking_uri)
                console.print(f"MLflow run {run_id} in {uri} (browse: mlflow ui --backend-store-uri {uri})")
            _tracking_succeeded()

    _run(run)


@recommend_app.command("predict")
def recommend_predict(
    model: Path = typer.Argument(..., help="Recommender saved by `recommend fit`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv or .parquet): user, item, score, rank."),
    users: str | None = typer.Option(None, "--users", help="Comma-separated users (default: every user in the model)."),
    users_file: Path | None = typer.Option(
        None, "--users-file", help="CSV/Parquet file whose user column lists the users."
    ),
    k: int = typer.Option(10, "-k", help="Recommendations per user."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Allow items the user already interacted with."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Write the top-k next items for users of a saved recommender.

    Example: tabular-suite recommend predict rec.tsm --users 1,2,3 -k 10 --out recs.csv
    """

    def run():
        import tabular_suite

        check_output_path(out, force=force, inputs=[model, users_file])
        rec = tabular_suite.load(model)
        if not isinstance(rec, tabular_suite.SASRecRecommender):
            raise ValueError(f"{model} holds a {type(rec).__name__}; use `tabular-suite predict` for it.")
        if users is not None and users_file is not None:
            raise ValueError("Pass --users or --users-file, not both.")
        if users is not None:
            chosen = _as_model_values([u.strip() for u in users.split(",") if u.strip()], rec.users_)
        elif users_file is not None:
            table = _read_data(users_file)
            if rec.user_col not in table.columns:
                raise ValueError(f"{users_file} has no user column {rec.user_col!r}.")
            chosen = table[rec.user_col].drop_duplicates().tolist()
        else:
            chosen = rec.users_.tolist()
        result = rec.recommend(chosen, k=k, exclude_seen=not include_seen)
        _write_table(result, out)
        console.print(f"wrote {len(result):,} recommendations for {len(chosen):,} users to {out}")

    _run(run)


@recommend_app.command("evaluate")
def recommend_evaluate(
    model: Path = typer.Argument(..., help="Recommender saved by `recommend fit`."),
    data: Path = typer.Argument(..., help="CSV/Parquet with (user, next item) rows to rank."),
    k: int = typer.Option(10, "-k", help="Cut-off of HR@k and NDCG@k."),
    n_negatives: int = typer.Option(100, help="Negatives per user in the sampled protocol."),
):
    """HR@k and NDCG@k of a saved recommender on held-out next items, under both protocols.

    Example: tabular-suite recommend evaluate rec.tsm last_items.csv
    """

    def run():
        import tabular_suite

        rec = tabular_suite.load(model)
        if not isinstance(rec, tabular_suite.SASRecRecommender):
            raise ValueError(f"{model} holds a {type(rec).__name__}, not a recommender.")
        test = _read_data(data)
        console.print(_evaluation_table(f"{model.name} on {data.name}", _both_protocols(rec, test, k, n_negatives)))

    _run(run)


pfn_app = typer.Typer(
    help="The in-context model (TabPFN-style): pre-train it on the synthetic prior, export weights.",
    no_args_is_help=True,
)
app.add_typer(pfn_app, name="pfn")


def _eval_tables(specs: list[str], bundled: bool) -> list:
    """(name, X, y) classification tables: ``file:target`` specs and/or the bundled ones."""
    from tabular_suite import datasets

    tables = []
    for spec in specs:
        path, sep, target = spec.rpartition(":")
        if not sep or not path:
            raise ValueError(f"--eval-data takes FILE:TARGET, got {spec!r}.")
        df = _read_data(Path(path))
        X, y = _split_target(df, target)
        tables.append((Path(path).name.split(".")[0], X, y))
    if bundled:
        for name in datasets.list_datasets():
            if datasets.dataset_info(name)["task"] == "regression":
                continue
            ds = datasets.load_dataset(name)
            X, y = ds.X, ds.y
            if len(X) > 2000:  # a 2,000-row sample keeps the evaluation to seconds
                keep = np.random.default_rng(0).choice(len(X), 2000, replace=False)
                X, y = X.iloc[keep], y.iloc[keep]
            tables.append((name, X, y))
    return tables


def _field_default(field: dataclasses.Field):
    """The field's default; ``...`` (a required option) for a field without one."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return ... if field.default is dataclasses.MISSING else field.default


def _options_from(config_class):
    """Give a command one ``--field-name`` option per field of the dataclass ``config_class``.

    The option's default is the field's default and its help the field's ``metadata["doc"]`` (see
    :func:`tabular_suite.core.params.param`), so the dataclass is the one source of both. The
    command collects the values in ``**config``; typer reads the options from
    ``inspect.signature(command)``, so they are appended to it as keyword-only parameters.
    """
    hints = typing.get_type_hints(config_class)

    def decorate(command):
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fields = [
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=hints[f.name],
                default=typer.Option(_field_default(f), help=f.metadata.get("doc", "")),
            )
            for f in dataclasses.fields(config_class)
        ]
        command.__signature__ = signature.replace(parameters=own + fields)
        return command

    return decorate


@pfn_app.command("pretrain")
@_options_from(PretrainConfig)
def pfn_pretrain(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", "-c", help="Checkpoint file: written regularly, continued if it exists."
    ),
    time_limit: float | None = typer.Option(
        None, help="Stop after this many seconds (after a checkpoint); rerun to continue."
    ),
    eval_data: list[str] = typer.Option(
        [], "--eval-data", help="FILE:TARGET classification table to evaluate on (repeatable)."
    ),
    eval_bundled: bool = typer.Option(
        True, "--eval-bundled/--no-eval-bundled", help="Also evaluate on the bundled classification datasets."
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of continuing an existing checkpoint."),
    init_weights: Path | None = typer.Option(
        None,
        "--init-weights",
        help="Start a new run from this weights file (e.g. the shipped one) instead of a random initialisation.",
    ),
    **config,
):
    """Pre-train the in-context transformer on synthetic datasets (resumable).

    The options after --init-weights are the fields of PretrainConfig (tabular_suite.incontext.pretrain).

    Example: tabular-suite pfn pretrain --checkpoint runs/pfn.pt --time-limit 9000
    """

    def run():
        from tabular_suite.incontext.evaluation import real_data_callback
        from tabular_suite.incontext.pretrain import pretrain

        cfg = PretrainConfig(**config)
        if init_weights is not None and not init_weights.exists():
            raise ValueError(f"--init-weights {init_weights} does not exist.")
        tables = _eval_tables(eval_data, eval_bundled)
        callbacks = (real_data_callback(tables),) if tables else ()
        history = pretrain(
            cfg,
            checkpoint,
            resume=not fresh,
            time_limit=time_limit,
            init_weights=init_weights,
            log=lambda msg: console.print(msg, markup=False, highlight=False),
            callbacks=callbacks,
        )
        done = history["steps"][-1][0] if history["steps"] else 0
        console.print(f"checkpoint {checkpoint}: step {done:,} of {cfg.steps:,}")

    _run(run)


@pfn_app.command("export")
def pfn_export(
    checkpoints: list[Path] = typer.Argument(
        ..., help="Checkpoint(s) written by `pfn pretrain`; several (of one model) are averaged parameter by parameter."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Weights file to write (int8 matrices, loadable by TabPFNClassifier(weights=...))."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Write a pre-training checkpoint's model as a small weights file (int8 matrices, per-row scales).

    Example: tabular-suite pfn export runs/pfn.pt --out my_pfn.tsm
    (or runs/pfn4.pt runs/pfn5.pt: the mean of two cycles' weights)
    """

    def run():
        from tabular_suite.incontext.pretrain import export_weights

        check_output_path(out, force=force, inputs=checkpoints)
        for checkpoint in checkpoints:
            if not checkpoint.exists():
                raise ValueError(f"Checkpoint {checkpoint} does not exist.")
        export_weights(checkpoints, out)
        console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")

    _run(run)


def _leaderboard_table(result, data: Path) -> Table:
    board = result.leaderboard
    metric = result.metric
    holdout = result.settings.get("holdout")
    scored = f"hold-out {holdout:.0%}" if holdout else f"{board['folds'].max()}-fold CV"
    title = (
        f"{data.name}: {metric.name} ({'higher' if metric.greater_is_better else 'lower'} is better), "
        f"{result.data_summary['rows']:,} rows, {scored}, {result.wall_seconds:.0f} s"
    )
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("model", "left"),
        ("status", "left"),
        (f"{metric.name} ± std", "right"),
        ("fit s/fold", "right"),
        ("predict rows/s", "right"),
        ("best epoch", "right"),
        ("params", "right"),
        ("weight", "right"),
    ):
        table.add_column(col, justify=justify)

    def fmt(value, spec):
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)

    for _, row in board.iterrows():  # the ranking's value (out of fold) ± the std over folds
        value = metric.signed(row["score"])
        score = f"{fmt(value, '.4f')} ± {fmt(row['std'], '.4f')}" if np.isfinite(value) else ""
        table.add_row(
            row["model"],
            row["status"],
            score,
            fmt(row["fit_seconds"], ".1f"),
            fmt(row["predict_rows_per_s"], ",.0f"),
            fmt(row["best_epoch"], ".0f"),
            fmt(row["n_params"], ",.0f"),
            fmt(row.get("ensemble_weight"), ".2f"),
        )
    return table


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: temporary files go, open MLflow runs are closed


def main() -> None:
    """The console-script entry point: this process trains, so it keeps freed tensor memory in the
    heap; SIGTERM is handled as Ctrl-C (outputs stay complete or absent, tracking is closed)."""
    import signal

    settle_heap()
    signal.signal(signal.SIGTERM, _terminate)
    app()


if __name__ == "__main__":
    sys.exit(main())
