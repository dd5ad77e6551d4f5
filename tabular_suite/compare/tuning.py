"""Hyperparameter search inside a comparison's budget (``compare(tune=...)``).

For each model family with a search space (LightGBM, XGBoost, CatBoost and the deep models), an
Optuna study (TPE sampler, seeded) on a hold-out inside the first fold's training rows (a fifth
of them; the fold's validation rows stay unseen, so its out-of-fold predictions stay honest):
every trial fits the candidate with one configuration on the other four fifths and is scored
with the comparison's metric on the hold-out. The first trials are a portfolio of strong configurations: the
candidate's own settings, then a few known-good alternatives per family (:data:`PORTFOLIO`);
TPE proposes the rest. The chosen configuration is then bagged over all folds like any model.

- Deep models: each trial reports its per-epoch validation criterion (what the model's early
  stopping follows on its own rows, held out of the fold's training rows: the loss, or TabM's
  accuracy / RMSE) to Optuna's median pruner, which stops a trial
  whose curve is worse than the median of the earlier trials at the same epoch.
- GBDTs: each trial grows up to :data:`~tabular_suite.compare.candidates.GBDT_ROUNDS` rounds and
  stops at AutoGluon's patience after its validation loss last improved
  (:func:`~tabular_suite.compare.folds.early_stopping_patience`; early-stopped trials, as the untuned
  fold models do on rows of their own); the chosen configuration keeps the number of rounds its
  trial reached, so its bagged fold models train on all their rows, without early stopping.

Time: under a time limit, tuning may use :data:`TUNE_FRACTION` of a model's share, and stops
before that when the time left could no longer bag the best configuration over every fold at
the pace of its trial (a trial costs about one fold). Each trial is bounded by what is left
(:class:`~tabular_suite.compare.folds.Deadline`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..training.callbacks import Callback
from .candidates import EARLY_STOP, GBDT_ROUNDS, BuildContext, model_step
from .ensemble import _align_proba
from .folds import Deadline, _rounds_params, fit_gbdt, fit_within, gbdt_library, rounds_grown

__all__ = ["PORTFOLIO", "TUNE_FRACTION", "Tuner", "portfolio_candidates", "search_space"]

#: Share of a model's time that its trials may use under a time limit.
TUNE_FRACTION = 0.5
_DEFAULT_TRIALS = 20  # tune=True without any time limit

_GBDT_SPACES = {
    "lightgbm": {
        "learning_rate": ("float", 0.01, 0.3, True),
        "num_leaves": ("int", 4, 256, True),
        "min_child_samples": ("int", 1, 100, True),
        "colsample_bytree": ("float", 0.3, 1.0, False),
        "reg_lambda": ("float", 0.0, 10.0, False),
        "extra_trees": ("cat", (False, True)),
    },
    "xgboost": {
        "learning_rate": ("float", 0.01, 0.3, True),
        "max_depth": ("int", 2, 10, False),
        "min_child_weight": ("float", 0.5, 20.0, True),
        "colsample_bytree": ("float", 0.3, 1.0, False),
        "subsample": ("float", 0.5, 1.0, False),
        "reg_lambda": ("float", 0.1, 10.0, True),
    },
    "catboost": {
        "learning_rate": ("float", 0.01, 0.3, True),
        "depth": ("int", 3, 9, False),
        "l2_leaf_reg": ("float", 1.0, 10.0, True),
    },
}
# What the candidates leave to the libraries' defaults, written out (a trial sets every parameter).
_GBDT_DEFAULTS = {
    "lightgbm": {"num_leaves": 31, "min_child_samples": 20, "colsample_bytree": 1.0, "reg_lambda": 0.0,
                 "extra_trees": False},
    "xgboost": {"max_depth": 6, "min_child_weight": 1.0, "colsample_bytree": 1.0, "subsample": 1.0, "reg_lambda": 1.0},
    "catboost": {"learning_rate": 0.05, "depth": 6, "l2_leaf_reg": 3.0},
}  # fmt: skip

#: Configurations tried after the candidate's own, per family (deep: for every deep model that
#: has the parameters). Sources: AutoGluon's LightGBM "large" configuration and extra-trees
#: variant, shallower XGBoost/CatBoost trees with a higher rate, deeper ones with a lower rate;
#: the TabM paper's piecewise-linear embeddings (its best variant) and a more regularised net.
PORTFOLIO = {
    "lightgbm": [
        {"learning_rate": 0.03, "num_leaves": 128, "min_child_samples": 3, "colsample_bytree": 0.9},
        {"extra_trees": True, "colsample_bytree": 0.8},
        {"num_leaves": 8, "min_child_samples": 50, "colsample_bytree": 0.6, "reg_lambda": 5.0, "learning_rate": 0.1},
    ],
    "xgboost": [
        {"max_depth": 4, "colsample_bytree": 0.7, "subsample": 0.8, "learning_rate": 0.1},
        {"max_depth": 9, "min_child_weight": 3.0, "learning_rate": 0.02, "colsample_bytree": 0.7},
    ],
    "catboost": [
        {"depth": 4, "learning_rate": 0.1},
        {"depth": 8, "learning_rate": 0.03, "l2_leaf_reg": 1.0},
    ],
    "deep": [
        {"num_embeddings": "piecewise-linear"},
        {"lr_scale": 0.5, "dropout_value": 0.25, "weight_decay": 1e-4},
    ],
}
_DROPOUTS = ("dropout", "dropout1", "ffn_dropout", "attention_dropout", "residual_dropout")
_WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3)


def family(cand) -> str | None:
    """The search-space family of a candidate: a GBDT's name, "deep", or None (not tuned)."""
    if cand.name in _GBDT_SPACES:
        return cand.name
    return "deep" if cand.kind == "deep" else None


def search_space(cand, ctx: BuildContext) -> tuple[dict, dict]:
    """``(space, defaults)`` of a candidate: ``space`` maps a search parameter to ``("float" |
    "int", low, high, log)`` or ``("cat", choices)``; ``defaults`` is the candidate's own
    setting of each (the first trial). Deep models search the learning rate (as a factor
    ``lr_scale`` of their own, 1/3 to 3), the weight decay, one dropout value for every
    dropout they have (``dropout_value``) and, where they have them, numeric embeddings.

    Examples
    --------
    >>> from tabular_suite.data.schema import Schema
    >>> from tabular_suite.compare.candidates import resolve_candidates
    >>> ctx = BuildContext("classification", Schema.from_types({"a": "numeric"}), {}, {"a": "numeric"}, (), 0, 1, "cpu")
    >>> [mlp] = resolve_candidates(["mlp"], "fast", "classification")
    >>> space, defaults = search_space(mlp, ctx)
    >>> sorted(space), defaults["lr_scale"]
    (['dropout_value', 'lr_scale', 'num_embeddings', 'weight_decay'], 1.0)
    """
    fam = family(cand)
    if fam is None:
        return {}, {}
    params = model_step(cand.make(ctx)).get_params(deep=False)
    if fam != "deep":
        defaults = {**_GBDT_DEFAULTS[fam], **{k: params[k] for k in _GBDT_SPACES[fam] if params.get(k) is not None}}
        return dict(_GBDT_SPACES[fam]), defaults
    space = {"lr_scale": ("float", 1 / 3, 3.0, True)}
    defaults = {"lr_scale": 1.0}
    if "weight_decay" in params:
        space["weight_decay"] = ("cat", tuple(sorted({*_WEIGHT_DECAYS, float(params["weight_decay"])})))
        defaults["weight_decay"] = float(params["weight_decay"])
    dropouts = [k for k in _DROPOUTS if k in params]
    if dropouts:
        space["dropout_value"] = ("float", 0.0, 0.5, False)
        defaults["dropout_value"] = float(params[dropouts[0]])
    if "num_embeddings" in params:
        choices = ("none", "periodic-lite", "piecewise-linear")
        own = params["num_embeddings"]
        space["num_embeddings"] = ("cat", choices if own in choices else (*choices, own))
        defaults["num_embeddings"] = params["num_embeddings"]
    return space, defaults


def model_params(cand, ctx: BuildContext, config: dict) -> dict:
    """The estimator parameters of a search configuration, less those the candidate has already.

    Deep models: ``lr_scale`` multiplies the model's own ``lr``; ``dropout_value``, when it
    differs from the model's first dropout, sets every dropout the model has.

    Examples
    --------
    >>> from tabular_suite.data.schema import Schema
    >>> from tabular_suite.compare.candidates import resolve_candidates
    >>> ctx = BuildContext("classification", Schema.from_types({"a": "numeric"}), {}, {"a": "numeric"}, (), 0, 1, "cpu")
    >>> [mlp] = resolve_candidates(["mlp"], "fast", "classification")
    >>> model_params(mlp, ctx, {"lr_scale": 2.0, "dropout_value": 0.1, "weight_decay": 1e-4})
    {'weight_decay': 0.0001, 'lr': 0.002}
    """
    if family(cand) != "deep":
        return dict(config)
    params = model_step(cand.make(ctx)).get_params(deep=False)
    out = {k: v for k, v in config.items() if k not in ("lr_scale", "dropout_value")}
    if "lr_scale" in config and config["lr_scale"] != 1.0:
        out["lr"] = float(params["lr"]) * config["lr_scale"]
    dropouts = [k for k in _DROPOUTS if k in params]
    if "dropout_value" in config and dropouts and config["dropout_value"] != float(params[dropouts[0]]):
        out.update(dict.fromkeys(dropouts, float(config["dropout_value"])))
    return {k: v for k, v in out.items() if params.get(k) != v}


def portfolio_candidates(candidates, ctx: BuildContext, ranked: list[str]) -> list:
    """The further configurations of ``candidates`` (:data:`PORTFOLIO`), in the order a comparison
    tries them with the time its candidates leave (``compare(portfolio=True)``): each family's
    second configuration for every model in ``ranked`` (names, best first: the models whose first
    configuration did well are tried first), then each one's third, and so on. A candidate named
    ``<model>_<k>`` builds the model with its k-th configuration (the model's own is the first;
    a number a compared model already has is skipped); a deep model skips a portfolio
    configuration with a parameter it does not have, and a model one that is its own settings.

    Nothing is drawn at random after the portfolio: on small tables, where the time would allow
    it, configurations drawn from the search spaces made the greedy ensemble fit the
    out-of-fold noise (benchmarks/RESULTS.md, "compare()'s portfolio without random draws").

    Examples
    --------
    >>> from tabular_suite.data.schema import Schema
    >>> from tabular_suite.compare.candidates import resolve_candidates
    >>> ctx = BuildContext("classification", Schema.from_types({"a": "numeric"}), {}, {"a": "numeric"}, (), 0, 1, "cpu")
    >>> cands = resolve_candidates(["mlp", "lightgbm", "linear"], "fast", "classification")
    >>> [c.name for c in portfolio_candidates(cands, ctx, ["lightgbm", "mlp", "linear"])]
    ['lightgbm_2', 'mlp_2', 'lightgbm_3', 'mlp_3', 'lightgbm_4']
    >>> model_step(portfolio_candidates(cands, ctx, ["mlp"])[0].make(ctx)).num_embeddings
    'piecewise-linear'
    """
    by_name = {c.name: c for c in candidates}
    fixed = {}  # name -> its configurations from the portfolio
    for name in ranked:
        cand = by_name.get(name)
        if cand is None or family(cand) is None:
            continue
        try:
            space, defaults = search_space(cand, ctx)
        except Exception:  # noqa: BLE001 - a model that cannot be built has its error in its own row
            continue
        fixed[name] = [c for c in _portfolio(family(cand), space, defaults)[1:] if c != defaults]
    out, taken, count = [], set(by_name), dict.fromkeys(fixed, 1)

    def add(name: str, config: dict) -> None:
        count[name] += 1
        while f"{name}_{count[name]}" in taken:  # a compared model already has the name
            count[name] += 1
        taken.add(f"{name}_{count[name]}")
        params = model_params(by_name[name], ctx, config)
        out.append(replace(_with(by_name[name], params), name=f"{name}_{count[name]}"))

    for k in range(max(map(len, fixed.values()), default=0)):
        for name in fixed:
            if k < len(fixed[name]):
                add(name, fixed[name][k])
    return out


def _portfolio(fam: str, space: dict, defaults: dict) -> list[dict]:
    """The model's own configuration, then :data:`PORTFOLIO`'s for its family (those with a
    parameter the model does not have left out: a deep model without numeric embeddings)."""
    return [defaults] + [{**defaults, **config} for config in PORTFOLIO[fam] if set(config) <= set(space)]


def _suggest(trial, space: dict) -> dict:
    out = {}
    for name, spec in space.items():
        if spec[0] == "cat":
            out[name] = trial.suggest_categorical(name, list(spec[1]))
        elif spec[0] == "int":
            out[name] = trial.suggest_int(name, spec[1], spec[2], log=spec[3])
        else:
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3])
    return out


class _Prune(Callback):
    """Reports a deep trial's validation criterion each epoch (what its early stopping follows:
    the loss, TabM's score, the CTR models' AUC); stops the fit when Optuna prunes it."""

    def __init__(self, trial):
        self.trial, self.pruned = trial, False

    def on_epoch_end(self, state, logs: dict) -> bool:
        if state.criterion is None:
            return False
        self.trial.report(-float(state.criterion), int(logs["epoch"]))  # the study maximises
        self.pruned = self.trial.should_prune()
        return self.pruned


@dataclass
class Tuner:
    """Tunes the candidates of one comparison (one Optuna study per candidate).

    ``n_trials``: at most this many trials per model (None: as many as the time allows, or
    20 without a time limit). ``on_trial(name, number, value, state)`` is called after each
    trial. After :meth:`tune`, ``trials[name]`` holds the trials as a DataFrame and
    ``chosen[name]`` the chosen estimator parameters (the candidate's own settings: ``{}``),
    ``tuned[name]`` the candidate that makes them.
    """

    metric: object
    n_trials: int | None = None
    seed: int = 0
    on_trial: object = None
    trials: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    tuned: dict = field(default_factory=dict)  # name -> the candidate with the chosen parameters

    def applies(self, cand) -> bool:
        return family(cand) is not None

    def tune(self, cand, ctx: BuildContext, X, y, fold, n_folds: int, n_classes: int, weights, time_left):
        """Search for ``cand``; returns the candidate with the chosen parameters.

        ``fold``: the (train, valid) row indices of the trials (fit, score); ``time_left()``: seconds
        left of the model's share (None: no limit).
        """
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            space, defaults = search_space(cand, ctx)
        except Exception:  # noqa: BLE001 - a model that cannot be built fails in its folds, with the error
            return cand
        fam = family(cand)
        portfolio = _portfolio(fam, space, defaults)
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=len(portfolio)),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=3),
        )
        for config in portfolio:
            study.enqueue_trial(config, skip_if_exists=True)
        limited = time_left() is not None
        budget = None if not limited else TUNE_FRACTION * time_left()
        tuning_started = time.perf_counter()
        n_max = self.n_trials if self.n_trials is not None else (10**6 if limited else _DEFAULT_TRIALS)
        train_idx, valid_idx = fold
        records, costs, extras = [], {}, {}
        for _ in range(n_max):
            seconds = None
            if limited:
                spent = time.perf_counter() - tuning_started
                best_cost = costs.get(study.best_trial.number) if _completed(study) else None
                # Keep enough to bag the best configuration so far over every fold.
                keep = 0.0 if best_cost is None else 1.1 * n_folds * best_cost
                seconds = min(budget - spent, time_left() - keep)
                typical = np.median(list(costs.values())) if costs else 0.0
                if seconds <= max(typical, 0.05 * budget):
                    break
            trial = study.ask()
            config = _suggest(trial, space)
            started = time.perf_counter()
            state, value, extra = self._trial(cand, ctx, config, trial, X, y, train_idx, valid_idx, n_classes,
                                              weights, seconds)  # fmt: skip
            cost = time.perf_counter() - started
            if state == "complete":
                study.tell(trial, value)
                costs[trial.number], extras[trial.number] = cost, extra
            else:
                study.tell(trial, state=getattr(optuna.trial.TrialState, state.upper()))
            records.append({"trial": trial.number, **config, "score": value, "state": state, "seconds": cost})
            if self.on_trial is not None:
                self.on_trial(cand.name, trial.number, value, state)
        self.trials[cand.name] = pd.DataFrame(records)
        params = {}
        if _completed(study):
            best = study.best_trial
            params = {**model_params(cand, ctx, best.params), **extras[best.number]}
        self.chosen[cand.name] = params
        self.tuned[cand.name] = _with(cand, params) if params else cand
        return self.tuned[cand.name]

    def _trial(self, cand, ctx, config, trial, X, y, train_idx, valid_idx, n_classes, weights, seconds):
        """One trial: ``(state, value, extra parameters)``; state complete, pruned or fail."""
        deadline = None if seconds is None else Deadline(seconds)
        params = model_params(cand, ctx, config)
        X_train, X_valid = X.iloc[train_idx], X.iloc[valid_idx]
        w = None if weights is None else weights[train_idx]
        extra = {}
        try:
            est = cand.make(ctx)
            model_step(est).set_params(**params)
            if family(cand) == "deep":
                pruner = _Prune(trial)
                est.set_params(callbacks=[pruner])
                fit_within(est, X_train, y[train_idx], deadline, deep=True, sample_weight=w)
                est.set_params(callbacks=None)
                if pruner.pruned:
                    return "pruned", None, extra
            else:
                w_valid = None if weights is None else weights[valid_idx]
                extra = _fit_gbdt_trial(est, X_train, y[train_idx], X_valid, y[valid_idx], w, w_valid, deadline)
            if deadline is not None and deadline.hit:
                return "fail", None, extra  # cut short: not a fair reading of the configuration
            if ctx.task == "classification":
                pred = _align_proba(est.predict_proba(X_valid), est.classes_, np.arange(n_classes))
            else:
                pred = np.asarray(est.predict(X_valid), dtype=np.float64)
            value = float(self.metric.score(y[valid_idx], pred))
            return ("complete", value, extra) if math.isfinite(value) else ("fail", None, extra)
        except Exception:  # noqa: BLE001 - a configuration that fails is a failed trial
            return "fail", None, extra


def _with(cand, params: dict):
    """``cand`` building its model with ``params`` (not through ``with_params``, whose check
    reads ``get_params``: LightGBM's extra parameters and CatBoost's unset ones are not there)."""

    def make(ctx, _make=cand.make):
        est = _make(ctx)
        model_step(est).set_params(**params)
        return est

    return replace(cand, make=make)


def _completed(study) -> bool:
    import optuna

    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def _fit_gbdt_trial(est, X, y, X_valid, y_valid, w, w_valid, deadline) -> dict:
    """Fit a GBDT pipeline, early-stopped on the validation rows (weighted as its training rows are:
    ``w_valid``; up to ``GBDT_ROUNDS`` rounds); returns
    the rounds it reached and no patience (``{"n_estimators": n, ...}``, CatBoost's
    ``{"iterations": n, ...}``): the chosen configuration grows that many rounds on all its rows."""
    pre, model = est[:-1], est._final_estimator
    rounds, patience = _rounds_params(gbdt_library(model))
    model.set_params(**{rounds: GBDT_ROUNDS, patience: EARLY_STOP})
    Xt = pre.fit_transform(X, y)
    weighted = {} if w is None else {"sample_weight": w}
    fit_gbdt(model, Xt, y, deadline, weighted, valid=(pre.transform(X_valid), y_valid, w_valid))
    return {rounds: max(1, rounds_grown(model)), patience: None}
