"""The comparison report: what it holds, and that a real browser renders it offline (headless
Chromium: the DOM after loading, and a screenshot in which the plots' colours show)."""

import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pytest

import tabular_suite

BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SECTIONS = ["leaderboard", "folds", "models", "diagnostics", "importance", "data", "saved-model",
            "hyperparameters", "settings"]  # fmt: skip


def _chromium() -> str:
    name = os.environ.get("TABULAR_SUITE_CHROMIUM", "chromium")
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"The report test needs Chromium ({name!r} not found): `make test` installs it, or set "
                    "TABULAR_SUITE_CHROMIUM to a Chrome/Chromium binary.")  # fmt: skip
    return path


def _browse(html_path, *extra) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [_chromium(), *BROWSER_FLAGS, f"--user-data-dir={profile}", *extra, html_path.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame({"a": rng.normal(size=n), "noise": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n),
                      "id": [f"user{i}" for i in range(n)]})  # fmt: skip
    y = np.where(X["a"] + 1.5 * (X["c"] == "x") + rng.normal(0, 0.5, n) > 0.8, "yes", "no")
    kw = dict(cv=3, num_threads=1, tracking=False)
    classification = tabular_suite.compare(X, y, models=["linear", "random_forest", "mlp"], **kw)
    regression = tabular_suite.compare(X.drop(columns="id"), 3 * X["a"] + rng.normal(0, 1, n), models=["linear"], **kw)
    return classification, regression


def test_report_holds_what_people_look_for(results, tmp_path):
    classification, regression = results
    page = classification.report(tmp_path / "c.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    for text in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Reliability diagram",
                 "Feature importance", "nearly every value distinct: an identifier?", "Scores per fold",
                 "fold 2", "random_forest", "scikit-learn", "n_estimators"):  # fmt: skip
        assert text in page, text
    assert "true yes" in page and "predicted no" in page
    assert re.search(r"<td>[0-9]+\.[0-9]{2} s</td>", page)  # seconds with a unit
    assert "0.12345678" not in page and not re.search(r"\d\.\d{7,}", page)  # no long float dumps
    assert "http://" not in page and "https://" not in page and "<script" not in page
    page = regression.report(tmp_path / "r.html").read_text()
    assert "Residuals" in page and "Predicted against actual" in page and "prediction interval" in page
    assert "Confusion matrix" not in page


def test_report_renders_offline_in_a_real_browser(results, tmp_path):
    classification, _ = results
    path = classification.report(tmp_path / "report.html")
    dom = _browse(path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert all(f'id="{s}"' in dom.stdout for s in SECTIONS)
    n_images = len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', dom.stdout))
    assert n_images == 7  # scores, score vs time, learning curves, ROC, PR, reliability, importance
    shot = tmp_path / "shot.png"
    run = _browse(path, f"--screenshot={shot}", "--window-size=1200,6000", "--hide-scrollbars")
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    from matplotlib.image import imread

    pixels = (imread(shot)[..., :3] * 255).round()
    assert pixels.shape[:2] == (6000, 1200)
    # The plots' colours (the score bars' blue, the importance bars' green) are on screen: the inline
    # PNGs decoded. Text and tables are black, grey and white only.
    for colour in ((76, 114, 176), (85, 168, 104)):
        assert (np.abs(pixels - colour).max(axis=-1) <= 8).sum() > 2000, colour
