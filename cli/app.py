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
# Piped output (logs, CI, READMEs) gets room for the leaderboard instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
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


_TRUST_HELP = "Allow a compare ensemble with scikit-learn/GBDT members (stored with pickle); only for files you made."


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

    if getattr(est, "classes_", None) is not None:
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
        from tabular_suite.data import infer_task

        _check_output(out, force)
        df = _read_data(data)
        X, y = _split_target(df, target)
        chosen = task or infer_task(y)
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


@app.command()
def predict(
    model: Path = typer.Argument(..., help="Model file saved by `train`."),
    data: Path = typer.Argument(..., help="CSV or Parquet file with the feature columns."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv or .parquet)."),
    proba: bool = typer.Option(False, "--proba", help="Write class probabilities instead of labels."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    trust: bool = typer.Option(False, "--trust", help=_TRUST_HELP),
):
    """Predict DATA with a saved model and write the predictions.

    Example: tabular-suite predict adult.tsm new_rows.csv --out predictions.csv
    """

    def run():
        import pandas as pd

        import tabular_suite

        _check_output(out, force)
        est = tabular_suite.load(model, trusted=trust)
        X = _model_columns(est, _read_data(data), data)
        if proba:
            if getattr(est, "classes_", None) is None:
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
    trust: bool = typer.Option(False, "--trust", help=_TRUST_HELP),
):
    """Print metrics of a saved model on labelled DATA.

    Example: tabular-suite evaluate adult.tsm test.csv --target class
    """

    def run():
        import tabular_suite

        est = tabular_suite.load(model, trusted=trust)
        X, y = _split_target(_read_data(data), target)
        X = _model_columns(est, X, data)
        console.print(_metrics_table(f"{model.name} on {data.name} ({len(y)} rows)", _evaluate(est, X, y)))

    _run(run)


@app.command("compare")
def compare_command(
    data: Path = typer.Argument(..., help="CSV or Parquet file, or a bundled dataset name."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Target column (default for a bundled dataset: its target)."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated model names (default: the preset's)."),
    cv: int = typer.Option(5, help="Cross-validation folds."),
    metric: Optional[str] = typer.Option(None, help="accuracy, roc_auc, log_loss, f1_macro, balanced_accuracy | rmse, mae, r2."),
    preset: str = typer.Option("fast", help="fast (small deep models, <= 40 epochs) or best (paper defaults)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds for the whole comparison."),
    model_time_limit: Optional[float] = typer.Option(None, "--model-time-limit", help="Seconds per model (all folds)."),
    task: Optional[str] = typer.Option(None, help="classification or regression (default: inferred)."),
    seed: int = typer.Option(0, help="random_state for folds and models."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the HTML report here."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Save the refitted best model/ensemble here (.tsm)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --report/--out if they exist."),
    track: bool = typer.Option(False, "--track/--no-track", help="Log to MLflow: a parent run, one nested run per model."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
    backend: str = typer.Option("local", help="local, or ray (each model x fold a Ray task)."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster address (backend ray; default: start a local Ray)."),
    num_threads: Optional[int] = typer.Option(None, help="Threads per model (default: all cores but one)."),
):
    """Rank models on DATA by cross-validation; print the leaderboard, optionally report and save the best.

    Example: tabular-suite compare california --cv 3 --time-limit 300 --report report.html --out best.tsm --track
    """

    def run():
        import tabular_suite
        from tabular_suite import datasets

        for path in (report, out):
            if path is not None:
                _check_output(path, force)
        column = target
        if column is None:
            if data.exists() or str(data) not in datasets.list_datasets():
                raise ValueError("--target is required (it can be left out only for a bundled dataset).")
            column = datasets.dataset_info(str(data))["target"]
        X, y = _split_target(_read_data(data), column)
        result = tabular_suite.compare(
            X, y, models=None if models is None else [m.strip() for m in models.split(",") if m.strip()],
            task=task or "auto", cv=cv, metric=metric, preset=preset, time_limit=time_limit,
            model_time_limit=model_time_limit, random_state=seed, tracking=track,
            experiment=experiment if track else None, backend=backend, ray_address=ray_address,
            num_threads=num_threads, refit=out is not None or track, tracking_uri=tracking_uri,
        )
        console.print(_leaderboard_table(result, data))
        for _, row in result.leaderboard.iterrows():
            if row["status"] != "ok" and isinstance(row["error"], str):
                console.print(f"[yellow]{row['model']}[/]: {row['status']}: {row['error']}", highlight=False, soft_wrap=True)
        if out is not None:
            result.save(out)
            console.print(f"saved the refitted {result.best_model_!r} to {out}")
        if report is not None:
            result.report(report)
            console.print(f"wrote the report to {report}")
        if result.mlflow_run_id:
            uri = tabular_suite.tracking.resolve_tracking_uri(tracking_uri)
            console.print(f"MLflow run {result.mlflow_run_id} in {uri} (browse: mlflow ui --backend-store-uri {uri})")

    _run(run)


recommend_app = typer.Typer(
    help="Next-item recommendation (SASRec) from interaction logs: fit, predict, evaluate.", no_args_is_help=True,
)
app.add_typer(recommend_app, name="recommend")


def _write_table(result, out: Path) -> None:
    if out.suffix.lower() in (".parquet", ".pq"):
        result.to_parquet(out, index=False)
    else:
        result.to_csv(out, index=False)


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
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()])
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
    time_col: Optional[str] = typer.Option(None, "--time-col", help="Timestamp column (default: row order)."),
    param: list[str] = typer.Option([], "--param", "-p", help="SASRecRecommender parameter key=value (repeatable)."),
    test_last: bool = typer.Option(False, "--test-last", help="Hold out each user's last item and report HR/NDCG@10."),
    seed: int = typer.Option(0, help="random_state of the model."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    verbose: bool = typer.Option(True, "--verbose/--quiet", help="Show a progress bar."),
    track: bool = typer.Option(False, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: Optional[str] = typer.Option(
        None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."),
    experiment: str = typer.Option("tabular_suite", help="MLflow experiment name (with --track)."),
):
    """Fit SASRec on an interaction log and save it.

    Example: tabular-suite recommend fit ratings.csv --user-col user --item-col movie --time-col ts --out rec.tsm --test-last
    """

    def run():
        import pandas as pd

        from tabular_suite import SASRecRecommender
        from tabular_suite.metrics import leave_one_out_split

        _check_output(out, force)
        log = _read_data(data)
        params = {"random_state": seed, "verbose": int(verbose), **_parse_params(param)}
        rec = SASRecRecommender(user_col=user_col, item_col=item_col, time_col=time_col, **params)
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

    _run(run)


@recommend_app.command("predict")
def recommend_predict(
    model: Path = typer.Argument(..., help="Recommender saved by `recommend fit`."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.csv or .parquet): user, item, score, rank."),
    users: Optional[str] = typer.Option(None, "--users", help="Comma-separated users (default: every user in the model)."),
    users_file: Optional[Path] = typer.Option(None, "--users-file", help="CSV/Parquet file whose user column lists the users."),
    k: int = typer.Option(10, "-k", help="Recommendations per user."),
    include_seen: bool = typer.Option(False, "--include-seen", help="Allow items the user already interacted with."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Write the top-k next items for users of a saved recommender.

    Example: tabular-suite recommend predict rec.tsm --users 1,2,3 -k 10 --out recs.csv
    """

    def run():
        import tabular_suite

        _check_output(out, force)
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
    help="The in-context model (TabPFN-style): pre-train it on the synthetic prior, export weights.", no_args_is_help=True,
)
app.add_typer(pfn_app, name="pfn")


def _eval_tables(specs: list[str], bundled: bool) -> list:
    """(name, X, y) classification tables: ``file:target`` specs and/or the bundled ones."""
    import tabular_suite

    tables = []
    for spec in specs:
        path, sep, target = spec.rpartition(":")
        if not sep or not path:
            raise ValueError(f"--eval-data takes FILE:TARGET, got {spec!r}.")
        df = _read_data(Path(path))
        X, y = _split_target(df, target)
        tables.append((Path(path).name.split(".")[0], X, y))
    if bundled:
        for name in tabular_suite.list_datasets():
            ds = tabular_suite.load_dataset(name)
            if ds.task != "regression":
                X, y = ds.X.drop(columns=[ds.target]), ds.X[ds.target]
                if len(X) > 2000:  # a 2,000-row sample keeps the evaluation to seconds
                    keep = np.random.default_rng(0).choice(len(X), 2000, replace=False)
                    X, y = X.iloc[keep], y.iloc[keep]
                tables.append((name, X, y))
    return tables


@pfn_app.command("pretrain")
def pfn_pretrain(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="Checkpoint file: written regularly, continued if it exists."),
    steps: int = typer.Option(16_000, help="Total optimizer steps (the cosine schedule spans them)."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many seconds (after a checkpoint); rerun to continue."),
    d_model: int = typer.Option(256, help="Transformer width."),
    n_layers: int = typer.Option(6, help="Transformer layers."),
    n_heads: int = typer.Option(4, help="Attention heads."),
    d_ffn: int = typer.Option(512, help="Feed-forward width."),
    max_rows: int = typer.Option(1200, help="Rows per synthetic dataset at the end of the curriculum."),
    tokens_per_step: int = typer.Option(8192, help="Rows (tokens) per optimizer step."),
    lr: float = typer.Option(5e-4, help="Peak AdamW learning rate."),
    eval_every: int = typer.Option(250, help="Steps between evaluations (held-out prior batches + real tables)."),
    eval_data: list[str] = typer.Option([], "--eval-data", help="FILE:TARGET classification table to evaluate on (repeatable)."),
    eval_bundled: bool = typer.Option(True, "--eval-bundled/--no-eval-bundled", help="Also evaluate on the bundled classification datasets."),
    seed: int = typer.Option(0, help="Seeds the prior and the initialisation."),
    device: str = typer.Option("auto", help="auto = cuda > mps > cpu."),
    num_threads: Optional[int] = typer.Option(1, help="Torch CPU threads."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of continuing an existing checkpoint."),
    init_weights: Optional[Path] = typer.Option(None, "--init-weights", help="Start a new run from this weights file (e.g. the shipped one) instead of a random initialisation."),
    warmup_steps: int = typer.Option(300, help="Linear warm-up steps before the cosine decay."),
    curriculum: float = typer.Option(0.4, help="Fraction of the steps over which rows per dataset grow from 128 to --max-rows."),
    discrete_fraction: float = typer.Option(0.15, help="Share of synthetic datasets that are discrete rule tables (logic/genetics-like; 0 = the first two shipped cycles' prior)."),
):
    """Pre-train the in-context transformer on synthetic datasets (resumable).

    Example: tabular-suite pfn pretrain --checkpoint runs/pfn.pt --time-limit 9000
    """

    def run():
        from tabular_suite.pfn.pretrain import PretrainConfig, pretrain, real_data_callback

        cfg = PretrainConfig(steps=steps, d_model=d_model, n_layers=n_layers, n_heads=n_heads, d_ffn=d_ffn,
                             max_rows=max_rows, tokens_per_step=tokens_per_step, lr=lr, eval_every=eval_every,
                             seed=seed, device=device, num_threads=num_threads, warmup_steps=warmup_steps,
                             curriculum=curriculum, discrete_fraction=discrete_fraction)
        if init_weights is not None and not init_weights.exists():
            raise ValueError(f"--init-weights {init_weights} does not exist.")
        tables = _eval_tables(eval_data, eval_bundled)
        callbacks = (real_data_callback(tables),) if tables else ()
        history = pretrain(cfg, checkpoint, resume=not fresh, time_limit=time_limit, init_weights=init_weights,
                           log=lambda msg: console.print(msg, markup=False, highlight=False), callbacks=callbacks)
        done = history["steps"][-1][0] if history["steps"] else 0
        console.print(f"checkpoint {checkpoint}: step {done:,} of {steps:,}")

    _run(run)


@pfn_app.command("export")
def pfn_export(
    checkpoints: list[Path] = typer.Argument(..., help="Checkpoint(s) written by `pfn pretrain`; several "
                                             "(of one model) are averaged parameter by parameter."),
    out: Path = typer.Option(..., "--out", "-o", help="Weights file to write (int8 matrices, loadable by TabPFNClassifier(weights=...))."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Write a pre-training checkpoint's model as a small weights file (int8 matrices, per-row scales).

    Example: tabular-suite pfn export runs/pfn.pt --out my_pfn.tsm
    (or runs/pfn4.pt runs/pfn5.pt: the mean of two cycles' weights)
    """

    def run():
        from tabular_suite.pfn.pretrain import export_weights

        _check_output(out, force)
        for checkpoint in checkpoints:
            if not checkpoint.exists():
                raise ValueError(f"Checkpoint {checkpoint} does not exist.")
        export_weights(checkpoints, out)
        console.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")

    _run(run)


def _leaderboard_table(result, data: Path) -> Table:
    board = result.leaderboard
    metric = result.metric
    title = (f"{data.name}: {metric.name} ({'higher' if metric.greater_is_better else 'lower'} is better), "
             f"{result.data_summary['rows']:,} rows, {board['folds'].max()}-fold CV, {result.wall_seconds:.0f} s")
    table = Table(title=title, title_justify="left")
    for col, justify in (("model", "left"), ("status", "left"), (f"{metric.name} ± std", "right"),
                         ("fit s/fold", "right"), ("predict rows/s", "right"), ("best epoch", "right"),
                         ("params", "right"), ("weight", "right")):
        table.add_column(col, justify=justify)

    def fmt(value, spec):
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)

    for _, row in board.iterrows():
        score = f"{fmt(row['mean'], '.4f')} ± {fmt(row['std'], '.4f')}" if np.isfinite(row["mean"]) else ""
        table.add_row(row["model"], row["status"], score, fmt(row["fit_seconds"], ".1f"), fmt(row["predict_rows_per_s"], ",.0f"),
                      fmt(row["best_epoch"], ".0f"), fmt(row["n_params"], ",.0f"), fmt(row.get("ensemble_weight"), ".2f"))
    return table


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
