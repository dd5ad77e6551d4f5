"""What a comparison can run: the registered tabular and in-context models and classical
baselines, by preset. Which registered models a preset takes, and the "fast" settings of each,
come from the registry (:func:`tabular_suite.core.registry.register_model`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from joblib import effective_n_jobs
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..core.registry import get_model, model_specs
from ..data.preprocess import FeatureFrame, OrdinalCategories
from ..data.schema import Schema

__all__ = ["BuildContext", "Candidate", "PRESETS", "preset_models", "resolve_candidates", "with_params", "BASELINES"]

# Deep-model settings per preset. "fast" trades accuracy for minutes on a laptop CPU (then each
# model's registered fast_params); "best" keeps each model's paper defaults (only the epoch
# budget is left to the time limit).
_DEEP_FAST = {"max_epochs": 40, "patience": 6}
#: The presets, and the model families that take part in a tabular comparison.
PRESETS = ("fast", "best")
_COMPARED_FAMILIES = ("tabular", "in-context")


@dataclass(frozen=True)
class BuildContext:
    """What a candidate's estimator is built from."""

    task: str
    schema: Schema
    n_unique: dict  # categorical column -> number of distinct values in the data
    feature_types: dict  # column -> kind, decided once on the whole table
    coerce_numeric: tuple  # numeric columns whose stray values are read as missing
    seed: int
    num_threads: int
    device: str


@dataclass(frozen=True)
class Candidate:
    """A model the comparison can fit: ``make(context)`` returns an unfitted estimator."""

    name: str
    kind: str  # "deep" or "baseline"
    make: Callable = field(repr=False)
    tasks: tuple = ("classification", "regression")


def _registered(name: str, preset: str) -> Candidate:
    """A registered model: "deep" (trained by the engine) or, for the in-context family, "baseline"."""
    spec = get_model(name)
    if spec.family not in _COMPARED_FAMILIES:
        raise ValueError(f"Model {name!r} is a {spec.family} model; a comparison fits tabular models.")

    def make(ctx: BuildContext):
        cls = spec.estimator_class(ctx.task)
        params = {"random_state": ctx.seed, "num_threads": ctx.num_threads, "device": ctx.device}
        params.update(feature_types=dict(ctx.feature_types), coerce_numeric=list(ctx.coerce_numeric) or None)
        if spec.family == "tabular":
            params["tracking"] = False
            if preset == "fast":
                params.update(_DEEP_FAST)
        if preset == "fast":
            params.update(spec.fast_params)
        return cls(**params)

    return Candidate(name, "deep" if spec.family == "tabular" else "baseline", make, spec.tasks)


def _features(ctx: BuildContext) -> FeatureFrame:
    """Numbers parsed, dates and text as numeric features, categories as they are."""
    return FeatureFrame(dict(ctx.feature_types), list(ctx.coerce_numeric) or None, random_state=ctx.seed)


def _one_hot_linear(ctx: BuildContext, model):
    """Scaled numbers with missing indicators + one-hot categories (rare ones pooled)."""
    schema, parts = ctx.schema, []
    if schema.numeric_features:
        parts.append(
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                list(schema.numeric_features),
            )
        )
    if schema.categorical:
        parts.append(
            (
                "cat",
                make_pipeline(  # (one-hot over the ordinal codes: the columns of one over the text)
                    OrdinalCategories(),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, max_categories=64),
                ),
                [str(c) for c in schema.categorical],
            )
        )
    return make_pipeline(_features(ctx), ColumnTransformer(parts), model)


def _ordinal(ctx: BuildContext, model_for_mask: Callable, integer_codes: bool = False):
    """Numbers as they are (NaN kept) + categories as ordinal codes (missing: a category of its
    own; unknown: NaN).

    ``model_for_mask`` gets the categorical mask; columns with more than 255 categories are
    left unflagged (HGB's categorical bins hold at most 255), i.e. used as ordered codes.
    ``integer_codes``: a DataFrame with the codes as integers (unknown: -1) instead of an array of
    floats (CatBoost's categorical columns take integers or text).
    """
    schema = ctx.schema
    parts = []
    if schema.numeric_features:
        parts.append(("num", "passthrough", list(schema.numeric_features)))
    if schema.categorical:
        parts.append(
            (
                "cat",
                OrdinalCategories(),
                [str(c) for c in schema.categorical],
            )
        )
    mask = [False] * len(schema.numeric_features) + [ctx.n_unique.get(c, 0) <= 255 for c in schema.categorical]
    steps = [_features(ctx), ColumnTransformer(parts)]
    if integer_codes:
        steps.append(FunctionTransformer(_integer_codes, kw_args={"first": len(schema.numeric_features)}))
    return make_pipeline(*steps, model_for_mask(mask))


def _integer_codes(X: np.ndarray, first: int) -> pd.DataFrame:
    """The columns from ``first`` on (ordinal codes) as integers, an unknown category (NaN) -1.

    >>> _integer_codes(np.array([[0.5, 2.0], [1.5, np.nan]]), first=1).dtypes.tolist()
    [dtype('float64'), dtype('int64')]
    """
    return pd.DataFrame({j: X[:, j] if j < first else np.nan_to_num(X[:, j], nan=-1).astype(np.int64)
                         for j in range(X.shape[1])})  # fmt: skip


def _hgb(ctx: BuildContext):
    cls = HistGradientBoostingClassifier if ctx.task == "classification" else HistGradientBoostingRegressor
    return _ordinal(ctx, lambda mask: cls(categorical_features=mask if any(mask) else None, random_state=ctx.seed))


class _LoopedForest:
    """A scikit-learn forest whose prediction on one job (compare's one thread) sums its trees'
    outputs in a plain loop, in their order, as the forest's own joblib loop does on one job:
    the same numbers, without joblib's dispatch of each tree (scikit-learn copies its settings
    and warning filters for every tree): 300 trees predicting 1,000 rows of 20 columns took
    33.5 instead of 75.7 ms (classifier) and 51.9 instead of 97.3 ms (extra-trees regressor),
    one thread, 2-core AMD EPYC. On more jobs, or several outputs, the forest's own method runs."""

    def _looped(self) -> bool:
        return effective_n_jobs(self.n_jobs) == 1 and self.n_outputs_ == 1

    def _tree_sum(self, X, columns) -> np.ndarray:
        """The trees' mean of ``tree_.predict(X)[:, columns]`` (each tree's method with
        ``check_input=False`` returns that slice), ``X`` validated once by the forest."""
        check_is_fitted(self)
        X = self._validate_X_predict(X)
        return sum(tree.tree_.predict(X)[:, columns] for tree in self.estimators_) / len(self.estimators_)


class _LoopedForestClassifier(_LoopedForest):
    def predict_proba(self, X):
        """Mean class probabilities of the trees (``predict`` takes the most probable class)."""
        if not self._looped():
            return super().predict_proba(X)
        return self._tree_sum(X, slice(None, self.n_classes_))


class _LoopedForestRegressor(_LoopedForest):
    def predict(self, X):
        """Mean prediction of the trees."""
        if not self._looped():
            return super().predict(X)
        return self._tree_sum(X, 0)


class _RandomForestClassifier(_LoopedForestClassifier, RandomForestClassifier):
    """RandomForestClassifier with :class:`_LoopedForest`'s prediction."""


class _RandomForestRegressor(_LoopedForestRegressor, RandomForestRegressor):
    """RandomForestRegressor with :class:`_LoopedForest`'s prediction."""


class _ExtraTreesClassifier(_LoopedForestClassifier, ExtraTreesClassifier):
    """ExtraTreesClassifier with :class:`_LoopedForest`'s prediction."""


class _ExtraTreesRegressor(_LoopedForestRegressor, ExtraTreesRegressor):
    """ExtraTreesRegressor with :class:`_LoopedForest`'s prediction."""


def _rf(ctx: BuildContext):
    cls = _RandomForestClassifier if ctx.task == "classification" else _RandomForestRegressor
    return _ordinal(ctx, lambda mask: cls(n_estimators=300, n_jobs=ctx.num_threads, random_state=ctx.seed))


def _xt(ctx: BuildContext):
    """Extremely randomised trees (Geurts et al., 2006), in each of AutoGluon's presets: random
    cut points instead of the best ones make trees unlike the forest's and the boosters', a
    member the greedy ensemble takes where they help (phoneme, ozone_8hr) and leaves out where
    they do not. At most 15,000 leaves a tree, as AutoGluon's: unbounded, a tree on 100,000 rows
    holds about as many leaves (megabytes a tree, times 300 trees). Each tree on a bootstrap
    sample, as AutoGluon's: compare() bags both forests by their out-of-bag predictions
    (:func:`~tabular_suite.compare.folds.run_out_of_bag`)."""
    cls = _ExtraTreesClassifier if ctx.task == "classification" else _ExtraTreesRegressor
    return _ordinal(
        ctx,
        lambda mask: cls(
            n_estimators=300, max_leaf_nodes=15_000, bootstrap=True, n_jobs=ctx.num_threads, random_state=ctx.seed
        ),
    )


def _linear(ctx: BuildContext):
    model = LogisticRegression(max_iter=2000) if ctx.task == "classification" else Ridge(alpha=1.0)
    return _one_hot_linear(ctx, model)


#: LightGBM, XGBoost and CatBoost grow up to this many rounds at learning rate 0.05 (AutoGluon's
#: defaults) and stop when their loss on early-stopping rows has not improved for a while: a tenth
#: of their training rows, held out by the fit (:func:`~tabular_suite.compare.folds.fit_gbdt`; with
#: fewer than 20 rows, ``FALLBACK_ROUNDS`` rounds on all of them). ``EARLY_STOP = "auto"`` is
#: AutoGluon's patience (:func:`~tabular_suite.compare.folds.early_stopping_patience`: 300 rounds
#: up to 10,000 rows, fewer above, and longer as the best round grows); an integer is a fixed
#: patience. Against a fixed 500 rounds (benchmarks/gbdt_rounds.py, 10 tables, patience 50):
#: better out of fold on 13 of 20, what the ensemble selection reads (500 rounds overfit
#: multiclass log loss), 1.1-6.3x cheaper to predict, no better on the test rows (8 of 20).
#: Tuning trials (:mod:`.tuning`) early-stop every library at these settings.
GBDT_ROUNDS = 10_000
EARLY_STOP = "auto"
EARLY_STOP_FRACTION = 0.1
FALLBACK_ROUNDS = 500


def _lightgbm(ctx: BuildContext):
    import lightgbm

    cls = lightgbm.LGBMClassifier if ctx.task == "classification" else lightgbm.LGBMRegressor
    return _ordinal(
        ctx,
        lambda mask: cls(
            n_estimators=GBDT_ROUNDS,
            learning_rate=0.05,
            early_stopping_round=EARLY_STOP,
            n_jobs=ctx.num_threads,
            random_state=ctx.seed,
            verbose=-1,
        ),
    )


def _xgboost(ctx: BuildContext):
    import xgboost

    cls = xgboost.XGBClassifier if ctx.task == "classification" else xgboost.XGBRegressor
    return _ordinal(
        ctx,
        lambda mask: cls(
            n_estimators=GBDT_ROUNDS,
            learning_rate=0.05,
            early_stopping_rounds=EARLY_STOP,
            n_jobs=ctx.num_threads,
            random_state=ctx.seed,
        ),
    )


def _catboost(ctx: BuildContext):
    """CatBoost with its categories native (``cat_features``: its ordered target statistics, every
    categorical column whatever its cardinality), early-stopped as LightGBM and XGBoost. On
    California (seed-0 split of benchmarks/automl.py, one fit on 90% of the training rows,
    patience 202): native categories 43,375 test RMSE, ordinal codes as numbers 43,682."""
    import catboost

    cls = catboost.CatBoostClassifier if ctx.task == "classification" else catboost.CatBoostRegressor
    first = len(ctx.schema.numeric_features)
    cats = list(range(first, first + len(ctx.schema.categorical))) or None
    # allow_writing_files=False: CatBoost would otherwise write a catboost_info/ folder into the working directory.
    return _ordinal(
        ctx,
        lambda mask: cls(
            iterations=GBDT_ROUNDS,
            learning_rate=0.05,
            early_stopping_rounds=EARLY_STOP,
            cat_features=cats,
            thread_count=ctx.num_threads,
            random_seed=ctx.seed,
            verbose=False,
            allow_writing_files=False,
        ),
        integer_codes=cats is not None,
    )


#: The gradient-boosting libraries among the baselines.
GBDT_LIBRARIES = ("lightgbm", "xgboost", "catboost")
#: name -> (builder, pip package it needs or None): scikit-learn and GBDT models, in every preset.
BASELINES = {
    "hist_gradient_boosting": (_hgb, None),
    "random_forest": (_rf, None),
    "extra_trees": (_xt, None),
    "linear": (_linear, None),
    "lightgbm": (_lightgbm, "lightgbm"),
    "xgboost": (_xgboost, "xgboost"),
    "catboost": (_catboost, "catboost"),
}


def preset_models(preset: str, task: str) -> list[str]:
    """The registered models in ``preset`` that support ``task``, in the order they run: tabular
    models, then the in-context model, each in the order of registration.

    Examples
    --------
    >>> import tabular_suite
    >>> preset_models("fast", "classification")
    ['mlp', 'resnet', 'ft_transformer', 'excelformer', 'tabpfn']
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    return [
        spec.name
        for family in _COMPARED_FAMILIES
        for spec in model_specs()
        if spec.family == family and preset in spec.presets and task in spec.tasks
    ]


def model_step(estimator):
    """The model of a baseline's pipeline (its last step), or the estimator itself."""
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def with_params(candidates: list[Candidate], model_params: dict | None, ctx: BuildContext) -> list[Candidate]:
    """``candidates`` with ``model_params`` (``{name: {param: value}}``) applied to what each
    ``make`` builds; every name and parameter is checked on a first build (a clear error
    before any fit).

    Examples
    --------
    >>> from tabular_suite.data.schema import Schema
    >>> ctx = BuildContext("classification", Schema.from_types({"a": "numeric"}), {}, {"a": "numeric"}, (), 0, 1, "cpu")
    >>> [c] = with_params(resolve_candidates(["mlp"], "fast", "classification"), {"mlp": {"max_epochs": 3}}, ctx)
    >>> c.make(ctx).max_epochs
    3
    """
    if not model_params:
        return list(candidates)
    names = [c.name for c in candidates]
    unknown = sorted(set(model_params) - set(names))
    if unknown:
        raise ValueError(
            f"model_params names {', '.join(map(repr, unknown))}, not a candidate; candidates: {', '.join(names)}."
        )
    out = []
    for cand in candidates:
        params = dict(model_params.get(cand.name) or {})
        if not params:
            out.append(cand)
            continue

        def make(ctx, _make=cand.make, _params=params):
            est = _make(ctx)
            model_step(est).set_params(**_params)
            return est

        model = model_step(cand.make(ctx))
        bad = sorted(set(params) - set(model.get_params(deep=False)))
        if bad:
            raise ValueError(
                f"{cand.name} has no parameter {', '.join(map(repr, bad))}; "
                f"its parameters: {', '.join(sorted(model.get_params(deep=False)))}."
            )
        out.append(replace(cand, make=make))
    return out


def _installed(package: str | None) -> bool:
    return package is None or importlib.util.find_spec(package) is not None


def resolve_candidates(models, preset: str, task: str) -> list[Candidate]:
    """Candidates named by ``models`` (None = the preset's), supporting ``task``.

    A GBDT library that is not installed (they are dependencies of the library) is an error.
    """
    registered = preset_models(preset, task)
    if models is not None:
        names = [models] if isinstance(models, str) else list(models)
        if not names:
            raise ValueError("models is empty: name at least one model, or pass None for the preset's.")
    else:
        names = registered + list(BASELINES)
    out, seen = [], set()
    for name in names:
        key = str(name).lower()
        if key in seen:
            continue
        seen.add(key)
        if key in BASELINES:
            builder, package = BASELINES[key]
            if not _installed(package):
                raise ValueError(f"Model {key!r} needs the {package!r} package: pip install {package}.")
            out.append(Candidate(key, "baseline", builder))
        else:
            try:
                candidate = _registered(key, preset)
            except ValueError:
                known = [*preset_models("best", task), *BASELINES]
                raise ValueError(f"Unknown model {name!r}; available: {', '.join(known)}.") from None
            if task not in candidate.tasks:
                raise ValueError(f"Model {key!r} does not support {task}.")
            out.append(candidate)
    return out
