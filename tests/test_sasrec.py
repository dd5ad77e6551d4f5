"""SASRec: module semantics, losses, sequences, evaluation protocols and the recommender API."""

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone

import tabular_suite
from tabular_suite import SASRecRecommender
from tabular_suite.nn.blocks import dropout
from tabular_suite.nn.sasrec import SASRec
from tabular_suite.recsys.interactions import interaction_sequences
from tabular_suite.recsys.metrics import leave_one_out_split, ranking_metrics
from tabular_suite.training.engine import _bucket_by_length


def chain_log(n_users=120, n_items=40, seed=0, with_time=True):
    """Each user walks item i -> i+1 (mod n_items): the next item is fully predictable."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, length = rng.integers(n_items), rng.integers(5, 12)
        for t in range(length):
            rows.append((f"u{u}", f"i{(start + t) % n_items}", t))
    log = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    return log.sample(frac=1, random_state=seed).reset_index(drop=True) if with_time else log


def small(**kw):
    params = dict(
        maxlen=12,
        hidden_units=16,
        max_epochs=40,
        batch_size=16,
        dropout=0.1,
        num_threads=1,
        random_state=0,
        patience=None,
    )
    params.update(kw)
    return SASRecRecommender(**params)


# ----------------------------------------------------------------------------- module
def _reference_left_padded(model: SASRec, items: list[int]) -> torch.Tensor:
    """The official formulation: left padding, positions 0..L-1, pad keys masked."""
    L, d = model.maxlen, model.d
    seq = torch.tensor([[0] * (L - len(items)) + items])
    real = seq > 0
    x = model.item_embedding(seq) * d**0.5 + model.position_embedding(torch.arange(L))
    x = x * real.unsqueeze(-1)
    allowed = torch.ones(L, L, dtype=torch.bool).tril() & real[0].unsqueeze(0)
    for block in model.blocks:
        q_in = block.attn_norm(x)
        q = block.q(q_in)
        k, v = block.kv(x).chunk(2, -1)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(d)
        scores = scores.masked_fill(~allowed, float("-inf"))
        att = torch.softmax(scores, -1).nan_to_num(0.0) @ v
        x = q_in + block.out(att)
        x = block.ffn_norm(x)
        x = x + block.ffn_out(block.ffn_in(x).relu())
        x = x * real.unsqueeze(-1)
    return model.final_norm(x)[0, L - len(items) :]


def test_right_padding_matches_official_left_padding_with_key_mask():
    torch.manual_seed(0)
    model = SASRec(n_items=30, maxlen=8, hidden_units=16).eval()
    items = [5, 9, 2]
    ours = model(torch.tensor([items + [0] * 5]))[0, :3]
    assert torch.allclose(ours, _reference_left_padded(model, items), atol=1e-5)


def test_attention_is_causal_and_trimmed_batches_give_same_states():
    torch.manual_seed(0)
    model = SASRec(n_items=30, maxlen=8, hidden_units=16, norm="pre").eval()
    a = model(torch.tensor([[1, 2, 3, 4, 0, 0, 0, 0]]))
    b = model(torch.tensor([[1, 2, 3, 9, 0, 0, 0, 0]]))
    assert torch.allclose(a[0, :3], b[0, :3], atol=1e-6) and not torch.allclose(a[0, 3], b[0, 3])
    trimmed = model(torch.tensor([[1, 2, 3, 4]]))  # fewer columns: positions still from the end
    assert torch.allclose(trimmed[0], a[0, :4], atol=1e-5)


@pytest.mark.parametrize("norm", ["original", "pre", "post"])
def test_norm_layouts_train(norm):
    rec = small(norm=norm, max_epochs=3, validation=False).fit(chain_log())
    assert rec.module_.blocks[0].norm == norm and np.isfinite(rec.history_[-1]["train_loss"])


def test_init_options():
    torch.manual_seed(0)
    xavier, normal = SASRec(20_000, hidden_units=64), SASRec(20_000, hidden_units=64, init="normal")
    assert abs(float(normal.item_embedding.weight.detach()[1:].std()) - 0.02) < 0.001
    assert float(xavier.item_embedding.weight.detach()[1:].std()) < 0.012  # Xavier over 20,001 rows
    assert float(normal.item_embedding.weight.detach()[0].abs().max()) == 0.0  # padding stays zero
    biases = [p for n, p in normal.named_parameters() if p.ndim == 1 and "norm" not in n]
    assert biases and all(float(b.detach().abs().max()) == 0.0 for b in biases)
    rec = small(init="normal", max_epochs=3, validation=False).fit(chain_log())
    assert np.isfinite(rec.history_[-1]["train_loss"])
    with pytest.raises(ValueError, match="init"):
        small(init="kaiming").fit(chain_log())


def test_bad_norm_and_heads():
    with pytest.raises(ValueError, match="norm"):
        SASRec(10, norm="sandwich")
    with pytest.raises(ValueError, match="divisible"):
        SASRec(10, hidden_units=50, num_heads=3)


def test_byte_dropout_rate_and_scale():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.2)
    rate = float((y == 0).float().mean())
    assert abs(rate - 51 / 256) < 0.005
    assert torch.allclose(y[y > 0], torch.tensor(256 / 205))
    assert dropout(x, 0.2, training=False) is x


# ----------------------------------------------------------------------------- losses
def _tiny_fitted():
    return small(max_epochs=1, validation=False).fit(chain_log())


def test_bce_negatives_never_come_from_the_training_history():
    rec = SASRecRecommender()
    # user 0 saw items 1..8 of 10, user 1 saw item 3
    keys = np.array([0 * 11 + i for i in range(1, 9)] + [1 * 11 + 3])
    rec._history_keys = torch.from_numpy(np.sort(keys))
    torch.manual_seed(0)
    users = torch.tensor([0] * 500 + [1] * 500)
    neg = rec._negatives(users, 10)
    assert set(neg[:500].tolist()) <= {9, 10}
    assert 3 not in neg[500:].tolist() and neg.min() >= 1 and neg.max() <= 10


def test_ce_loss_is_softmax_over_all_real_items():
    rec = _tiny_fitted()
    rec.loss = "ce"
    module = rec.module_.eval()
    seq = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    target = torch.tensor([[2, 3, 4, 0], [5, 6, 0, 0]])
    rec._targets_per_batch = 10.0  # the loss is a sum over targets / the average targets per batch
    loss = rec._train_loss(module, [torch.tensor([0, 1]), seq], target) * 10 / 5
    states = module(seq)[target > 0]
    logits = states @ module.item_embedding.weight[1:].T
    assert torch.allclose(loss, F.cross_entropy(logits, target[target > 0] - 1), atol=1e-6)


def test_sampled_softmax_masks_accidental_hits():
    rec = _tiny_fitted()
    rec.loss, rec.n_negatives = "sampled_softmax", 5000  # far more draws than items: every item is drawn
    module = rec.module_.eval()
    seq, target = torch.tensor([[1, 2, 0]]), torch.tensor([[2, 3, 0]])
    torch.manual_seed(0)
    rec._targets_per_batch = 2.0
    loss = rec._train_loss(module, [torch.tensor([0]), seq], target)
    torch.manual_seed(0)
    negatives = torch.randint(1, module.n_items + 1, (5000,))
    states = module(seq)[target > 0]
    pos = (states * module.item_embedding(target[target > 0])).sum(-1, keepdim=True)
    neg = states @ module.item_embedding(negatives).T
    neg[negatives.unsqueeze(0) == target[target > 0].unsqueeze(1)] = float("-inf")
    expected = F.cross_entropy(torch.cat([pos, neg], 1), torch.zeros(2, dtype=torch.long))
    assert torch.allclose(loss, expected, atol=1e-5)


def test_length_bucketing_keeps_every_row_once_and_groups_lengths():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 50, (1000,))
    order = _bucket_by_length(torch.randperm(1000, generator=g), lengths, 10, g)
    assert sorted(order.tolist()) == list(range(1000))
    spread = (lengths[order].view(-1, 10).amax(1) - lengths[order].view(-1, 10).amin(1)).float().mean()
    assert spread < 5  # random batches of 10 would span ~40


# ------------------------------------------------------------------ sequences/metrics
def test_sequences_follow_timestamps_stably_and_row_order_without():
    log = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": [1, 2, 3, 1], "ts": [5, 1, 1, 0]})
    s = interaction_sequences(log, time_col="ts")
    assert s.items[s.sequence(0) - 1].tolist() == [2, 3, 1]  # ties (2, 3) keep row order
    s = interaction_sequences(log)
    assert s.items[s.sequence(0) - 1].tolist() == [1, 2, 3]
    assert s.windows(2).tolist() == [[2, 3], [1, 0]]
    assert s.windows(3, drop_last=1, skip_first=1).tolist() == [[2, 0, 0], [0, 0, 0]]


def test_dates_as_timestamps_and_bad_timestamps():
    log = pd.DataFrame({"user_id": [1, 1], "item_id": ["x", "y"], "when": ["2024-02-01", "2024-01-01"]})
    s = interaction_sequences(log, time_col="when")
    assert s.items[s.sequence(0) - 1].tolist() == ["y", "x"]
    log["when"] = ["soon", "later"]
    with pytest.raises(ValueError, match="neither numbers nor dates"):
        interaction_sequences(log, time_col="when")


def test_leave_one_out_split():
    log = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2], "item_id": [10, 11, 12, 13, 7, 8], "t": [4, 3, 2, 1, 1, 2]})
    train, valid, test = leave_one_out_split(log, time_col="t")
    assert test.item_id.tolist() == [10] and valid.item_id.tolist() == [11]
    assert sorted(train.item_id.tolist()) == [7, 8, 12, 13]  # user 2 has < 3 items: all train
    # Text dates in time, as the model orders them (as text, "1/10" sorts before "1/9").
    log["ts"] = ["1/8/2024", "1/9/2024", "1/10/2024", "1/11/2024", "1/9/2024", "1/10/2024"]
    train, valid, test = leave_one_out_split(log, time_col="ts")
    assert test.item_id.tolist() == [13] and valid.item_id.tolist() == [12] and train.item_id.tolist() == [10, 11, 7, 8]
    assert interaction_sequences(log, time_col="ts").item_ids[:4].tolist() == [1, 2, 3, 4]  # 10, 11, 12, 13


def test_ranking_metrics():
    m = ranking_metrics(np.array([0, 9, 10, np.inf]), k=10)
    assert m["HR@10"] == 0.5
    assert math.isclose(m["NDCG@10"], (1 + 1 / math.log2(11)) / 4)
    with pytest.raises(ValueError, match="No users"):
        ranking_metrics(np.array([]))


# ----------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def fitted():
    log = chain_log()
    train, valid, test = leave_one_out_split(log, time_col="ts")
    rec = small(time_col="ts", patience=5).fit(pd.concat([train, valid]))
    return rec, test


def test_learns_a_predictable_sequence_under_both_protocols(fitted):
    rec, test = fitted
    full = rec.evaluate(test, protocol="full")
    sampled = rec.evaluate(test, protocol="sampled", n_negatives=20)
    assert full["protocol"].startswith("full ranking") and sampled["protocol"].startswith("sampled")
    assert full["HR@10"] > 0.9 and sampled["HR@10"] > 0.9
    assert rec.score(test) == full["NDCG@10"]
    # early stopping kept the epoch of the best validation NDCG@10 (each user's last fitted item)
    val_ndcg = [h["val_NDCG@10"] for h in rec.history_]
    assert rec.best_epoch_ == int(np.argmax(val_ndcg)) + 1


@pytest.mark.parametrize("loss", ["ce", "sampled_softmax"])
def test_other_losses_learn(loss):
    log = chain_log()
    train, valid, test = leave_one_out_split(log, time_col="ts")
    rec = small(time_col="ts", loss=loss, n_negatives=10).fit(pd.concat([train, valid]))
    assert rec.evaluate(test)["HR@10"] > 0.9


def test_full_protocol_excludes_seen_items_and_counts_a_seen_target_as_miss(fitted):
    rec, _ = fitted
    user = rec.users_[0]
    seen = rec.items_[rec.sequences_.sequence(0) - 1]
    result = rec.evaluate(pd.DataFrame({"user_id": [user], "item_id": [seen[-1]]}))
    assert result["HR@10"] == 0.0
    ranks = rec._ranks(
        rec.module_,
        rec.sequences_.windows(rec.maxlen, users=np.array([0])),
        np.array([rec.sequences_.sequence(0)[-1]]),
        _histories(rec, [0]),
    )
    assert ranks[0] == np.inf


def _histories(rec, users):
    from tabular_suite.recsys.recommender import _Histories

    return _Histories(rec.sequences_, np.array(users))


def test_sampled_candidates_are_distinct_unseen_items():
    from tabular_suite.recsys.recommender import _sampled_candidates

    rec = _tiny_fitted()
    hist = _histories(rec, range(rec.sequences_.n_users))
    targets = np.full(rec.sequences_.n_users, 1)
    cand = _sampled_candidates(hist, targets, rec.sequences_.n_items, 20, np.random.default_rng(0))
    for row in range(len(cand)):
        negs = cand[row, 1:]
        assert len(set(negs)) == 20 and 1 not in negs
        assert not set(negs) & set(hist.items(row).tolist())
    with pytest.raises(ValueError, match="unseen items"):
        _sampled_candidates(hist, targets, rec.sequences_.n_items, 39, np.random.default_rng(0))


def test_recommend_excludes_seen_and_ranks(fitted):
    rec, _ = fitted
    recs = rec.recommend(rec.users_[:3], k=5)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    assert recs.groupby("user_id").size().eq(5).all()
    for user, group in recs.groupby("user_id"):
        seen = set(rec.items_[rec.sequences_.sequence(list(rec.users_).index(user)) - 1])
        assert not seen & set(group.item_id) and group["rank"].tolist() == [1, 2, 3, 4, 5]
        assert group.score.is_monotonic_decreasing
    with_seen = rec.recommend(rec.users_[:1], k=rec.sequences_.n_items, exclude_seen=False)
    assert len(with_seen) == rec.sequences_.n_items
    with pytest.raises(ValueError, match="not seen at fit"):
        rec.recommend(["nobody"])
    with pytest.raises(ValueError, match="k must be"):
        rec.recommend(rec.users_[:1], k=0)


def test_recommend_for_sequences_matches_known_users_and_skips_unknown_items(fitted):
    rec, _ = fitted
    history = list(rec.items_[rec.sequences_.sequence(0) - 1])
    by_user = rec.recommend([rec.users_[0]], k=3)
    with pytest.warns(UserWarning, match="1 item"):
        by_seq = rec.recommend_for_sequences([history + ["never-seen"]], k=3)
    assert by_seq.item_id.tolist() == by_user.item_id.tolist()
    with pytest.raises(ValueError, match="no item known"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec.recommend_for_sequences([["never-seen"]])
    with pytest.raises(TypeError, match="list of item lists"):
        rec.recommend_for_sequences("i1")


def test_bad_input_is_named():
    log = chain_log()
    with pytest.raises(ValueError, match="no item column 'item'"):
        SASRecRecommender(item_col="item").fit(log)
    with pytest.raises(ValueError, match="empty"):
        SASRecRecommender().fit(log.iloc[:0])
    bad = log.copy()
    bad.loc[3, "item_id"] = None
    with pytest.raises(ValueError, match="missing values"):
        SASRecRecommender().fit(bad)
    with pytest.raises(ValueError, match="two or more interactions"):
        SASRecRecommender().fit(pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]}))
    with pytest.raises(ValueError, match="loss"):
        SASRecRecommender(loss="hinge").fit(log)
    with pytest.raises(TypeError, match="read_table"):
        SASRecRecommender().fit("interactions.csv")


def test_polars_and_arrow_input_give_the_same_model():
    import polars as pl
    import pyarrow as pa

    log = chain_log(n_users=30)
    a = small(max_epochs=2).fit(log).recommend(["u1"], k=3)
    b = small(max_epochs=2).fit(pl.from_pandas(log)).recommend(["u1"], k=3)
    c = small(max_epochs=2).fit(pa.Table.from_pandas(log)).recommend(["u1"], k=3)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_catalogue_items_without_interactions_are_known():
    rec = small(max_epochs=1, validation=False).fit(chain_log(n_users=20), items=["brand-new"])
    assert "brand-new" in set(rec.items_)
    result = rec.evaluate(pd.DataFrame({"user_id": ["u1"], "item_id": ["brand-new"]}))
    assert result["users"] == 1


def test_save_load_pickle_clone(tmp_path, fitted):
    rec, test = fitted
    path = tmp_path / "sasrec.tsm"
    rec.save(path)
    loaded = tabular_suite.load(path)
    assert isinstance(loaded, SASRecRecommender)
    pd.testing.assert_frame_equal(loaded.recommend(rec.users_[:4], k=5), rec.recommend(rec.users_[:4], k=5))
    assert loaded.evaluate(test) == rec.evaluate(test)
    again = pickle.loads(pickle.dumps(rec))
    pd.testing.assert_frame_equal(again.recommend(rec.users_[:2]), rec.recommend(rec.users_[:2]))
    fresh = clone(rec)
    assert fresh.get_params() == rec.get_params() and not hasattr(fresh, "module_")
    fresh.set_params(loss="ce")
    assert fresh.loss == "ce"


def test_integer_items_roundtrip_and_unsaveable_items(tmp_path):
    log = chain_log(n_users=20)
    log["item_id"] = log["item_id"].str[1:].astype(int)
    rec = small(max_epochs=1, validation=False).fit(log)
    rec.save(tmp_path / "m.tsm")
    loaded = SASRecRecommender.load(tmp_path / "m.tsm")
    assert loaded.items_.dtype.kind == "i"
    pd.testing.assert_frame_equal(loaded.recommend(["u1"]), rec.recommend(["u1"]))
    log["item_id"] = [(i, i) for i in log["item_id"]]
    rec = small(max_epochs=1, validation=False).fit(log)
    with pytest.raises(ValueError, match="item values must be"):
        rec.save(tmp_path / "t.tsm")


def test_same_seed_same_model_and_bf16_close_to_fp32():
    log = chain_log(n_users=40)
    a = small(max_epochs=3).fit(log)
    b = small(max_epochs=3).fit(log)
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    c = small(max_epochs=3, precision="bf16").fit(log)
    assert abs(c.history_[-1]["train_loss"] - a.history_[-1]["train_loss"]) < 0.1


# ----------------------------------------------------------------------------------- CLI
def test_cli_recommend_fit_predict_evaluate(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "TABULAR_SUITE_NUM_THREADS": "1", "COLUMNS": "120"}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "tabular_suite.cli.app", "recommend", *map(str, args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    log = chain_log()
    log["user_id"] = log["user_id"].str[1:].astype(int)  # integer users: parsed back from --users
    log.to_parquet(tmp_path / "log.parquet")
    model = tmp_path / "rec.tsm"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    r = cli(
        "fit",
        tmp_path / "log.parquet",
        "--time-col",
        "ts",
        "--out",
        model,
        "--test-last",
        "-p",
        "max_epochs=30",
        "-p",
        "batch_size=16",
        "--quiet",
        "--track",
        "--tracking-uri",
        uri,
    )
    assert r.returncode == 0, r.stderr
    assert "full ranking" in r.stdout and "HR@10" in r.stdout and "sampled protocol skipped" in r.stdout
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.search_runs([client.get_experiment_by_name("tabular_suite").experiment_id])[0]
    assert run.data.params["loss"] == "bce" and run.data.metrics["full_HR_at_10"] > 0.5
    assert run.data.tags["protocol_full"].startswith("full ranking")
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 30
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["model.tsm"]
    from typer.testing import CliRunner

    from tabular_suite.cli import app as cli_app

    def invoke(*args):  # the other commands in this process (typer's runner): no interpreter start-up
        return CliRunner().invoke(cli_app.app, ["recommend", *map(str, args)], env={"TABULAR_SUITE_NUM_THREADS": "1"})

    r = invoke("predict", model, "--users", "1,2", "-k", "3", "--out", tmp_path / "recs.csv")
    assert r.exit_code == 0, r.stderr
    recs = pd.read_csv(tmp_path / "recs.csv")
    assert recs.user_id.tolist() == [1, 1, 1, 2, 2, 2] and recs["rank"].tolist() == [1, 2, 3] * 2
    r = invoke("predict", model, "--users", "1", "--out", tmp_path / "recs.csv")
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = invoke("predict", model, "--users", "999", "--out", tmp_path / "none.csv")
    assert r.exit_code == 1 and "not seen at fit" in r.stderr and not (tmp_path / "none.csv").exists()
    _, _, test = leave_one_out_split(log, time_col="ts")
    test.to_csv(tmp_path / "test.csv", index=False)
    r = invoke("evaluate", model, tmp_path / "test.csv", "--n-negatives", "5")
    assert r.exit_code == 0, r.stderr
    assert "sampled: true item + 5" in r.stdout
    r = invoke("fit", tmp_path / "log.parquet", "--item-col", "movie", "--out", tmp_path / "x.tsm")
    assert r.exit_code == 1 and "no item column 'movie'" in r.stderr
