"""``tabular-suite``: train, predict and evaluate tabular models on CSV/Parquet files.

Thin by design: parse arguments, call the library, print the result. Errors in the user's
input become one red line and exit code 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Deep learning on tables: train, predict and evaluate models on CSV/Parquet files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
_state = {"debug": False}


def _fail(message: str) -> None:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def _run(fn):
    """Run ``fn`` turning expected errors into one clean line."""
    try:
        return fn()
    except typer.Exit:
        raise
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        if _state["debug"]:
            raise
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        _fail(" ".join(lines) if lines else type(exc).__name__)


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


def _check_output(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ValueError(f"{path} already exists; pass --force to overwrite it.")


def _read_data(data: Path):
    """A CSV/Parquet file, or the name of a bundled dataset (see `tabular-suite datasets`)."""
    import tabular_suite
    from tabular_suite import datasets

    if not data.exists() and str(data) in datasets.list_datasets():
        return tabular_suite.read_table(datasets.dataset_path(str(data)))
    return tabular_suite.read_table(data)


def _model_columns(est, X, data: Path):
    """The model's feature columns of X: files often carry extras (ids, the target)."""
    if not hasattr(est, "feature_names_in_"):
        return X
    missing = [c for c in est.feature_names_in_ if c not in X.columns]
    if missing:
        raise ValueError(f"{data} lacks columns the model was trained on: {', '.join(missing)}.")
    return X[list(est.feature_names_in_)]


def _split_target(df, target: str):
    if target not in df.columns:
        raise ValueError(f"Target column {target!r} is not in the file (columns: {', '.join(map(str, df.columns[:20]))}).")
    return df.drop(columns=[target]), df[target].to_numpy()


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    return table


def _evaluate(est, X, y) -> dict:
    from sklearn import metrics as skm

    if hasattr(est, "classes_"):
        proba = est.predict_proba(X)
        pred = est.classes_[proba.argmax(1)]
        out = {"accuracy": skm.accuracy_score(y, pred), "balanced_accuracy": skm.balanced_accuracy_score(y, pred)}
        known = np.isin(y, est.classes_)
        if known.all():
            out["log_loss"] = skm.log_loss(y, proba, labels=est.classes_)
            if len(est.classes_) == 2:
                out["roc_auc"] = skm.roc_auc_score(y == est.classes_[1], proba[:, 1])
        return out
    pred = est.predict(X)
    y = np.asarray(y, dtype=float)
    return {"rmse": float(np.sqrt(skm.mean_squared_error(y, pred))), "mae": skm.mean_absolute_error(y, pred), "r2": skm.r2_score(y, pred)}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and library warnings.")):
    _state["debug"] = debug
    if not debug:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """Keep the terminal to our own output: MLflow's migrations log and its advisory warnings."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("alembic", "mlflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if "mlflow" not in str(filename):
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


@app.command()
def models():
    """List the registered models and their tasks.

    Example: tabular-suite models
    """
    import tabular_suite

    table = Table(title="tabular_suite models")
    for col in ("name", "tasks", "description"):
        table.add_column(col)
    for name in tabular_suite.list_models():
        spec = tabular_suite.get_model(name)
        table.add_row(name, ", ".join(spec.tasks), spec.description)
    console.print(table)


@app.command("datasets")
def datasets_command(name: Optional[str] = typer.Argument(None, help="Show one dataset in detail.")):
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
    task: Optional[str] = typer.Option(None, help="classification or regression (default: inferred from the target)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Estimator parameter key=value (repeatable)."),
    holdout: float = typer.Option(0.0, help="Share of rows held out to report test metrics (0 = none)."),
    seed: int = typer.Option(0, help="random_state for the split and the model."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    track: bool = typer.Option(False, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: Optional[str] = typer.Option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
):
    """Train a model on DATA (a file or a bundled dataset name) and save it.

    Example: tabular-suite train datasets/adult.csv.gz --target class --model mlp --out adult.tsm --holdout 0.2 --track
    """

    def run():
        from sklearn.model_selection import train_test_split

        import tabular_suite

        _check_output(out, force)
        df = _read_data(data)
        X, y = _split_target(df, target)
        chosen = task or _infer_task(y)
        params = {"random_state": seed, "verbose": int(verbose), **_parse_params(param)}
        if track:
            from tabular_suite import tracking

            tracking.autolog(tracking_uri=tracking_uri, experiment_name=experiment)
            params.setdefault("tracking", True)
        est = tabular_suite.make_estimator(model, chosen, **params)
        if holdout > 0:
            strat = y if chosen == "classification" else None
            X, X_test, y, y_test = train_test_split(X, y, test_size=holdout, random_state=seed, stratify=strat)
        est.fit(X, y)
        est.save(out)
        console.print(f"saved {type(est).__name__} ({est.n_params_:,} parameters, best epoch {est.best_epoch_}) to {out}")
        if holdout > 0:
            metrics = _evaluate(est, X_test, y_test)
            console.print(_metrics_table(f"{model} on {data.name}: {len(y_test)} held-out rows", metrics))
        if getattr(est, "mlflow_run_id_", None):
            from tabular_suite import tracking

            uri = tracking.resolve_tracking_uri(tracking_uri)
            if holdout > 0:
                tracking.log_test_metrics(est.mlflow_run_id_, metrics, uri)
            console.print(f"MLflow run {est.mlflow_run_id_} in {uri} (browse: mlflow ui --backend-store-uri {uri})")

    _run(run)


def _infer_task(y) -> str:
    import pandas as pd

    s = pd.Series(y)
    if s.dtype.kind in "fc" and s.nunique() > 20:
        return "regression"
    if s.dtype.kind in "iu" and s.nunique() > 20:
        return "regression"
    return "classification"


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model file saved by `train`."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with the feature columns."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv or .parquet)."),
    proba: bool = typer.Option(False, "--proba", help="Write class probabilities instead of labels."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Predict DATA with a saved model and write the predictions.

    Example: tabular-suite predict adult.tsm new_rows.csv --out predictions.csv
    """

    def run():
        import pandas as pd

        import tabular_suite

        _check_output(out, force)
        est = tabular_suite.load(model)
        X = _model_columns(est, _read_data(data), data)
        if proba:
            if not hasattr(est, "predict_proba"):
                raise ValueError("--proba needs a classifier; this model is a regressor.")
            result = pd.DataFrame(est.predict_proba(X), columns=[f"proba_{c}" for c in est.classes_])
        else:
            result = pd.DataFrame({"prediction": est.predict(X)})
        if out.suffix.lower() in (".parquet", ".pq"):
            result.to_parquet(out, index=False)
        else:
            result.to_csv(out, index=False)
        console.print(f"wrote {len(result)} predictions to {out}")

    _run(run)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="Model file saved by `train`."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with features and the target."),
    target: str = typer.Option(..., "--target", "-t", help="Name of the target column."),
):
    """Print metrics of a saved model on labelled DATA.

    Example: tabular-suite evaluate adult.tsm test.csv --target class
    """

    def run():
        import tabular_suite

        est = tabular_suite.load(model)
        X, y = _split_target(_read_data(data), target)
        X = _model_columns(est, X, data)
        console.print(_metrics_table(f"{model.name} on {data.name} ({len(y)} rows)", _evaluate(est, X, y)))

    _run(run)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
