"""Bundled datasets and the synthetic CTR generator with its known Bayes-optimal AUC."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabular_suite import datasets
from tabular_suite.datasets import expected_auc, iter_ctr, make_ctr


def test_bundled_datasets_load_with_their_targets():
    for name in datasets.list_datasets():
        info = datasets.dataset_info(name)
        data = datasets.load_dataset(name)
        assert len(data.frame) == info["rows"] and info["target"] in data.frame
        assert info["license"] and info["source"]


def test_ctr_is_reproducible_and_chunks_share_one_model():
    a, b = make_ctr(3_000, n_users=800, n_items=400, seed=3), make_ctr(3_000, n_users=800, n_items=400, seed=3)
    pd.testing.assert_frame_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    other = make_ctr(3_000, n_users=800, n_items=400, seed=4)
    assert not np.array_equal(a.probability, other.probability)
    chunks = list(iter_ctr(7_000, chunk_rows=3_000, n_users=800, n_items=400, seed=3))
    assert [len(c.y) for c in chunks] == [3_000, 3_000, 1_000]
    pd.testing.assert_frame_equal(chunks[0].X, a.X)  # the same ground truth and first stream
    # the same (user, item, ...) row has the same true probability in every chunk
    rows = pd.concat([c.X.assign(p=c.probability) for c in chunks]).astype({"p": float})
    spread = rows.groupby(list(a.X.columns), observed=True)["p"].agg(["min", "max"])
    assert np.allclose(spread["min"], spread["max"])


def test_ctr_fields_are_categorical_with_power_law_frequencies():
    data = make_ctr(20_000, seed=0)
    assert all(isinstance(t, pd.CategoricalDtype) for t in data.X.dtypes)
    counts = data.X["item"].value_counts()
    assert counts.iloc[0] > 50 * counts.median()  # a heavy head and a long tail
    assert data.X["user"].nunique() > 2_000
    assert 0.05 < data.y.mean() < 0.2


def test_expected_auc_matches_label_resampling():
    rng = np.random.default_rng(0)
    p = make_ctr(5_000, n_users=1_000, n_items=500, seed=1).probability
    sampled = [roc_auc_score(rng.random(p.size) < p, p) for _ in range(40)]
    assert np.mean(sampled) == pytest.approx(expected_auc(p), abs=0.005)
    # ordered pairs of distinct rows: (0,1),(1,0) tie 0.09 each; (2,0),(2,1) win 0.81 each; (0,2),(1,2) 0.01 each
    assert expected_auc(np.array([0.1, 0.1, 0.9])) == pytest.approx((0.5 * 0.18 + 1.62) / (0.18 + 1.62 + 0.02))


def test_interactions_matter_beyond_first_order():
    """A first-order model (one-hot logistic regression) stays clearly below the Bayes AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    train = make_ctr(40_000, n_users=2_000, n_items=1_000, seed=2)
    test = list(iter_ctr(80_000, chunk_rows=40_000, n_users=2_000, n_items=1_000, seed=2))[1]  # unseen rows
    enc = OneHotEncoder(handle_unknown="ignore").fit(train.X)
    model = LogisticRegression(max_iter=500, C=0.5).fit(enc.transform(train.X), train.y)
    auc = roc_auc_score(test.y, model.predict_proba(enc.transform(test.X))[:, 1])
    assert auc < test.bayes_auc - 0.02
    assert roc_auc_score(test.y, test.probability) == pytest.approx(test.bayes_auc, abs=0.02)


# --- MovieLens download: real HTTP against a server on the loopback interface ----------------

import hashlib  # noqa: E402
import http.server  # noqa: E402
import io  # noqa: E402
import threading  # noqa: E402
import zipfile  # noqa: E402

from tabular_suite.datasets import fetch_movielens  # noqa: E402


def _synthetic_ml1m() -> tuple[bytes, pd.DataFrame]:
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "user": rng.integers(1, 50, 300),
            "item": rng.integers(1, 400, 300),
            "rating": rng.integers(1, 6, 300),
            "timestamp": rng.integers(9e8, 1e9, 300),
        }
    )
    text = "\n".join("::".join(map(str, r)) for r in rows.itertuples(index=False)) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("ml-1m/ratings.dat", text)
        z.writestr("ml-1m/README", "synthetic file in the MovieLens 1M format")
    return buffer.getvalue(), rows


@pytest.fixture
def movielens_server():
    payload, rows = _synthetic_ml1m()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            if self.path.endswith("/ml-1m.zip"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            else:
                self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}/movielens/",
            hashlib.md5(payload).hexdigest(),
            rows,
            requests,
        )
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_movielens_downloads_verifies_and_caches(movielens_server, tmp_path):
    url, md5, rows, requests = movielens_server
    ratings = fetch_movielens("1m", data_home_path=tmp_path, base_url=url, checksum=md5)
    pd.testing.assert_frame_equal(ratings, rows, check_dtype=False)
    assert requests == ["/movielens/ml-1m.zip"]
    cached = tmp_path / "movielens" / "ml-1m.zip"
    assert cached.exists() and not [p for p in cached.parent.iterdir() if p.name.startswith(".")]
    again = fetch_movielens("1m", data_home_path=tmp_path, base_url=url, checksum=md5)
    pd.testing.assert_frame_equal(again, ratings)
    assert len(requests) == 1  # served from the cache
    cached.write_bytes(cached.read_bytes()[:100])  # a damaged cache is downloaded anew
    pd.testing.assert_frame_equal(fetch_movielens("1m", data_home_path=tmp_path, base_url=url, checksum=md5), ratings)
    assert len(requests) == 2


def test_fetch_movielens_rejects_bad_checksums_and_missing_files(movielens_server, tmp_path, monkeypatch):
    url, md5, _, _ = movielens_server
    with pytest.raises(ValueError, match="corrupted: MD5 .* expected 0+"):
        fetch_movielens("1m", data_home_path=tmp_path, base_url=url, checksum="0" * 32)
    assert not (tmp_path / "movielens").exists()  # nothing half-written is left behind, nor the folder made for it
    with pytest.raises(ValueError, match="Could not download .*ml-100k.zip: Not Found"):
        fetch_movielens("100k", data_home_path=tmp_path, base_url=url)
    with pytest.raises(ValueError, match="Unknown MovieLens variant"):
        fetch_movielens("2m", data_home_path=tmp_path)
    monkeypatch.setenv("TABULAR_SUITE_DATA", str(tmp_path / "env"))
    fetch_movielens("1m", base_url=url, checksum=md5)
    assert (tmp_path / "env" / "movielens" / "ml-1m.zip").exists()


# --- BARS CTR splits (Frappe_x1 / Criteo_x1 layout) over loopback HTTP ------------------------
from tabular_suite.datasets import fetch_bars  # noqa: E402


@pytest.fixture
def bars_server():
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 300), ("valid", 50), ("test", 60)):
        df = pd.DataFrame(
            {
                "label": rng.integers(0, 2, n),
                "user": rng.integers(0, 50, n),
                "item": rng.integers(0, 80, n),
                "daytime": rng.choice(["morning", "night"], n),
            }
        )
        files[f"/frappe/{split}.csv"] = df.to_csv(index=False).encode()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            requests.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/frappe/", files, requests
    finally:
        server.shutdown()


def test_fetch_bars_downloads_converts_and_caches(bars_server, tmp_path):
    url, files, requests = bars_server
    paths = fetch_bars("frappe_x1", data_home_path=tmp_path, base_url=url)
    assert set(paths) == {"train", "valid", "test"}
    for split, path in paths.items():
        expected = pd.read_csv(io.BytesIO(files[f"/frappe/{split}.csv"]))
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected, check_dtype=False)
    assert len(requests) == 3
    fetch_bars("frappe_x1", data_home_path=tmp_path, base_url=url)
    assert len(requests) == 3  # cached
    csv = tmp_path / "bars" / "frappe_x1" / "valid.csv"
    csv.write_text("label,user\n1,1\n")  # damaged cache: recorded MD5 no longer matches
    fetch_bars("frappe_x1", data_home_path=tmp_path, base_url=url)
    assert len(requests) == 4 and len(pd.read_parquet(paths["valid"])) == 50


def test_fetch_bars_bad_checksum_missing_split_and_unknown_name(bars_server, tmp_path):
    url, _, _ = bars_server
    with pytest.raises(ValueError, match="corrupted"):
        fetch_bars("frappe_x1", data_home_path=tmp_path, base_url=url, checksums={"train": "0" * 32})
    assert not (tmp_path / "bars" / "frappe_x1" / "train.csv").exists()
    with pytest.raises(ValueError, match="Could not download"):
        fetch_bars("criteo_x1", data_home_path=tmp_path, base_url=url.replace("frappe", "criteo"))
    assert not list((tmp_path / "bars" / "criteo_x1").glob("*.csv"))
    with pytest.raises(ValueError, match="Unknown BARS dataset"):
        fetch_bars("avazu")
