"""A self-contained HTML report of a comparison: one offline file (plots as inline PNG, no script,
no link out) with the leaderboard and per-fold scores, the best row's out-of-fold diagnostics
(confusion matrix, ROC and precision-recall curves and reliability diagram, or residuals),
feature importance, a profile of every column, each model's hyperparameters, the saved model's
members and weights, and the settings, versions and command that produced it."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.files import atomic_path

__all__ = ["write_report"]

_MAX_CURVE_CLASSES = 10  # one-vs-rest ROC / PR curves drawn for at most this many classes


# ------------------------------------------------------------------------------ formatting
def _number(value, kind: str = "") -> str:
    """Readable numbers: scores to 4 significant digits, seconds with a unit, counts with separators."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if kind == "seconds":
        return f"{value:.2f} s" if value < 10 else f"{value:,.0f} s"
    if kind == "count" or (isinstance(value, (int, np.integer))):
        return f"{value:,.0f}"
    if kind == "percent":
        return f"{100 * value:.1f}%"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


_KINDS = {
    "fit_seconds": "seconds", "predict_seconds": "seconds", "predict_rows_per_s": "count", "n_params": "count",
    "folds": "count", "bag_sets": "count", "best_epoch": "count", "missing": "percent", "distinct": "count",
    "rows": "count",
}  # fmt: skip


def _table(df: pd.DataFrame, *, index: bool = False, cls: str = "") -> str:
    if index:
        df = df.reset_index()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = "".join(f"<td>{html.escape(_number(v, _KINDS.get(str(c), '')))}</td>" for c, v in row.items())
        body.append(f"<tr>{cells}</tr>")
    table = f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f"<div class='scroll'>{table}</div>"


def _pairs(items: dict) -> str:
    def text(v) -> str:
        if isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, bool):
            return _number(v)
        return v if isinstance(v, str) else json.dumps(v, default=str)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(text(v))}</td></tr>" for k, v in items.items())
    return f"<table>{rows}</table>"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(title: str, fig) -> str:
    image = f"<img alt='{html.escape(title)}' src='data:image/png;base64,{_png(fig)}'>"
    return f"<figure>{image}<figcaption>{html.escape(title)}</figcaption></figure>"


def _figure(width=6.5, height=4.2):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


# ------------------------------------------------------------------------------ sections
def _model_plots(result) -> str:
    board = result.leaderboard[result.leaderboard["mean"].notna()]
    metric = result.metric.name
    out = []
    fig, ax = _figure(7, 0.45 * max(len(board), 2) + 1)
    order = board.iloc[::-1]
    ax.barh(order["model"], order["mean"], xerr=order["std"].fillna(0), color="#4c72b0", capsize=3)
    ax.set_xlabel(f"{metric} (mean ± std over folds; {order['direction'].iloc[0] if len(order) else ''})")
    if len(order):
        low, high = (order["mean"] - order["std"].fillna(0)).min(), (order["mean"] + order["std"].fillna(0)).max()
        pad = 0.1 * (high - low or abs(high) or 1)
        ax.set_xlim(low - pad, high + pad)
    out.append(_img("Score per model", fig))

    timed = board[board["fit_seconds"] > 0]
    fig, ax = _figure(7, 4.5)
    ax.scatter(timed["fit_seconds"], timed["mean"], color="#dd8452")
    for _, row in timed.iterrows():
        ax.annotate(
            row["model"], (row["fit_seconds"], row["mean"]), fontsize=8, xytext=(4, 2), textcoords="offset points"
        )
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())  # (labelled minor ticks overlap)
    ax.set_xlabel("fit seconds per fold (log scale)")
    ax.set_ylabel(metric)
    out.append(_img("Score against fit time", fig))

    curves = {m: h for m, h in result.histories.items() if h and h[0] and "train_loss" in h[0][0]}
    if curves:
        fig, ax = _figure(7, 4.5)
        for model, folds in curves.items():
            history = folds[0]
            key = "val_loss" if "val_loss" in history[0] else "train_loss"
            ax.plot([e["epoch"] for e in history], [e[key] for e in history], label=f"{model} ({key})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (first fold)")
        ax.legend(fontsize=8)
        out.append(_img("Learning curves", fig))
    return "".join(out)


def _how_scored(settings: dict) -> str:
    """How the leaderboard's scores were measured: over cross-validation folds or a hold-out."""
    if settings.get("holdout"):
        return (
            f"Each model was fitted once and scored on a hold-out of {settings['holdout']:.1%} of the rows "
            "(what the ensemble is selected on): out_of_fold is the metric on those rows."
        )
    return (
        "Rows are ranked by out_of_fold, the metric on every row's out-of-fold prediction (what the ensemble is "
        f"selected on); mean ± std over the {settings.get('cv', '')} cross-validation folds next to it."
    )


def _fold_table(result) -> str:
    scores = {m: s for m, s in result.fold_scores.items() if s}
    if not scores:
        return "<p>No model scored a fold.</p>"
    n = max(len(s) for s in scores.values())
    frame = pd.DataFrame(
        {
            "model": list(scores),
            **{f"fold {k}": [s[k] if k < len(s) else np.nan for s in scores.values()] for k in range(n)},
        }
    )
    return _table(frame)


def _classification_diagnostics(result, best: str) -> str:
    from sklearn.metrics import auc, confusion_matrix, precision_recall_curve, roc_curve

    proba, y = result.oof_predictions[best], result.oof_target
    labels = [str(c) for c in result.classes]
    threshold = (result.postprocessing.get("threshold") or {}) if proba.shape[1] == 2 else {}
    cut = threshold.get("threshold") if threshold.get("applied", not threshold.get("tuned", True)) else None
    # Decided as the saved model decides: calibrated (when it is), then cut.
    decided = proba if result._calibrator is None else result._calibrator.transform(proba)
    predicted = (decided[:, 1] >= cut).astype(int) if cut is not None else decided.argmax(1)
    matrix = confusion_matrix(y, predicted, labels=np.arange(len(labels)))
    frame = pd.DataFrame(matrix, index=[f"true {c}" for c in labels], columns=[f"predicted {c}" for c in labels])
    rule = (
        f"the second class from probability {cut:.3f} ({'the tuned' if threshold.get('tuned') else 'the given'} "
        "threshold; the scores above are the most probable class's)"
        if cut is not None
        else "the most probable class"
    )
    intro = f"<p>Out-of-fold rows of <b>{html.escape(best)}</b>, each predicted as {rule}.</p>"
    parts = [f"<h3>Confusion matrix</h3>{intro}",
             _table(frame.rename_axis("").astype(int), index=True, cls="matrix")]  # fmt: skip

    shown = [1] if proba.shape[1] == 2 else list(range(min(proba.shape[1], _MAX_CURVE_CLASSES)))
    fig_roc, ax_roc = _figure()
    fig_pr, ax_pr = _figure()
    for k in shown:
        positive = (y == k).astype(int)
        if positive.min() == positive.max():
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, k])
        precision, recall, _ = precision_recall_curve(positive, proba[:, k])
        name = labels[k] if proba.shape[1] > 2 else f"{labels[k]} vs {labels[0]}"
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        ax_pr.plot(recall, precision, label=f"{name} (base rate {positive.mean():.3f})")
    ax_roc.plot([0, 1], [0, 1], ":", color="grey")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    for ax in (ax_roc, ax_pr):
        ax.legend(fontsize=8)
    more = f" (first {_MAX_CURVE_CLASSES} classes, one vs rest)" if proba.shape[1] > _MAX_CURVE_CLASSES else ""
    parts += [_img(f"ROC curve{more}", fig_roc), _img(f"Precision-recall curve{more}", fig_pr)]

    cal = result.postprocessing.get("calibration", {})
    if cal:
        fig, ax = _figure(5.5, 5)
        ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
        for key, name in (("before", "as predicted"), ("after", f"{cal.get('method')} (cross-fitted)")):
            if key in cal:
                points = [(c, a) for c, a in zip(cal[key]["confidence"], cal[key]["accuracy"]) if c is not None]
                if points:
                    ax.plot(*zip(*points), "o-", label=f"{name}: ECE {cal[key]['ece']:.3f}")
        ax.set_xlabel("confidence of the predicted class")
        ax.set_ylabel("share of rows where it was right")
        ax.legend(fontsize=8)
        parts.append(_img("Reliability diagram", fig))
        if "method" in cal:
            verdict = "applied to the saved model" if cal["applied"] else "not applied (it did not lower the log loss)"
            parts.append(
                f"<p>Calibration: {html.escape(cal['method'])}, {verdict}. Log loss {cal['log_loss_before']:.4f} "
                f"as predicted, {cal['log_loss_after']:.4f} calibrated (each fold by a calibrator fitted on the "
                "others).</p>"
            )
    if threshold.get("tuned"):
        verdict = f"{threshold['threshold']:.3f}, applied" if threshold["applied"] else "0.5 kept"
        parts.append(
            f"<p>Decision threshold for {html.escape(result.metric.name)}: {verdict} (cross-fitted "
            f"{threshold['cross_fitted_score_at_0.5']:.4f} at 0.5, {threshold['cross_fitted_score']:.4f} tuned).</p>"
        )
    return "".join(parts)


def _regression_diagnostics(result, best: str) -> str:
    pred, y = result.oof_predictions[best], result.oof_target
    residual = y - pred
    fig, ax = _figure()
    ax.scatter(pred, y, s=6, alpha=0.4)
    low, high = float(min(pred.min(), y.min())), float(max(pred.max(), y.max()))
    ax.plot([low, high], [low, high], ":", color="grey")
    ax.set_xlabel("predicted (out of fold)")
    ax.set_ylabel("actual")
    parts = [_img("Predicted against actual", fig)]
    fig, ax = _figure()
    ax.scatter(pred, residual, s=6, alpha=0.4)
    ax.axhline(0, color="grey", linestyle=":")
    ax.set_xlabel("predicted (out of fold)")
    ax.set_ylabel("residual (actual - predicted)")
    parts.append(_img("Residuals", fig))
    fig, ax = _figure(6.5, 3.5)
    ax.hist(residual, bins=50, color="#4c72b0")
    ax.set_xlabel("residual")
    parts.append(_img("Distribution of the residuals", fig))
    intervals = result.postprocessing.get("intervals")
    if intervals:
        parts.append(
            f"<p>90% prediction interval (<code>predict_interval</code>): width {intervals['width']:.4g}; "
            f"cross-fitted coverage {intervals['cross_fitted_coverage']:.1%}.</p>"
        )
    return "".join(parts)


def _importance(result, importance) -> str:
    if importance is None:
        try:
            importance = result.feature_importance(n_repeats=3, max_rows=1000)
        except ValueError as exc:
            return f"<p>Not available: {html.escape(str(exc))}</p>"
    shown = importance.head(30)
    fig, ax = _figure(7, 0.3 * max(len(shown), 3) + 1)
    order = shown.iloc[::-1]
    ax.barh([str(i) for i in order.index], order["importance"], xerr=order["stddev"], color="#55a868", capsize=2)
    worse = "drop in" if result.metric.greater_is_better else "rise of"
    ax.set_xlabel(f"{worse} {result.metric.name} when the column is shuffled")
    model = importance.attrs.get("model", "")
    score = importance.attrs.get("score", np.nan)
    value = result.metric.signed(score)
    note = (
        f"<p>Permutation importance of <b>{html.escape(str(model))}</b> on out-of-fold rows "
        f"({int(importance['n_repeats'].iloc[0])} shuffles per column; {html.escape(result.metric.name)} "
        f"{value:.4g} unshuffled). Higher: the model relies more on the column.</p>"
    )
    return note + _img("Feature importance", fig) + _table(shown, index=True)


def _saved_model(result) -> str:
    model = result.best_model_
    if model is None:
        return "<p>No model was kept (see the leaderboard and refit status).</p>"
    rows = []
    for name, weight in model.weights.items():
        member = model.members[name]
        if hasattr(member, "base"):  # a level-2 model: its own fold models over the level-1 models' predictions
            rows.append({"member": name, "weight": weight, "form": f"stacked over {', '.join(member.base)}",
                         "model": type(member.model.models[0].steps[-1][1]).__name__})  # fmt: skip
            continue
        folds = getattr(member, "models", None)
        inner = type(folds[0]).__name__ if folds else type(member).__name__
        steps = getattr(folds[0] if folds else member, "steps", None)
        if steps:
            inner = f"{type(steps[-1][1]).__name__} (pipeline)"
        if result.refit_status or not folds:
            form = "refitted on all rows"
        else:  # (the in-context model and a forest scored out of bag: one fit on all rows)
            form = f"{len(folds)} fold models" if len(folds) > 1 else "one fit on all rows"
        rows.append({"member": name, "weight": weight, "form": form, "model": inner})
    extra = {}
    if model.calibrator is not None:
        extra["calibration"] = repr(model.calibrator)
    if model.threshold is not None:
        extra["decision threshold"] = f"{model.threshold:.4f}"
    if model.residual_quantiles is not None:
        extra["intervals"] = "from the out-of-fold residuals"
    return _table(pd.DataFrame(rows)) + (_pairs(extra) if extra else "")


def _tuning(result) -> str:
    """With ``tune``: per tuned model, its trials (best first)."""
    parts = []
    for name, trials in getattr(result, "tuning", {}).items():
        if len(trials):
            shown = trials.sort_values("score", ascending=False, na_position="last")
            where = "a hold-out of the first fold's training rows"
            title = f"Tuning: {html.escape(name)} ({len(trials)} trials on {where})"
            parts.append(f"<h3>{title}</h3>{_table(shown)}")
    return "".join(parts)


def _hyperparameters(result) -> str:
    parts = []
    for name, params in result.hyperparameters.items():
        shown = {k: v for k, v in params.items() if v is not None}
        parts.append(f"<details><summary>{html.escape(name)} ({len(shown)} set)</summary>{_pairs(shown)}</details>")
    return "".join(parts) or "<p>None recorded.</p>"


def write_report(result, path, *, importance: pd.DataFrame | None = None) -> Path:
    """Write ``result`` (a :class:`ComparisonResult`) as one offline HTML file.

    ``importance``: a :meth:`ComparisonResult.feature_importance` table to show; None computes
    the best row's on out-of-fold rows (when the fold models were kept).

    Examples
    --------
    >>> import numpy as np, tempfile, tabular_suite
    >>> X = np.random.default_rng(0).normal(size=(60, 2)); y = X[:, 0] + 1
    >>> result = tabular_suite.compare(X, y, models=["linear"], cv=2, tracking=False)
    >>> write_report(result, tempfile.mkdtemp() + "/report.html").read_text()[:15]
    '<!doctype html>'
    """
    path = Path(path)
    columns = ["model", "status", "mean", "std", "folds", "bag_sets", "fit_seconds", "predict_seconds",
               "predict_rows_per_s", "best_epoch", "n_params", "ensemble_weight", "device", "error"]  # fmt: skip
    board = result.leaderboard[[c for c in columns if c in result.leaderboard.columns]]
    board.insert(2, "out_of_fold", result.metric.signed(result.leaderboard["score"]))  # what the rows are ranked by
    scored = result.leaderboard[result.leaderboard["score"].notna()]["model"].tolist()
    best = scored[0] if scored else None
    diagnostics = "<p>No model has complete out-of-fold predictions.</p>"
    if best is not None and best in result.oof_predictions and result.oof_target is not None:
        diagnostics = (_classification_diagnostics if result.task == "classification" else _regression_diagnostics)(
            result, best
        )
    profile = result.column_profile if result.column_profile is not None else pd.DataFrame()
    settings = {k: v for k, v in result.settings.items() if k not in ("versions", "command")}
    command = result.settings.get("command", "tabular_suite.compare(...) from Python")
    metric = result.metric
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tabular_suite comparison</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.88em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
td {{ font-variant-numeric: tabular-nums; }}
thead th {{ background: #f0f0f0; }}
table.matrix td {{ text-align: right; }}
div.scroll {{ overflow-x: auto; }}
figure {{ margin: 0 0 1.5em; }} img {{ max-width: 100%; display: block; }}
figcaption {{ font-size: 0.85em; color: #555; }}
details {{ margin: 0.3em 0; }} summary {{ cursor: pointer; }}
</style></head><body>
<h1>Model comparison</h1>
<p>Task: {html.escape(result.task)}. Metric: <b>{html.escape(metric.name)}</b>
({"higher" if metric.greater_is_better else "lower"} is better). {_how_scored(result.settings)}
Best: <b>{html.escape(str(best))}</b>.
Wall time {_number(result.wall_seconds, "seconds")}.
The ensemble's score is measured on the out-of-fold predictions its weights were chosen on (slightly optimistic).</p>
<section id="leaderboard"><h2>Leaderboard</h2>{_table(board)}</section>
<section id="folds"><h2>Scores per fold</h2>{_fold_table(result)}</section>
<section id="models"><h2>Models</h2>{_model_plots(result)}</section>
<section id="diagnostics"><h2>Diagnostics of {html.escape(str(best))} (out of fold)</h2>{diagnostics}</section>
<section id="importance"><h2>Feature importance</h2>{_importance(result, importance)}</section>
<section id="data"><h2>Data</h2>{_pairs(result.data_summary)}<h3>Columns</h3>{_table(profile)}</section>
<section id="saved-model"><h2>Saved model</h2>{_saved_model(result)}</section>
<section id="hyperparameters"><h2>Hyperparameters</h2>{_tuning(result)}{_hyperparameters(result)}</section>
<section id="settings"><h2>Settings</h2>{_pairs(settings)}
<h3>Versions</h3>{_pairs(result.settings.get("versions", {}))}
<h3>Command</h3><pre>{html.escape(command)}</pre></section>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
