"""A self-contained HTML report of a comparison: leaderboard, plots (inline PNG), data summary."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from ..core.files import atomic_path

__all__ = ["write_report"]


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(result) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    board = result.leaderboard[result.leaderboard["mean"].notna()]
    metric = result.metric.name
    plots = {}

    fig = Figure(figsize=(7, 0.45 * max(len(board), 2) + 1))
    ax = fig.subplots()
    order = board.iloc[::-1]
    ax.barh(order["model"], order["mean"], xerr=order["std"].fillna(0), color="#4c72b0", capsize=3)
    ax.set_xlabel(f"{metric} (mean ± std over folds; {order['direction'].iloc[0] if len(order) else ''})")
    if len(order):
        low, high = (order["mean"] - order["std"].fillna(0)).min(), (order["mean"] + order["std"].fillna(0)).max()
        pad = 0.1 * (high - low or abs(high) or 1)
        ax.set_xlim(low - pad, high + pad)
    plots["Score per model"] = _png(fig)

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    timed = board[board["fit_seconds"] > 0]
    ax.scatter(timed["fit_seconds"], timed["mean"], color="#dd8452")
    for _, row in timed.iterrows():
        ax.annotate(
            row["model"], (row["fit_seconds"], row["mean"]), fontsize=8, xytext=(4, 2), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_xlabel("fit seconds per fold (log scale)")
    ax.set_ylabel(metric)
    plots["Score against fit time"] = _png(fig)

    curves = {m: h for m, h in result.histories.items() if h and h[0] and "train_loss" in h[0][0]}
    if curves:
        fig = Figure(figsize=(7, 4.5))
        ax = fig.subplots()
        for model, folds in curves.items():
            history = folds[0]
            epochs = [e["epoch"] for e in history]
            key = "val_loss" if "val_loss" in history[0] else "train_loss"
            ax.plot(epochs, [e[key] for e in history], label=f"{model} ({key})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (first fold)")
        ax.legend(fontsize=8)
        plots["Learning curves"] = _png(fig)
    return plots


def _table(df) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for v in row:
            if isinstance(v, float):
                text = "" if np.isnan(v) else f"{v:.4g}"
            else:
                text = "" if v is None else str(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_report(result, path) -> Path:
    """Write ``result`` (a :class:`ComparisonResult`) as one HTML file with embedded images.

    Examples
    --------
    >>> import numpy as np, tempfile, tabular_suite
    >>> X = np.random.default_rng(0).normal(size=(60, 2)); y = X[:, 0] + 1
    >>> result = tabular_suite.compare(X, y, models=["linear"], cv=2, tracking=False)
    >>> write_report(result, tempfile.mkdtemp() + "/report.html").read_text()[:15]
    '<!doctype html>'
    """
    path = Path(path)
    columns = [
        "model",
        "status",
        "mean",
        "std",
        "folds",
        "fit_seconds",
        "predict_rows_per_s",
        "best_epoch",
        "n_params",
        "ensemble_weight",
        "device",
        "error",
    ]
    board = result.leaderboard[[c for c in columns if c in result.leaderboard.columns]]
    summary = result.data_summary
    summary_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in summary.items()
    )
    figures = "".join(
        f"<h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
        for title, data in _plots(result).items()
    )
    metric = result.metric
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tabular_suite comparison</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
thead th {{ background: #f0f0f0; }}
img {{ max-width: 100%; display: block; margin-bottom: 1.5em; }}
</style></head><body>
<h1>Model comparison</h1>
<p>Task: {html.escape(result.task)}. Metric: <b>{html.escape(metric.name)}</b>
({"higher" if metric.greater_is_better else "lower"} is better), mean ± std over cross-validation folds.
Wall time {result.wall_seconds:.1f} s. The ensemble's score is measured on the same out-of-fold
predictions its weights were chosen on (slightly optimistic).</p>
<h2>Leaderboard</h2>
{_table(board)}
<h2>Plots</h2>
{figures}
<h2>Data</h2>
<table>{summary_rows}</table>
</body></html>
"""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
