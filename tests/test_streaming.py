"""Out-of-core training: partial_fit, Parquet streaming, preprocessing fitted on a stream."""

import numpy as np
import pandas as pd
import pytest
import torch

import tabular_suite
from tabular_suite.data.io import ParquetSource
from tabular_suite.data.preprocess import UNKNOWN_ID, TablePreprocessor
from tabular_suite.datasets import make_ctr
from tabular_suite.tabular.base import _ParquetChunks
from tabular_suite.training.engine import ChunkedData, Objective, TrainConfig, fit_module


def table(n=2_000, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.choice(list("pqrs"), size=n), "c": rng.normal(size=n)})
    df.loc[rng.random(n) < 0.05, "c"] = np.nan
    df["y"] = (df["a"] + (df["b"] == "p") > 0.2).astype(int)
    return df


def test_engine_streams_chunks_and_continues_a_state():
    class Chunks(ChunkedData):
        n_rows = 60

        def __init__(self):
            self.epochs = []

        def chunks(self, epoch):
            self.epochs.append(epoch)
            for _ in range(3):
                x = torch.randn(20, 2)
                yield [x, x.sum(1, keepdim=True)]

    obj = Objective(torch.nn.functional.mse_loss, lambda o, t: 0.0, "none")
    data = Chunks()
    state = fit_module(torch.nn.Linear(2, 1), data, obj, TrainConfig(max_epochs=2, batch_size=8, device="cpu"))
    assert data.epochs == [1, 2] and "rows_per_s" in state.history[0]
    steps = state.optimizer.state[next(iter(state.module.parameters()))]["step"]
    # Batches of 8 rows across the 20-row chunks (a chunk's leftover rows open the next one's
    # batches: one batch size, not a new odd one per chunk): 7 of 8 rows and the epoch's last 4.
    assert int(steps) == 2 * 8
    state = fit_module(state.module, data, obj, TrainConfig(max_epochs=1, batch_size=8, device="cpu"), state=state)
    assert data.epochs == [1, 2, 3] and len(state.history) == 3
    assert int(state.optimizer.state[next(iter(state.module.parameters()))]["step"]) == 3 * 8


def test_partial_fit_learns_over_chunks_and_keeps_the_optimizer():
    df = table()
    X, y = df.drop(columns="y"), df["y"]
    clf = tabular_suite.MLPClassifier(num_threads=1, random_state=0, batch_size=64)
    for _ in range(3):
        for rows in np.array_split(np.arange(1_500), 5):
            clf.partial_fit(X.iloc[rows], y.iloc[rows], classes=[0, 1])
    assert len(clf.history_) == 15 and clf.history_[-1]["epoch"] == 15
    assert (clf.predict(X.iloc[1_500:]) == y.iloc[1_500:]).mean() > 0.85
    again = tabular_suite.MLPClassifier(num_threads=1, random_state=0, batch_size=64)
    again.partial_fit(X.iloc[:300], y.iloc[:300], classes=[0, 1])
    first = tabular_suite.MLPClassifier(num_threads=1, random_state=0, batch_size=64)
    first.partial_fit(X.iloc[:300], y.iloc[:300], classes=[0, 1])
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))  # seeded


def test_partial_fit_errors_and_continuation_after_fit():
    df = table(400)
    X, y = df.drop(columns="y"), df["y"]
    clf = tabular_suite.MLPClassifier(num_threads=1, max_epochs=2, random_state=0)
    with pytest.raises(ValueError, match="only one class"):
        clf.partial_fit(X[y == 0], y[y == 0])
    clf = tabular_suite.MLPClassifier(num_threads=1, max_epochs=2, random_state=0).partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not seen at fit"):
        clf.partial_fit(X.iloc[:5], [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="same columns"):
        clf.partial_fit(X[["a", "b"]], y)
    fitted = tabular_suite.MLPRegressor(num_threads=1, max_epochs=2, random_state=0).fit(X, df["a"])
    module = fitted.module_
    fitted.partial_fit(X, df["a"])
    assert fitted.module_ is module and len(fitted.history_) == 1


def test_partial_fit_after_fit_continues_the_random_stream(monkeypatch):
    """Each pass draws its batch order from seed + (epochs trained so far): a partial_fit after a
    fit of 3 epochs must not replay the fit's first shuffle, and two passes never share a seed."""
    from tabular_suite.training import engine

    seeds = []

    class Recording(torch.Generator):
        def manual_seed(self, seed):
            seeds.append(seed)
            return super().manual_seed(seed)

    monkeypatch.setattr(engine.torch, "Generator", Recording)
    df = table(400)
    X, y = df.drop(columns="y"), df["y"]
    clf = tabular_suite.MLPClassifier(num_threads=1, max_epochs=3, patience=None, random_state=0).fit(X, y)
    for _ in range(3):
        clf.partial_fit(X, y)
    base = clf._seed
    assert seeds == [base, base + 3, base + 4, base + 5]
    # Dropout and shuffling both continue: the same calls give the same model, and a pass on the
    # same data after fit does not reproduce the fit's first epoch.
    again = tabular_suite.MLPClassifier(num_threads=1, max_epochs=3, patience=None, random_state=0).fit(X, y)
    for _ in range(3):
        again.partial_fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_preprocessor_fit_batches_matches_fit_on_the_whole_table():
    df = table(3_000).drop(columns="y")
    df.loc[2_990:, "b"] = "late"  # a category only in the last batch
    whole = TablePreprocessor().fit(df)
    stream = TablePreprocessor().fit_batches((df.iloc[i : i + 500] for i in range(0, 3_000, 500)), sample_rows=3_000)
    assert stream.categories == whole.categories and stream.num_has_missing == whole.num_has_missing
    a, b = whole.transform(df), stream.transform(df)
    np.testing.assert_array_equal(a.x_cat, b.x_cat)
    assert np.quantile(np.abs(a.x_num - b.x_num), 0.99) < 0.05  # same rows, other tie noise (tails differ)
    with pytest.raises(ValueError, match="empty"):
        TablePreprocessor().fit_batches(iter([]))


def test_a_later_batch_with_dates_the_first_batch_format_cannot_read_is_an_error():
    """Kinds come from the first batch: its dates read month first (every day 12 or less); a later
    batch's 13/02/2020 would have become a missing date without a word."""
    first = pd.DataFrame({"d": ["01/02/2020", "03/04/2020"] * 5, "x": np.arange(10.0)})
    later = pd.DataFrame({"d": ["13/02/2020", "25/12/2020"] * 5, "x": np.arange(10.0)})
    with (
        pytest.warns(UserWarning, match="alike"),
        pytest.raises(ValueError, match=r"Rows 10 on .*'d' \(datetime:%m/%d/%Y\)"),
    ):
        TablePreprocessor().fit_batches(iter([first, later]))


def test_parquet_source_checks_and_order(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        pd.DataFrame({"a": np.arange(10) + 10 * i}).to_parquet(folder / f"p{i}.parquet", row_group_size=4)
    src = ParquetSource(folder, batch_rows=3)
    assert src.n_rows == 30 and src.n_units == 9 and src.columns == ["a"]
    rows = {
        int(v): off
        for off, b in src.batches(np.random.default_rng(0).permutation(9))
        for v, off in zip(b["a"], off + np.arange(len(b)))
    }
    assert all(v == off for v, off in rows.items()) and len(rows) == 30  # offsets are global row numbers
    pd.DataFrame({"z": [1]}).to_parquet(folder / "p9.parquet")
    with pytest.raises(ValueError, match="has columns"):
        ParquetSource(folder)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet"):
        ParquetSource(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="no .parquet files"):
        ParquetSource(_empty(tmp_path))
    with pytest.raises(ValueError, match="not found"):
        ParquetSource(tmp_path / "missing.parquet")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_fit_parquet_classifier_uses_all_categories_and_holds_out_validation(tmp_path):
    data = make_ctr(20_000, n_users=3_000, n_items=1_000, seed=0)
    df = data.X.copy()
    df["click"] = data.y
    folder = tmp_path / "ctr"
    folder.mkdir()
    for i in range(4):
        df.iloc[i * 5_000 : (i + 1) * 5_000].to_parquet(folder / f"part{i}.parquet", row_group_size=2_500)
    clf = tabular_suite.AutoIntClassifier(
        max_epochs=2, num_threads=1, random_state=0, embedding_dim=8, attention_layers=1
    )
    clf.fit_parquet(folder, "click", batch_rows=2_000, validation_rows=1_500)
    users_everywhere = set(df["user"].astype(str))
    assert set(clf.preprocessor_.categories[0]) == users_everywhere
    assert (clf.preprocessor_.transform(df.drop(columns="click")).x_cat != UNKNOWN_ID).all()
    assert len(clf.history_) == 2 and "val_loss" in clf.history_[0]
    for epoch in clf.history_:  # each epoch trains on every row but the 1,500 held out
        assert epoch["rows_per_s"] * epoch["seconds"] == pytest.approx(20_000 - 1_500)
    assert clf.classes_.tolist() == [0, 1]


def test_parquet_chunks_leave_out_exactly_the_validation_rows(tmp_path):
    pd.DataFrame({"a": np.arange(100.0), "y": np.arange(100) % 2}).to_parquet(tmp_path / "d.parquet", row_group_size=30)
    src = ParquetSource(tmp_path / "d.parquet", batch_rows=16)
    exclude = np.array([3, 40, 41, 99])
    chunks = _ParquetChunks(src, lambda b: b["a"].to_numpy(), exclude, seed=0)
    seen = np.sort(np.concatenate(list(chunks.chunks(1))))
    assert chunks.n_rows == 96 and seen.tolist() == sorted(set(range(100)) - {3, 40, 41, 99})


def test_fit_parquet_regressor_target_scaling_and_missing_target_column(tmp_path):
    df = table(1_000)
    df["t"] = 3 * df["a"] + 10
    df.drop(columns="y").to_parquet(tmp_path / "r.parquet", row_group_size=250)
    reg = tabular_suite.MLPRegressor(max_epochs=3, num_threads=1, random_state=0)
    reg.fit_parquet(tmp_path / "r.parquet", "t", batch_rows=128, validation_rows=100)
    assert np.isclose(reg._target_scaler.mean_, df["t"].mean()) and np.isclose(
        reg._target_scaler.scale_, df["t"].std(ddof=0)
    )
    assert np.sqrt(np.mean((reg.predict(df.drop(columns=["y", "t"])) - df["t"]) ** 2)) < 1.5
    with pytest.raises(ValueError, match="Target column 'nope'"):
        reg.fit_parquet(tmp_path / "r.parquet", "nope")
    # A fit that fails half-way (a target value that is not finite, found in the first pass)
    # leaves the fitted estimator as it was.
    before = reg.predict(df.drop(columns=["y", "t"]))
    df.loc[900, "t"] = np.nan
    df.drop(columns="y").to_parquet(tmp_path / "bad.parquet", row_group_size=250)
    with pytest.raises(ValueError, match="NaN or infinite"):
        reg.fit_parquet(tmp_path / "bad.parquet", "t", batch_rows=128)
    np.testing.assert_array_equal(reg.predict(df.drop(columns=["y", "t"])), before)
