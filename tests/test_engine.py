"""Training engine: determinism, early stopping, schedules, callbacks, threads, devices."""

import ast
import math
import os
import platform
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from conftest import FAST
from tabular_suite import FTTransformerRegressor, MLPClassifier, MLPRegressor, ResNetRegressor
from tabular_suite.core.sklearn_glue import resolve_num_threads
from tabular_suite.training import Callback, Objective, TrainConfig, fit_module, resolve_device, thread_limit
from tabular_suite.training.device import autocast_dtype, cpu_has_native_bf16


def _regression_data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = X[:, 0] * 2 + np.sin(X[:, 1]) + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("cls", [MLPRegressor, ResNetRegressor, FTTransformerRegressor])
def test_same_random_state_gives_bit_identical_fits(cls):
    X, y = _regression_data()
    params = dict(max_epochs=3, num_threads=1, random_state=7)
    if cls is FTTransformerRegressor:
        params.update(d_token=32, n_heads=4, n_blocks=2)
    a, b = cls(**params).fit(X, y), cls(**params).fit(X, y)
    for (name, pa), pb in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(pa, pb), name
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    c = cls(**{**params, "random_state": 8}).fit(X, y)
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_fit_leaves_global_rng_and_threads_untouched():
    X, y = _regression_data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    before = torch.get_num_threads()
    MLPRegressor(max_epochs=2, num_threads=1, random_state=0).fit(X, y)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == before


def test_early_stopping_restores_best_weights():
    X, y = _regression_data(200)
    X_val, y_val = _regression_data(100, seed=1)
    est = MLPRegressor(max_epochs=400, patience=5, lr=1e-2, num_threads=1, random_state=0)
    est.fit(X, y, eval_set=(X_val, y_val))
    losses = [h["val_loss"] for h in est.history_]
    assert len(losses) < 400, "early stopping should trigger"
    assert len(losses) == est.best_epoch_ + 5
    assert est.best_epoch_ == int(np.argmin(losses)) + 1
    # The restored weights are the best epoch's: recompute its validation loss.
    z_pred = (est.predict(X_val) - est._target_scaler.mean_) / est._target_scaler.scale_
    z_val = est._target_scaler.transform(y_val)
    assert math.isclose(float(np.mean((z_pred - z_val) ** 2)), min(losses), rel_tol=1e-4)
    assert "val_rmse" in est.history_[0] and "train_loss" in est.history_[0]


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_monitor_score_keeps_the_epoch_of_the_best_metric_not_of_the_lowest_loss(higher_is_better):
    # A validation loss that falls every epoch and a metric that peaks at epoch 2: monitor="loss"
    # keeps the last epoch, monitor="score" the metric's best one (its weights restored) and
    # stops ``patience`` epochs later. Validation rows' weights reach the metric.
    torch.manual_seed(0)
    X, y = torch.randn(64, 3), torch.randn(64, 1)
    scores = [0.5, 0.9, 0.6, 0.7, 0.8, 0.4] if higher_is_better else [2.0, 0.5, 1.0, 0.9, 0.8, 3.0]
    seen_weights = []

    def metric(out, target, *weight):
        seen_weights.append(weight)
        return scores[len(seen_weights) - 1]

    class Snapshot(Callback):
        def __init__(self):
            self.weights = {}

        def on_epoch_end(self, state, logs):
            self.weights[logs["epoch"]] = state.module.weight.detach().clone()

    def fit(monitor):
        seen_weights.clear()
        torch.manual_seed(0)
        snapshot = Snapshot()
        loss = lambda out, target, *weight: ((out - target) ** 2).mean()  # noqa: E731
        objective = Objective(loss, metric, "m", higher_is_better=higher_is_better)
        config = TrainConfig(max_epochs=6, lr=1e-2, patience=3, monitor=monitor, device="cpu", num_threads=1)
        weight = torch.full((64,), 2.0)
        state = fit_module(
            nn.Linear(3, 1), (X, y), objective, config, valid=(X, y), callbacks=[snapshot], valid_weight=weight
        )
        return state, snapshot

    by_loss, _ = fit("loss")
    assert by_loss.best_epoch == 6 and len(by_loss.history) == 6
    by_score, snapshot = fit("score")
    assert [h["val_m"] for h in by_score.history] == scores[:5]
    assert by_score.best_epoch == 2 and len(by_score.history) == 5  # stopped 3 epochs after epoch 2
    assert torch.equal(by_score.module.weight, snapshot.weights[2])
    assert all(len(w) == 1 and torch.equal(w[0], torch.full((64,), 2.0)) for w in seen_weights)
    with pytest.raises(ValueError, match="monitor must be 'loss' or 'score'"):
        TrainConfig(monitor="accuracy")
    # The "plateau" schedule follows the same criterion: halved after two epochs without a better
    # score (epochs 3 and 4), not on a loss that keeps falling.
    seen_weights.clear()
    objective = Objective(lambda out, target, *w: ((out - target) ** 2).mean(), metric, "m",
                          higher_is_better=higher_is_better)  # fmt: skip
    config = TrainConfig(max_epochs=5, lr=1e-2, patience=None, monitor="score", scheduler="plateau",
                         plateau_patience=1, device="cpu", num_threads=1)  # fmt: skip
    state = fit_module(nn.Linear(3, 1), (X, y), objective, config, valid=(X, y))
    assert [h["lr"] for h in state.history] == [1e-2, 1e-2, 1e-2, 5e-3, 5e-3]
    # A metric of unknown direction cannot be followed.
    with pytest.raises(ValueError, match="needs the objective's higher_is_better"):
        fit_module(nn.Linear(3, 1), (X, y), Objective(objective.loss, metric, "m"), config, valid=(X, y))


def test_weighted_validation_metrics_average_over_the_weights():
    # The metrics the estimators report and may monitor are weighted averages (a row of weight 3
    # counts as three rows), the same whatever the weights' scale.
    est = MLPClassifier(max_epochs=1, num_threads=1, random_state=0).fit(np.eye(2), [0, 1])
    accuracy = est._objective().metric
    out, target = torch.tensor([[1.0], [-1.0]]), torch.tensor([1.0, 1.0])  # right, wrong
    assert accuracy(out, target) == 0.5
    assert accuracy(out, target, torch.tensor([3.0, 1.0])) == accuracy(out, target, torch.tensor([0.3, 0.1])) == 0.75
    reg = MLPRegressor(max_epochs=1, num_threads=1, random_state=0).fit(np.eye(2), [0.0, 1.0])
    rmse, scale = reg._objective().metric, reg._target_scaler.scale_
    out, target = torch.tensor([[1.0], [0.0]]), torch.tensor([0.0, 0.0])  # errors 1 and 0
    assert math.isclose(rmse(out, target, torch.tensor([3.0, 1.0])), 0.75**0.5 * scale, rel_tol=1e-6)
    assert not reg._objective().higher_is_better and est._objective().higher_is_better


def test_validation_fraction_zero_trains_all_epochs():
    X, y = _regression_data(100)
    est = MLPRegressor(max_epochs=6, validation_fraction=0.0, num_threads=1, random_state=0).fit(X, y)
    assert len(est.history_) == 6 and "val_loss" not in est.history_[0]


def _history(scheduler, **kw):
    X, y = _regression_data(256)
    est = MLPRegressor(
        max_epochs=10, batch_size=64, scheduler=scheduler, patience=None, lr=1e-3, num_threads=1, random_state=0, **kw
    ).fit(X, y)
    return est.history_


def _lrs(scheduler, **kw):
    return [h["lr"] for h in _history(scheduler, **kw)]


def _plateau_rule(val_losses, lr, wait, factor=0.5):
    """The lr the plateau schedule should log after each epoch: multiplied by ``factor`` once more
    than ``wait`` epochs in a row brought no strict improvement of the validation loss."""
    best, bad, lrs = math.inf, 0, []
    for loss in val_losses:
        best, bad = (loss, 0) if loss < best else (best, bad + 1)
        if bad > wait:
            lr, bad = lr * factor, 0
        lrs.append(lr)
    return lrs


def test_schedules():
    assert _lrs("constant") == [1e-3] * 10
    cosine = _lrs("cosine", warmup_epochs=2)
    assert cosine[0] < cosine[1] <= 1e-3  # warm-up
    assert all(a > b for a, b in zip(cosine[2:], cosine[3:]))  # then decays
    assert cosine[-1] < 1e-5
    # plateau (patience None: waits max(2, 16 // 4) = 4 epochs) follows the validation loss
    plateau = _history("plateau")
    assert [h["lr"] for h in plateau] == pytest.approx(_plateau_rule([h["val_loss"] for h in plateau], 1e-3, 4))
    linear = _lrs("linear")  # 10 epochs: 0.9, 0.8, ..., 0 of the rate
    assert linear == pytest.approx([1e-3 * (9 - i) / 10 for i in range(10)], abs=1e-12)
    with pytest.raises(ValueError, match="scheduler"):
        _lrs("step")


def test_plateau_reduces_lr_when_validation_stalls():
    X, y = _regression_data(200)
    noise_y = np.random.default_rng(0).normal(size=200)  # nothing to learn: val loss stalls
    est = MLPRegressor(max_epochs=30, scheduler="plateau", patience=None, lr=1e-2, num_threads=1, random_state=0).fit(
        X, noise_y
    )
    lrs = [h["lr"] for h in est.history_]
    assert lrs == pytest.approx(_plateau_rule([h["val_loss"] for h in est.history_], 1e-2, 4))
    assert lrs[-1] < 1e-2


def test_grad_clip_bounds_the_update():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    X, y = torch.randn(32, 3) * 1000, torch.randn(32, 1) * 1000
    before = [p.detach().clone() for p in model.parameters()]
    obj = Objective(nn.functional.mse_loss, lambda o, t: 0.0, "none")
    config = TrainConfig(
        max_epochs=1, batch_size=32, lr=1.0, weight_decay=0.0, grad_clip=1e-3, device="cpu", num_threads=1
    )
    fit_module(model, (X, y), obj, config)
    # Adam's first step moves each weight by ~lr whatever the gradient scale, so check the
    # clipping through the gradient norm the optimizer saw instead.
    grad_norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert grad_norm <= 1e-3 * 1.0001
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_callbacks_receive_events_and_can_stop():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, state):
            events.append("begin")

        def on_epoch_end(self, state, logs):
            events.append(logs["epoch"])
            return logs["epoch"] == 3

        def on_train_end(self, state):
            events.append("end")

    X, y = _regression_data(100)
    est = MLPRegressor(max_epochs=50, callbacks=[Recorder()], num_threads=1, random_state=0).fit(X, y)
    assert events == ["begin", 1, 2, 3, "end"]
    assert len(est.history_) == 3


def test_verbose_shows_progress(capsys):
    X, y = _regression_data(100)
    MLPRegressor(max_epochs=2, verbose=1, num_threads=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "epochs" in out and "2/2" in out


def test_batches_are_index_slices_without_a_dataloader(monkeypatch):
    import torch.utils.data

    def forbidden(*a, **k):
        raise AssertionError("the engine must not build a DataLoader")

    monkeypatch.setattr(torch.utils.data, "DataLoader", forbidden)
    X, y = _regression_data(100)
    MLPRegressor(max_epochs=2, batch_size=16, num_threads=1, random_state=0).fit(X, y)


def test_thread_policy():
    assert resolve_num_threads() == 1  # TABULAR_SUITE_NUM_THREADS=1 in conftest
    assert resolve_num_threads(3) == 3
    with pytest.raises(ValueError, match="num_threads"):
        resolve_num_threads(0)
    before = torch.get_num_threads()
    with thread_limit(2) as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        with thread_limit(0):
            pass


_LIBC, _LIBC_VERSION = platform.libc_ver()

# Observes glibc's malloc through mallinfo2: `hblks` counts the blocks served by their own mmap,
# `arena` the heap obtained with brk (it shrinks when freed memory above the trim threshold goes
# back to the OS). The process first fixes both thresholds at 128 KiB, as a user's MALLOC_*_THRESHOLD_
# variables or own mallopt calls would (a fixed value also stops glibc's adaptation), so each
# 20 MiB block is mapped until something changes the thresholds.
_HEAP_SCRIPT = """
import ctypes, os
libc = ctypes.CDLL(None)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                                                "fordblks keepcost").split()]
libc.mallinfo2.restype = Info
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
def mapped(mib):  # is a block of `mib` MiB given its own mmap?
    before = libc.mallinfo2().hblks
    block = libc.malloc(mib << 20)
    after = libc.mallinfo2().hblks
    libc.free(block)
    return after - before == 1
def kept(mib):  # is a freed heap block of `mib` MiB kept for reuse (not trimmed)?
    block = libc.malloc(mib << 20)
    held = libc.mallinfo2().arena
    libc.free(block)
    return libc.mallinfo2().arena == held
assert libc.mallopt(M_MMAP_THRESHOLD, 128 << 10) and libc.mallopt(M_TRIM_THRESHOLD, 128 << 10)
import numpy as np
from tabular_suite import MLPRegressor
from tabular_suite.training.device import settle_heap
out = {}
X = np.random.default_rng(0).normal(size=(64, 3))
MLPRegressor(max_epochs=2, num_threads=1, random_state=0).fit(X, X[:, 0]).predict(X)
out["fit"] = mapped(20)
# settle_heap reads the environment when called: set here, the variables stand for a user's
# (glibc itself reads them at start-up, which the thresholds fixed above stand for).
for env in ({"TABULAR_SUITE_SETTLE_HEAP": "0"}, {"MALLOC_MMAP_THRESHOLD_": "131072"},
            {"MALLOC_TRIM_THRESHOLD_": "131072"}, {}):
    os.environ.update(env)
    out[",".join(env) or "settle"] = (settle_heap(), mapped(20), mapped(33))
    for key in env:
        del os.environ[key]
out["kept"] = kept(20)
print(out)
"""


@pytest.mark.skipif(
    _LIBC != "glibc" or tuple(map(int, _LIBC_VERSION.split(".")[:2])) < (2, 33),
    reason="settle_heap acts on glibc's malloc only; mallinfo2 is glibc >= 2.33",
)
def test_settled_heap_reuses_freed_memory_and_yields_to_the_users_settings():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "TABULAR_SUITE_SETTLE"))}
    out = subprocess.run(
        [sys.executable, "-c", _HEAP_SCRIPT], env=environ, capture_output=True, text=True, check=True
    ).stdout
    out = ast.literal_eval(out.strip().splitlines()[-1])
    # A fit leaves the allocator alone (settle_heap is an explicit opt-in) ...
    assert out["fit"] is True
    # ... and so does settle_heap with the opt-out or when the user set a threshold: the user's settings win.
    for name in ("TABULAR_SUITE_SETTLE_HEAP", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        assert out[name] == (False, True, True), name
    # Otherwise it fixes the mmap threshold at 32 MiB (20 MiB blocks come from the heap, 33 MiB ones are
    # mapped) and the trim threshold above 20 MiB (a freed 20 MiB block stays for the next step's tensors).
    assert out["settle"] == (True, False, True) and out["kept"] is True


def test_device_resolution_and_precision():
    assert resolve_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device"):
        resolve_device("not-a-device")
    native = cpu_has_native_bf16()
    assert autocast_dtype("auto", torch.device("cpu")) is (torch.bfloat16 if native else None)
    assert autocast_dtype("fp32", torch.device("cuda")) is None
    assert autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16


def test_bf16_on_cpu_trains_close_to_fp32():
    X, y = _regression_data(400)
    fp32 = MLPRegressor(max_epochs=30, num_threads=1, random_state=0, precision="fp32").fit(X, y).score(X, y)
    bf16 = MLPRegressor(max_epochs=30, num_threads=1, random_state=0, precision="bf16").fit(X, y).score(X, y)
    assert fp32 > 0.9 and abs(fp32 - bf16) < 0.03


def test_divergence_is_reported():
    X, y = _regression_data(64)
    with pytest.raises(RuntimeError, match="diverged"):
        MLPRegressor(max_epochs=20, lr=1e12, num_threads=1, random_state=0).fit(X, y * 1e30)


def test_eval_set_is_used_for_early_stopping(mixed_frame):
    """The validation figures are the eval_set's (not those of a split of the training rows), and
    early stopping restores the epoch with the lowest eval_set loss."""
    df, y, _ = mixed_frame
    X_val, y_val = df.iloc[200:], y[200:]
    est = MLPClassifier(**FAST).fit(df.iloc[:200], y[:200], eval_set=(X_val, y_val))
    losses = [h["val_loss"] for h in est.history_]
    assert est.best_epoch_ == int(np.argmin(losses)) + 1
    p_yes = est.predict_proba(X_val)[:, list(est.classes_).index("yes")]
    log_loss = -np.mean(np.where(y_val == "yes", np.log(p_yes), np.log(1 - p_yes)))
    assert math.isclose(log_loss, min(losses), rel_tol=1e-4)
    assert est.history_[est.best_epoch_ - 1]["val_accuracy"] == pytest.approx(np.mean(est.predict(X_val) == y_val))


def test_plateau_counts_only_strict_improvements_of_negative_criteria():
    """-AUC a hair below the best (here 0.69995 after 0.70) is no improvement: the lr drops
    (torch's default relative threshold would take it for one), and never below plateau_min_lr."""
    criteria = iter([-0.70, -0.69995, -0.71, -0.70, -0.70, -0.70])
    obj = Objective(nn.functional.mse_loss, lambda o, t: 0.0, "none", evaluate=lambda m: (next(criteria), {}))
    config = TrainConfig(
        max_epochs=6,
        batch_size=8,
        scheduler="plateau",
        plateau_factor=0.1,
        plateau_patience=0,
        plateau_min_lr=1e-5,
        patience=None,
        lr=1e-3,
        device="cpu",
        num_threads=1,
    )
    state = fit_module(nn.Linear(2, 1), (torch.randn(16, 2), torch.randn(16, 1)), obj, config)
    lrs = [h["lr"] for h in state.history]
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5])
