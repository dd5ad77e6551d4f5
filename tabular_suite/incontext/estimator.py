"""TabPFN-style in-context estimators: ``fit`` stores the table, ``predict`` is one forward pass.

The transformer (:class:`~tabular_suite.nn.pfn.PFNTransformer`) was pre-trained on synthetic
datasets (:mod:`tabular_suite.incontext`); the weights ship with the package. Prediction runs an
ensemble of ``n_estimators`` *views* of the same context, batched into one forward pass and
averaged in probability space. Each view has its own

- feature transform, fitted on the context: none, Yeo-Johnson power, quantile-to-normal, or
  a rotation onto the context's principal axes (numeric columns; categorical codes keep theirs);
  the views cycle through the four, except that a classifier with ``n_estimators="auto"`` on
  a table of up to 800 rows first scores the transforms on the table itself (see
  ``_select_transforms``) and shares the views out in proportion,
- feature order (the model's input slots are positional) and category-code order,
- class order (classifiers), undone before averaging,
- context rows: a stratified subsample of ``max_context_rows`` when the table is larger,
- features: a subset of the model's ``max_features`` slots when there are more columns
  (the views cover all columns between them),
- and, with more classes than the model's ``max_classes``, a random code book grouping the
  classes into ``max_classes`` groups (an error-correcting output code: each view predicts
  groups, and a class scores the geometric mean of its groups' probabilities over views).

Preprocessing fitted on the context: numeric columns keep their values (missing stays
missing: the model has a missing indicator per feature); categorical columns become category
codes (missing and unseen categories count as missing); constant columns are dropped; the
model standardises each feature on the context and squashes outliers.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..core.model_file import estimator_config, write_model_file
from ..core.registry import register_model
from ..core.sklearn_glue import derive_seed, resolve_num_threads, table_tags
from ..data.features import DataParams
from ..data.preprocess import LabelEncoder, TablePreprocessor, TargetScaler, restore_table_state, table_state
from ..data.validation import prepare_fit, prepare_frame, row_weights
from ..nn.pfn import PFNTransformer, bar_mean, bar_quantile
from ..training.device import autocast_dtype, resolve_device, thread_limit
from .transforms import TRANSFORMS, QuantileNormal, Rotation, YeoJohnson
from .weights import DEFAULT_WEIGHTS, compact_tensors, load_weights, model_from_tensors

__all__ = ["TabPFNClassifier", "TabPFNRegressor", "DEFAULT_WEIGHTS"]


#: predict keeps the context's keys and values up to this size (see ``_view_outputs``).
CONTEXT_CACHE_BYTES = 256 * 2**20
_AUTO_VIEW_ROWS = 4000  # n_estimators="auto": views x context rows (see _setup)
_MODELS: dict = {}  # loaded weights, keyed by (path, size, mtime): fits reuse them


def _load_model(weights) -> tuple[PFNTransformer, str]:
    if isinstance(weights, PFNTransformer):
        return weights, "in-memory"
    path = Path(DEFAULT_WEIGHTS if weights is None else weights)
    if not path.exists():
        raise ValueError(
            f"PFN weights file {str(path)!r} does not exist"
            + (": the package was installed without its weights." if weights is None else ".")
        )
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _MODELS:
        model, _ = load_weights(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        _MODELS.clear()  # keep one model in memory
        _MODELS[key] = (model, digest)
    return _MODELS[key]


def _code_books(rng, n_classes: int, n_groups: int, n_views: int) -> list[np.ndarray]:
    """Balanced random class -> group maps until every pair of classes is told apart."""
    books: list[np.ndarray] = []
    separated = np.eye(n_classes, dtype=bool)
    while len(books) < n_views or not separated.all():
        book = rng.permutation(np.arange(n_classes) % n_groups)
        books.append(book)
        separated |= book[:, None] != book[None, :]
        if len(books) > 64 * max(1, n_views):
            break
    return books


@dataclass
class _View:
    columns: np.ndarray  # which encoded columns, in which order
    transform: str
    category_orders: dict  # encoded column -> permutation of category codes
    rows: np.ndarray  # context rows
    label_map: np.ndarray | None  # class -> model label (permutation or code book)
    fitted: Any = None  # the fitted power/quantile transformer


@dataclass(kw_only=True, repr=False, eq=False)
class _InContextEstimator(BaseEstimator, DataParams):
    """Shared fit/predict of the in-context classifier and regressor (not used directly)."""

    n_estimators: int | str = "auto"
    max_context_rows: int = 1000
    weights: str | None = None
    softmax_temperature: float = 0.9
    batch_rows: int = 1024
    device: str = "auto"
    precision: str = "auto"
    num_threads: int | None = None
    random_state: Any = None
    class_weight: Any = None

    _regression: ClassVar[bool] = False

    def __sklearn_tags__(self):
        return table_tags(super().__sklearn_tags__())

    @property
    def feature_types_(self) -> dict:
        """The kind of each input column decided at fit (see :class:`~tabular_suite.data.features.DataParams`)."""
        check_is_fitted(self, "preprocessor_")
        return dict(self.preprocessor_.feature_types_)

    def _pfn(self) -> tuple[PFNTransformer, str]:
        """The model and its weights' digest: restored with the estimator, or from ``weights``."""
        return self.__dict__.get("_restored_model") or _load_model(self.weights)

    # --------------------------------------------------------------------- fit
    def _check_params(self) -> None:
        for name in ("n_estimators", "max_context_rows", "batch_rows"):
            value = getattr(self, name)
            if name == "n_estimators" and value == "auto":
                continue
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                also = " or 'auto'" if name == "n_estimators" else ""
                raise ValueError(f"{name} must be a positive integer{also}, got {value!r}.")
        if not (isinstance(self.softmax_temperature, (int, float)) and self.softmax_temperature > 0):
            raise ValueError(f"softmax_temperature must be > 0, got {self.softmax_temperature!r}.")
        autocast_dtype(self.precision, torch.device("cpu"))  # validates the name
        if self.class_weight is not None and self._regression:
            raise ValueError(f"class_weight is for classifiers; leave it None for {type(self).__name__}.")

    def fit(self, X, y, sample_weight=None):
        """Store ``(X, y)`` as the context and prepare the ensemble views (no training).

        ``sample_weight`` (and ``class_weight``): the model reads rows, not weights, so each
        view's context is drawn from the rows with replacement, each row with probability
        proportional to its weight (as many rows as the view would use unweighted): a row of
        weight 2 appears twice as often in expectation, a row of weight 0 never.

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
        >>> clf = tabular_suite.TabPFNClassifier(num_threads=1, class_weight={1: 3.0}).fit(X, y)
        >>> clf.predict_proba(X).shape
        (60, 2)
        """
        self._check_params()
        df, from_numpy, y = prepare_fit(self, X, y)
        weights = row_weights(self, y, sample_weight, self.class_weight)
        self._fit_columns = list(df.columns)
        self._seed = derive_seed(self.random_state)
        self.preprocessor_ = TablePreprocessor.from_params(self, "none", self._seed).fit(df, from_numpy=from_numpy)
        target = self._fit_target(y)
        self._setup(self._encode(df), target, weights=weights)
        return self

    def _encode(self, df: pd.DataFrame) -> np.ndarray:
        """Numeric values (NaN kept) and category codes (NaN for missing/unseen) as float32."""
        pre = self.preprocessor_
        block, codes = pre.numeric_block(df), pre.category_codes(df)
        pre.check_drift(df, block, codes)
        codes = codes.astype(np.float64) - 2  # 0 = missing, 1 = unseen -> below 0
        kept = np.array([len(c) for c in pre.categories])  # hash buckets of unkept categories: beyond
        codes[(codes < 0) | (codes >= kept)] = np.nan
        return np.concatenate([block, codes], axis=1).astype(np.float32)

    def _setup(
        self, x: np.ndarray, target: np.ndarray, transforms: list[str] | str | None = None, weights=None
    ) -> None:
        """Build the ensemble views. ``transforms``: one per view (a saved estimator being
        loaded), "cycle" (the four in turn) or None (chosen here); ``weights``: the rows'
        weights (mean 1) that the views' contexts are drawn by, or None."""
        model, _ = self._pfn()
        rng = np.random.default_rng(self._seed)  # drawn in fit; stored by save, so loads rebuild the same views
        observed = ~np.isnan(x)
        varying = np.array([np.unique(x[observed[:, j], j]).size > 1 for j in range(x.shape[1])])
        self.used_columns_ = np.flatnonzero(varying)
        n_cat = len(self.preprocessor_.schema.categorical)
        self._categorical_columns = set(range(x.shape[1] - n_cat, x.shape[1]))
        self._context_x, self._context_y, self._context_w = x, target, weights
        n_used = len(self.used_columns_)
        n_slots = min(n_used, model.max_features)
        n_views = self.n_estimators
        if n_views == "auto":  # a fixed budget of context rows: 4 views of 1,000 rows .. 16 of 250 or fewer
            n_views = int(np.clip(_AUTO_VIEW_ROWS // min(len(target), self.max_context_rows), 4, 16))
        if n_used > model.max_features:  # enough views for every column to appear once
            n_views = max(n_views, math.ceil(n_used / model.max_features))
        code_books = None
        if not self._regression and len(self.classes_) > model.max_classes:
            code_books = _code_books(rng, len(self.classes_), model.max_classes, n_views)
            n_views = len(code_books)
        column_cycle = rng.permutation(self.used_columns_)

        def view_columns(v: int, rng) -> np.ndarray:
            if n_used > model.max_features:
                start = (v * n_slots) % n_used
                return rng.permutation(column_cycle[(start + np.arange(n_slots)) % n_used])
            return rng.permutation(self.used_columns_)

        self.transform_weights_ = None
        if transforms is None and code_books is None:
            transforms = self._select_transforms(x, target, n_views, view_columns)
        if transforms is None or transforms == "cycle":
            transforms = [TRANSFORMS[v % len(TRANSFORMS)] for v in range(n_views)]
        self.view_transforms_ = tuple(transforms)
        views = []
        for v in range(n_views):
            columns = view_columns(v, rng)
            rows = self._context_rows(rng, target, weights)
            if self._regression:
                label_map = None
            elif code_books is not None:
                label_map = code_books[v]
            else:
                label_map = rng.permutation(len(self.classes_))
            views.append(self._make_view(rng, x, columns, transforms[v], rows, label_map))
        self._views = views
        self.n_views_ = len(views)
        # The views' context, run by the first predict and kept for the next (a memo of the
        # fitted state: a dict filled in place, so predict leaves the estimator's attributes as they are).
        self._context_memo = {}

    def _make_view(self, rng, x: np.ndarray, columns, transform: str, rows, label_map) -> _View:
        """A view with its category-code permutations drawn and its transform fitted on ``x[rows]``."""
        n_cat = len(self.preprocessor_.schema.categorical)
        category_orders = {}
        for j in columns:
            if j in self._categorical_columns:
                n_codes = len(self.preprocessor_.categories[j - (x.shape[1] - n_cat)])
                category_orders[int(j)] = rng.permutation(n_codes).astype(np.float32)
        view = _View(columns, transform, category_orders, rows, label_map)
        view.fitted = self._fit_transform(view, x[rows])
        return view

    def _select_transforms(self, x: np.ndarray, target: np.ndarray, n_views: int, view_columns) -> list[str] | None:
        """The views' feature transforms, chosen on the table itself (``n_estimators="auto"``,
        at most 800 rows, i.e. 5 or more views, and some numeric column); None otherwise.

        One probe view per transform predicts a held-out, class-stratified third of the rows
        from the other two thirds. The transforms' mixture weights that maximise the
        held-out likelihood of the mixture of the four probe predictions (EM, Bayesian
        stacking) then share out the views: a transform of weight w gets about w x n_views
        views (all four about equally when none stands out). On PMLB's Hill-Valley tables
        (100 strongly correlated columns) the rotation takes most views: mean ROC AUC 0.60 ->
        0.81 and 0.54 -> 0.58 (6 seeds); over the 111 PMLB datasets 0.8367 -> 0.8391.
        Costs one forward pass of four probe views over the table, in ``fit``. Classifiers
        only: the regressor cycles through the transforms (scored by the held-out likelihood
        of the target's bin, R^2 on scikit-learn's diabetes data went from 0.383 to 0.376, mean
        of 5 half splits).
        """
        n = len(target)
        if (
            self._regression
            or self.n_estimators != "auto"
            or n * (len(TRANSFORMS) + 1) > _AUTO_VIEW_ROWS
            or n < 30
            or not any(j not in self._categorical_columns for j in self.used_columns_)
        ):
            return None
        rng = np.random.default_rng([self._seed, 1])  # its own stream: the views' draws stay as they were
        held = []
        for c in np.unique(target):
            members = np.flatnonzero(target == c)
            k = round(len(members) / 3)
            if 0 < k < len(members):
                held.append(rng.choice(members, k, replace=False))
        held = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
        if len(held) < 10:
            return None
        rest = np.setdiff1d(np.arange(n), held)
        probes = [
            self._make_view(rng, x, view_columns(v, rng), transform, rest, rng.permutation(len(self.classes_)))
            for v, transform in enumerate(TRANSFORMS)
        ]
        probs = self._view_outputs(probes, x, target, x[held])  # (4, held rows, outputs)
        rows = np.arange(len(held))
        likelihood = np.stack([p[rows, view.label_map[target[held]]] for p, view in zip(probs, probes)])
        likelihood = np.clip(likelihood, 1e-12, None)
        weights = np.full(len(TRANSFORMS), 1 / len(TRANSFORMS))
        for _ in range(200):  # EM for the mixture weights
            resp = weights[:, None] * likelihood
            weights = (resp / resp.sum(0, keepdims=True)).mean(1)
        self.transform_weights_ = dict(zip(TRANSFORMS, weights.round(6).tolist()))
        counts, transforms = np.zeros(len(TRANSFORMS)), []
        for v in range(n_views):  # stride scheduling: after k views, transform t has about k * w_t
            t = int(np.argmax(weights * (v + 1) - counts))
            counts[t] += 1
            transforms.append(TRANSFORMS[t])
        return transforms

    def _context_rows(self, rng, target: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        n = len(target)
        if weights is not None:  # a weighted draw with replacement (see fit)
            return np.sort(rng.choice(n, min(n, self.max_context_rows), replace=True, p=weights / weights.sum()))
        if n <= self.max_context_rows:
            return np.arange(n)
        if self._regression:
            return np.sort(rng.choice(n, self.max_context_rows, replace=False))
        # Stratified: every class keeps its share (and at least one row when it can).
        chosen = []
        for c in np.unique(target):
            members = np.flatnonzero(target == c)
            k = max(1, round(self.max_context_rows * len(members) / n))
            chosen.append(rng.choice(members, min(k, len(members)), replace=False))
        rows = np.concatenate(chosen)
        if len(rows) > self.max_context_rows:
            rows = rng.choice(rows, self.max_context_rows, replace=False)
        return np.sort(rows)

    def _fit_transform(self, view: _View, x: np.ndarray):
        numeric = [i for i, j in enumerate(view.columns) if j not in self._categorical_columns]
        if view.transform == "none" or not numeric:
            return None
        values = x[:, view.columns[numeric]].astype(np.float64)
        transformer = {"power": YeoJohnson, "quantile": QuantileNormal, "rotation": Rotation}[view.transform]()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                transformer.fit(values)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                return None
        return transformer

    def _view_matrix(self, view: _View, x: np.ndarray) -> np.ndarray:
        out = x[:, view.columns].copy()
        for i, j in enumerate(view.columns):
            order = view.category_orders.get(int(j))
            if order is not None:
                col = out[:, i]
                known = ~np.isnan(col)
                col[known] = order[col[known].astype(np.int64)]
        if view.fitted is not None:
            numeric = [i for i, j in enumerate(view.columns) if j not in self._categorical_columns]
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                transformed = view.fitted.transform(out[:, numeric].astype(np.float64))
            # A transform that overflows (extreme values) falls back to the raw column.
            bad = ~np.isfinite(transformed) & ~np.isnan(out[:, numeric])
            transformed[bad] = out[:, numeric][bad]
            out[:, numeric] = transformed
        return out

    # ----------------------------------------------------------------- predict
    def _predict_distribution(self, X) -> np.ndarray:
        """Averaged probabilities over classes (classifier) or bins (regressor)."""
        check_is_fitted(self, "_views")
        df, _ = prepare_frame(self, X, reset=False)
        return self._combine(
            self._view_outputs(self._views, self._context_x, self._context_y, self._encode(df), cache=True)
        )

    def __getstate__(self):
        state = self.__dict__.copy()
        if "_context_memo" in state:
            state["_context_memo"] = {}  # derived from the rest; not worth its bytes in a pickle
        return state

    def _view_outputs(
        self, views: list[_View], x: np.ndarray, target: np.ndarray, x_test: np.ndarray, cache: bool = False
    ) -> np.ndarray:
        """Each view's probabilities (views, test rows, model outputs), its context being
        ``x[view.rows]`` with ``target[view.rows]``: one batched forward pass.

        ``cache``: keep the context's keys and values (what the test rows attend to) for the
        next call on the same device and precision, when they take at most
        :data:`CONTEXT_CACHE_BYTES`: after the first predict, a call costs only its own rows
        (the context's pass was most of a small batch's cost)."""
        model, _ = self._pfn()
        device = resolve_device(self.device)
        amp = autocast_dtype(self.precision, device)
        with thread_limit(resolve_num_threads(self.num_threads)), torch.inference_mode():
            model = model.to(device)
            n_out = None if self._regression else torch.tensor([int(v.label_map.max()) + 1 for v in views])
            key = (str(device), amp)
            memo = self.__dict__.get("_context_memo") if cache else None
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                if memo is not None and key in memo:
                    context = memo[key]
                else:
                    ctx_x = torch.from_numpy(np.stack([self._view_matrix(v, x[v.rows]) for v in views])).to(device)
                    if self._regression:
                        ctx_y = torch.from_numpy(np.stack([target[v.rows] for v in views])).float()
                    else:
                        ctx_y = torch.from_numpy(np.stack([v.label_map[target[v.rows]] for v in views]))
                    context = model.context(ctx_x, ctx_y.to(device), regression=self._regression)
                    size = sum(t.numel() * t.element_size() for kv in context["kv"] for t in kv)
                    if memo is not None and size <= CONTEXT_CACHE_BYTES:
                        memo.clear()
                        memo[key] = context
                chunks = []
                for start in range(0, len(x_test), self.batch_rows):
                    part = x_test[start : start + self.batch_rows]
                    xs = torch.from_numpy(np.stack([self._view_matrix(v, part) for v in views])).to(device)
                    logits = model.predict(xs, context, None if n_out is None else n_out.to(device)).float()
                    chunks.append(torch.softmax(logits / self.softmax_temperature, -1).cpu())
            return torch.cat(chunks, dim=1).double().numpy()

    def _combine(self, probs: np.ndarray) -> np.ndarray:
        return probs.mean(0)

    # ------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save the fitted estimator (context, settings and the model weights) to one file.

        Loading rebuilds the same ensemble views from the stored context and seed, so the
        loaded estimator predicts exactly as the saved one.

        Examples
        --------
        >>> import tempfile, numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
        >>> clf = tabular_suite.TabPFNClassifier(num_threads=1).fit(X, y)
        >>> path = tempfile.mkdtemp() + "/pfn.tsm"
        >>> clf.save(path)
        >>> bool((tabular_suite.load(path).predict_proba(X) == clf.predict_proba(X)).all())
        True
        """
        write_model_file(path, *self._to_state())

    def _to_state(self) -> tuple[dict, dict]:
        """(JSON-able config, tensors) describing the fitted estimator; see :func:`tabular_suite.load`."""
        check_is_fitted(self, "_views")
        model, digest = self._pfn()
        fitted, tensors = table_state(self)
        fitted.update(
            weights_digest=digest,
            seed=self._seed,
            view_transforms=list(self.view_transforms_),
            transform_weights=self.transform_weights_,
            model=model.config,
        )
        config = estimator_config(self, fitted)
        tensors["context.x"] = self._context_x
        tensors["context.y"] = np.asarray(self._context_y)
        if self.__dict__.get("_context_w") is not None:
            tensors["context.w"] = np.asarray(self._context_w)
        tensors.update({f"weights.{k}": v for k, v in compact_tensors(model).items()})
        return config, tensors

    @classmethod
    def _from_state(cls, config: dict, tensors: dict):
        fitted = config["fitted"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = cls(**config["params"])
        restore_table_state(est, fitted, tensors)
        model = model_from_tensors(fitted["model"], {k[8:]: v for k, v in tensors.items() if k.startswith("weights.")})
        est._restored_model = (model, fitted["weights_digest"])
        est._seed = fitted["seed"]
        # Files written before the transforms were chosen per table cycle through them.
        transforms = fitted.get("view_transforms") or "cycle"
        weights = tensors["context.w"].numpy() if "context.w" in tensors else None
        est._setup(tensors["context.x"].numpy(), tensors["context.y"].numpy(), transforms, weights)
        est.transform_weights_ = fitted.get("transform_weights")
        return est


@dataclass(kw_only=True, repr=False, eq=False)
class TabPFNClassifier(ClassifierMixin, _InContextEstimator):
    """In-context classifier: a pre-trained transformer predicts from the stored training table.

    ``fit`` stores the table and ``predict_proba`` runs one forward pass of the shipped
    pre-trained model over an ensemble of views (see :mod:`tabular_suite.incontext.estimator`).
    Works best up to about 1,000 training rows, 100 features and 10 classes; beyond that,
    views use context subsamples, feature subsets and class code books.

    Parameters
    ----------
    n_estimators : int or "auto", default="auto"
        Ensemble views (feature/class/category permutations and feature transforms).
        "auto" spends a fixed budget of context rows: 4 views of a 1,000-row context, 4000 /
        rows for smaller ones, at most 16 (small tables gain the most from more views: on the
        111 PMLB datasets the mean ROC AUC is 0.8386 with "auto" and 0.8351 with 4 views), and
        on tables of up to 800 rows shares the views out among the feature transforms as
        scored on a held-out third of the table (``transform_weights_``,
        ``view_transforms_``); an integer cycles through the four transforms.
    max_context_rows : int, default=1000
        Larger tables: each view uses a stratified subsample of this many rows.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes (scikit-learn's meaning), multiplying ``fit``'s
        ``sample_weight``: the views' contexts are drawn by the weights (see :meth:`fit`).
    categorical_features, feature_types, coerce_numeric, min_frequency
        How columns are read, as for every estimator (:class:`~tabular_suite.data.features.DataParams`);
        dates and text become numeric features.
    weights : str, PFNTransformer or None, default=None
        Path of a weights file made by ``tabular-suite pfn export`` (or a model in memory,
        e.g. during pre-training); None = the weights shipped with the package.
    softmax_temperature : float, default=0.9
        Logits are divided by it before the softmax (as TabPFN).
    batch_rows : int, default=1024
        Test rows per forward chunk (memory grows linearly with it).
    precision : {"auto", "bf16", "fp32"}, default="auto"
        "auto": bf16 autocast on CUDA and on CPUs with bf16 instructions (AVX512-BF16 or AMX:
        there, on the CC18-style benchmark datasets of benchmarks/pfn.py, the mean ROC AUC
        matches fp32 in less time; figures in benchmarks/RESULTS.md), fp32 on other CPUs, where
        bf16 is emulated (on an AVX2-only EPYC, one thread, fit + predict of a 1,000 x 100 table:
        fp32 1.5 s, bf16 24 s, the same ROC AUC). "bf16" forces it, "fp32" turns it off.
    device, num_threads, random_state
        As for every estimator; ``random_state`` seeds the views.

    Attributes
    ----------
    n_views_ : int
        Views in the ensemble.
    view_transforms_ : tuple of str
        Each view's feature transform ("none", "power", "quantile" or "rotation").
    transform_weights_ : dict or None
        The transforms' mixture weights scored on the table (see ``n_estimators``); None
        when the views cycle through the transforms.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = TabPFNClassifier(num_threads=1, random_state=0).fit(X[::2], y[::2])
    >>> round(clf.score(X[1::2], y[1::2]), 2) >= 0.9
    True
    """

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        return self._label_encoder.transform(y)

    def _target_state(self) -> dict:
        return self._label_encoder.get_state()

    def _restore_target(self, state: dict) -> None:
        self._label_encoder = LabelEncoder.from_state(state)
        self.classes_ = self._label_encoder.classes_

    def _combine(self, probs: np.ndarray) -> np.ndarray:
        # Each view predicts its model labels; read every class's probability through the
        # view's map (a permutation, or a code book shared by several classes).
        per_view = np.stack([p[:, v.label_map] for p, v in zip(probs, self._views)])
        if len(self.classes_) <= probs.shape[-1] and all(
            len(np.unique(v.label_map)) == len(v.label_map) for v in self._views
        ):
            proba = per_view.mean(0)
        else:
            proba = np.exp(np.log(np.clip(per_view, 1e-12, None)).mean(0))
        return proba / proba.sum(1, keepdims=True)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        return self._predict_distribution(X)

    def predict(self, X) -> np.ndarray:
        """Most probable class for each row, as a value of ``classes_``."""
        proba = self.predict_proba(X)  # checks the fit first
        return self.classes_[np.argmax(proba, axis=1)]


@dataclass(kw_only=True, repr=False, eq=False)
class TabPFNRegressor(RegressorMixin, _InContextEstimator):
    """In-context regressor: predicts a distribution over the target (mean, median, quantiles).

    The target is standardised on the training rows; the model outputs probabilities over
    bins of the standardised target, averaged over the ensemble views. ``predict`` returns
    the mean, :meth:`predict_quantiles` any quantiles. Parameters as
    :class:`TabPFNClassifier` (no ``softmax_temperature`` effect on the bins' order).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3)); y = X[:, 0] * 2 + rng.normal(0, 0.1, 300)
    >>> reg = TabPFNRegressor(num_threads=1, random_state=0).fit(X[:200], y[:200])
    >>> reg.predict_quantiles(X[200:203], [0.1, 0.5, 0.9]).shape
    (3, 3)
    """

    _regression: ClassVar[bool] = True
    softmax_temperature: float = 1.0

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        self._target_scaler = TargetScaler().fit(y)
        return self._target_scaler.transform(y).astype(np.float32)

    def _target_state(self) -> dict:
        return self._target_scaler.get_state()

    def _restore_target(self, state: dict) -> None:
        self._target_scaler = TargetScaler.from_state(state)

    def _borders(self) -> torch.Tensor:
        return self._pfn()[0].bin_borders.double().cpu()

    def predict(self, X) -> np.ndarray:
        """Mean of the predicted distribution, in the units of the training target."""
        probs = torch.from_numpy(self._predict_distribution(X))
        return self._target_scaler.inverse_transform(bar_mean(probs, self._borders()).numpy())

    def predict_quantiles(self, X, quantiles=(0.1, 0.5, 0.9)) -> np.ndarray:
        """Quantiles of the predicted distribution, shape (n_samples, len(quantiles))."""
        quantiles = list(quantiles)
        if not all(0 < q < 1 for q in quantiles):
            raise ValueError(f"quantiles must lie strictly between 0 and 1, got {quantiles!r}.")
        probs = torch.from_numpy(self._predict_distribution(X))
        borders = self._borders()
        out = np.stack([bar_quantile(probs, borders, q).numpy() for q in quantiles], axis=1)
        return self._target_scaler.inverse_transform(out.ravel()).reshape(out.shape)


register_model(
    "tabpfn",
    "In-context transformer pre-trained on a synthetic prior (TabPFN-style; shipped weights)",
    classifier=TabPFNClassifier,
    regressor=TabPFNRegressor,
    family="in-context",
    presets=("fast", "best"),
)
