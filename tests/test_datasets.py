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
