"""The sklearn layer shared by every tabular estimator: validate -> preprocess -> build -> train."""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ..core.model_file import build_checked, estimator_config, load, write_model_file
from ..core.params import param, params_doc
from ..core.sklearn_glue import derive_seed, module_on_cpu, resolve_num_threads, table_tags
from ..data.features import DataParams
from ..data.io import as_1d_array, as_dataframe
from ..data.preprocess import LabelEncoder, TablePreprocessor, TargetScaler, restore_table_state, table_state
from ..data.validation import prepare_fit, prepare_frame, row_weights
from ..nn.num_embeddings import PiecewiseLinearEmbeddings
from ..training.engine import (
    ChunkedData,
    Objective,
    TrainConfig,
    TrainingParams,
    fit_module,
    predict_module,
    seeded,
    weighted_average,
    weighted_mean,
)

__all__ = ["TabularEstimator", "TabularClassifierMixin", "TabularRegressorMixin", "holdout_split"]

# Fewer rows than this: no validation split (nothing meaningful to early-stop on).
MIN_ROWS_FOR_VALIDATION = 20


def holdout_split(target, fraction: float, seed: int, *, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row positions ``(kept, held_out)``: ``fraction`` of the rows held out (for early stopping),
    at random with ``seed``; ``stratify`` (classes): each class in its share, where every class
    has at least two rows and the hold-out has room for one of each, and in any case every class
    keeps a row (a class's only row is never held out).

    >>> kept, held = holdout_split(np.array([0, 1] * 10), 0.2, seed=0, stratify=True)
    >>> len(kept), sorted(np.array([0, 1] * 10)[held].tolist())
    (16, [0, 0, 1, 1])
    >>> y = np.array([0] * 30 + [1])  # one row of class 1: it stays
    >>> all(31 - 1 not in holdout_split(y, 0.5, seed, stratify=True)[1] for seed in range(20))
    True
    """
    target = np.asarray(target)
    strata = None
    if stratify:
        counts = np.unique(target, return_counts=True)[1]
        if counts.min() >= 2 and int(round(fraction * len(target))) >= len(counts):
            strata = target
    kept, held = train_test_split(
        np.arange(len(target)), test_size=fraction, random_state=seed % (2**31), stratify=strata
    )
    if stratify:
        lost = ~np.isin(target[held], target[kept])  # rows of classes the kept share lacks
        if lost.any():
            kept, held = np.concatenate([kept, held[lost]]), held[~lost]
    return kept, held


@dataclass(kw_only=True, repr=False, eq=False)
class TabularEstimator(BaseEstimator, DataParams, TrainingParams):
    """Base class of the tabular estimators (not used directly).

    The data settings come from :class:`~tabular_suite.data.features.DataParams` and the
    training settings and their defaults from :class:`TrainingParams`. A subclass
    also inherits its architecture's config dataclass (the module's hyperparameters, with
    their defaults) and sets ``_module_cls``, the module it builds: every field of
    ``_module_cls.config_class`` is passed to the module's constructor. A subclass may
    override a default (a model's own training recipe) or add estimator-only fields, each
    declared once with :func:`~tabular_suite.core.params.param`; :func:`estimator_doc`
    renders the parameter docs from those declarations.
    """

    numeric_scaling: str = param(
        "quantile",
        "Scaling of numeric columns, fitted on the training data (quantile = to a normal).",
        type='{"quantile", "standard", "none"}',
    )
    validation_fraction: float = param(
        0.1,
        "Share of the training rows held out for early stopping when no ``eval_set`` is given to ``fit`` "
        "(stratified for classifiers). 0 disables the split.",
    )
    random_state: Any = param(
        None,
        "Seeds initialisation, the validation split, shuffling and dropout: two fits with the same integer "
        "are bit-identical on CPU.",
        type="int, RandomState or None",
    )
    class_weight: Any = param(
        None,
        'Classifiers: ``"balanced"`` (weights inversely proportional to the class frequencies) or '
        "``{class: weight}`` (classes not named weigh 1), multiplying ``fit``'s ``sample_weight`` in the "
        "training and validation losses. Regressors: None.",
        type='dict, "balanced" or None',
    )
    monitor: str = param(
        "loss",
        'What early stopping and the best epoch kept follow on the validation rows: "loss" or "score" '
        "(accuracy for classifiers, RMSE for regressors; weighted as the loss). AutoInt and FinalMLP follow "
        "validation ROC AUC on binary targets either way (FuxiCTR's criterion).",
        type='{"loss", "score"}',
    )
    verbose: int = param(0, "1 shows a progress bar with the losses.")
    callbacks: Any = param(
        None,
        "Extra :class:`~tabular_suite.training.Callback` objects called by the engine.",
        type="list of Callback or None",
    )
    tracking: bool | None = param(
        None,
        "Log the fit to MLflow (params, per-epoch metrics, system info, the model). None follows "
        ":func:`tabular_suite.tracking.autolog`; True/False force it on/off.",
    )

    _module_cls: ClassVar[type]

    # ----------------------------------------------------------- sklearn tags
    def __sklearn_tags__(self):
        return table_tags(super().__sklearn_tags__())

    @property
    def feature_types_(self) -> dict:
        """The kind of each input column decided at fit: numeric, categorical, boolean, datetime
        (``"datetime:<format>"`` for strings) or text; set ``feature_types`` to override."""
        check_is_fitted(self, "preprocessor_")
        return dict(self.preprocessor_.feature_types_)

    # ------------------------------------------------------------- validation
    def _prepare_frame(self, X, *, reset: bool) -> tuple[pd.DataFrame, bool]:
        return prepare_frame(self, X, reset=reset)

    def _check_params(self) -> None:
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}.")
        if self.class_weight is not None and not is_classifier(self):
            raise ValueError(
                f"class_weight is for classifiers; {type(self).__name__} predicts values: leave it None "
                "(weight rows with fit's sample_weight)."
            )

    def _train_config(self, seed: int, n_train: int) -> TrainConfig:
        return TrainConfig.from_params(
            self,
            batch_size=self._batch_size(n_train),
            num_threads=resolve_num_threads(self.num_threads),
            seed=seed,
            verbose=self.verbose,
            monitor=self.monitor,
        )

    def _batch_size(self, n_train: int) -> int:
        """The batch size for ``n_train`` training rows (models may derive it from the data)."""
        return self.batch_size

    def _init_module(self, module, prepared, target, train_idx, seed: int) -> None:
        """Data-dependent set-up of a freshly built module: the bins of piecewise-linear numeric
        embeddings from the training rows (models add e.g. feature ordering)."""
        for encoder in module.modules():
            if isinstance(encoder, PiecewiseLinearEmbeddings):
                encoder.fit(prepared.x_num[train_idx], target[train_idx], regression=not is_classifier(self))

    def _train_loss(self):
        """An optional ``Objective.train_loss`` (batch strategy); None = plain loss."""
        return None

    def _validator(self, valid, valid_weight=None):
        """An optional ``Objective.evaluate`` on the validation tensors (and the rows' weights);
        None = validation loss."""
        return None

    def _training_objective(self, valid=None, valid_weight=None) -> Objective:
        """What the engine minimises: the task's loss, the model's batch strategy and validator."""
        objective = self._objective()
        objective.train_loss = self._train_loss()
        objective.evaluate = self._validator(valid, valid_weight)
        return objective

    def _combine_outputs(self, out: torch.Tensor) -> torch.Tensor:
        """The module's outputs as one prediction per row (identity; TabM averages its members)."""
        return out

    def _module_kwargs(self) -> dict:
        """The module's hyperparameters: this estimator's values of the module's config fields."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self._module_cls.config_class)}

    def _build_module(self, n_num: int, cardinalities: list[int], d_out: int) -> torch.nn.Module:
        return self._module_cls(n_num=n_num, cardinalities=list(cardinalities), d_out=d_out, **self._module_kwargs())

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None, eval_set=None):
        """Fit the model.

        Parameters
        ----------
        X : pandas/polars DataFrame, pyarrow Table or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            A weight >= 0 per row (with ``class_weight``, multiplied by its class's weight):
            each row's loss counts in proportion, in training and in the validation loss that
            early stopping follows; a weight of 2 counts like the row twice (in expectation:
            the batches are drawn uniformly). Weights are scaled to mean 1, so the learning
            rate keeps its meaning.
        eval_set : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Validation data for early stopping; replaces the internal validation split.

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 1).astype(int)
        >>> clf = tabular_suite.MLPClassifier(class_weight="balanced", max_epochs=5, num_threads=1, random_state=0)
        >>> clf.fit(X, y, sample_weight=np.where(X[:, 1] > 0, 2.0, 1.0)).predict(X).shape
        (200,)
        """
        return self._tracked_fit(
            lambda: X if isinstance(X, (pd.DataFrame, np.ndarray)) else as_dataframe(X),
            lambda callbacks: self._fit(X, y, sample_weight, eval_set, callbacks),
        )

    def _tracked_fit(self, sample, fit):
        """``fit(extra_callbacks)``, tracked in MLflow when tracking is on (``sample()``: rows of the
        input, the logged model's example). A fit that fails (an error, Ctrl-C) leaves the
        estimator as it was."""
        from ..tracking import tracked_fit, tracking_enabled

        before = dict(self.__dict__)
        try:
            if not tracking_enabled(self):
                return fit(())
            with tracked_fit(self, sample(), resolve_num_threads(self.num_threads)) as callback:
                return fit((callback,) if callback else ())
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit_seed(self) -> int:
        """The fit's seed (:func:`derive_seed`); with ``random_state=None`` and a checkpoint to resume,
        the seed of the fit that wrote it: the same validation rows, batch order and dropout."""
        if self.random_state is None and self.checkpoint:
            from ..training.engine import checkpoint_seed

            seed = checkpoint_seed(self.checkpoint)
            if seed is not None:
                return int(seed)
        return derive_seed(self.random_state)

    def _fit(self, X, y, sample_weight, eval_set, extra_callbacks: tuple):
        self._check_params()
        df, from_numpy, y = prepare_fit(self, X, y)
        weights = row_weights(self, y, sample_weight, self.class_weight)
        self._seed = seed = self._fit_seed()
        self._fit_columns = list(df.columns)

        self.preprocessor_ = TablePreprocessor.from_params(self, self.numeric_scaling, seed)
        prepared = self.preprocessor_.fit_transform(df, from_numpy=from_numpy)
        target = self._fit_target(y)

        train_idx, valid, valid_weight = np.arange(len(target)), None, None
        if eval_set is not None:
            X_val, y_val, *w_val = eval_set
            y_val = as_1d_array(y_val, name="eval_set y")
            v_df, _ = self._prepare_frame(X_val, reset=False)
            v_prep = self.preprocessor_.transform(v_df)
            valid = self._tensors(v_prep, self._encode_target(y_val))
            v_weights = row_weights(self, y_val, w_val[0] if w_val else None, self.class_weight)
            valid_weight = None if v_weights is None else _weight_tensor(v_weights)
        elif self.validation_fraction > 0 and len(target) >= MIN_ROWS_FOR_VALIDATION:
            train_idx, valid_idx = self._split(target, seed)
            valid = self._tensors(prepared, target, valid_idx)
            valid_weight = None if weights is None else _weight_tensor(weights[valid_idx])
        train = self._tensors(prepared, target, train_idx)
        train_weight = None if weights is None else _weight_tensor(weights[train_idx])
        if weights is not None and train_weight is None:
            raise ValueError("Every training row has weight zero (the rest were held out for validation).")

        config = self._train_config(seed, n_train=len(train_idx))
        with seeded(seed, config.device):
            module = self._build_module(self.preprocessor_.n_numeric_out, self.preprocessor_.cardinalities, self._d_out)
            self._init_module(module, prepared, target, train_idx, seed)
            callbacks = list(self.callbacks or ()) + list(extra_callbacks)
            objective = self._training_objective(valid, valid_weight)
            state = fit_module(
                module, train, objective, config, valid, callbacks, train_weight=train_weight, valid_weight=valid_weight
            )
        return self._trained(module, state)

    def _trained(self, module: torch.nn.Module, state) -> TabularEstimator:
        """Keep what ``fit_module`` trained (``state``: its result) as the fitted model."""
        self.module_ = module
        self.history_ = state.history
        self.best_epoch_ = state.best_epoch
        self.n_params_ = sum(p.numel() for p in module.parameters())
        self._epochs_done = len(state.history)
        self.__dict__.pop("_train_state", None)  # a new fit: partial_fit starts a new optimizer
        return self

    def _split(self, target: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return holdout_split(target, self.validation_fraction, seed, stratify=is_classifier(self))

    @staticmethod
    def _tensors(prepared, target: np.ndarray | None = None, idx: np.ndarray | None = None) -> list[torch.Tensor]:
        x_num, x_cat = prepared.x_num, prepared.x_cat
        if idx is not None:
            x_num, x_cat, target = x_num[idx], x_cat[idx], target[idx]
        out = [torch.from_numpy(np.ascontiguousarray(x_num)), torch.from_numpy(np.ascontiguousarray(x_cat))]
        if target is not None:
            out.append(torch.from_numpy(np.ascontiguousarray(target)))
        return out

    # ---------------------------------------------------------- out of core
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one pass over the chunk ``(X, y)``, continuing from earlier calls.

        The first call (on an unfitted estimator) fits the preprocessing on its chunk
        (categories first seen later map to the "unknown" id) and builds the model;
        ``classes`` must then list every label of the whole stream if the chunk lacks some.
        The optimizer state carries over between calls; the learning rate stays at ``lr``
        and there is no early stopping. ``sample_weight`` weighs the chunk's rows as in
        :meth:`fit` (``class_weight`` too, from the chunk's classes when "balanced"). For
        Parquet files see :meth:`fit_parquet`.

        Examples
        --------
        >>> import numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(200, 3))
        >>> clf = tabular_suite.MLPClassifier(num_threads=1, random_state=0)
        >>> for rows in np.array_split(np.arange(200), 4):
        ...     clf = clf.partial_fit(X[rows], X[rows, 0] > 0, classes=[False, True])
        >>> len(clf.history_)
        4
        """
        first = not hasattr(self, "module_")
        if first:
            self._check_params()
        df, from_numpy = self._prepare_frame(X, reset=first)
        y = as_1d_array(y)
        if y.shape[0] != df.shape[0]:
            raise ValueError(f"X has {df.shape[0]} rows but y has {y.shape[0]}: they must match.")
        if first:
            self._seed = derive_seed(self.random_state)
            self._fit_columns = list(df.columns)
            self.preprocessor_ = TablePreprocessor.from_params(self, self.numeric_scaling, self._seed)
            self.preprocessor_.fit(df, from_numpy=from_numpy)
            self._fit_target(np.asarray(classes) if classes is not None else y)
        prepared = self.preprocessor_.transform(df)
        target = self._encode_target(y)
        weights = row_weights(self, y, sample_weight, self.class_weight, getattr(self, "classes_", None))
        if first:
            with seeded(self._seed, self.device):
                self.module_ = self._build_module(
                    self.preprocessor_.n_numeric_out, self.preprocessor_.cardinalities, self._d_out
                )
                self._init_module(self.module_, prepared, target, np.arange(len(target)), self._seed)
        state = self.__dict__.get("_train_state")
        # The random stream continues where the last partial_fit, or the fit, left it: the pass after
        # k epochs in all shuffles with seed + k and draws dropout from seed + k (the engine adds the
        # epochs of a carried-over optimizer state to config.seed itself).
        epochs_done = self.__dict__.get("_epochs_done", 0 if first else len(self.history_))
        config = self._train_config(self._seed + epochs_done - (state.epoch if state is not None else 0), len(target))
        config.max_epochs, config.patience, config.scheduler, config.warmup_epochs = 1, None, "constant", 0.0
        with seeded(self._seed + epochs_done, config.device):
            state = fit_module(
                self.module_,
                self._tensors(prepared, target),
                self._training_objective(),
                config,
                callbacks=list(self.callbacks or ()),
                state=state,
                train_weight=None if weights is None else _weight_tensor(weights),
            )
        self._train_state, self._epochs_done = state, epochs_done + 1
        self.history_, self.best_epoch_ = state.history, state.epoch
        self.n_params_ = sum(p.numel() for p in self.module_.parameters())
        return self

    def fit_parquet(
        self,
        path,
        target: str,
        *,
        batch_rows: int = 262_144,
        validation_rows: int = 100_000,
        sample_rows: int = 200_000,
    ):
        """Fit from a Parquet file or a folder of Parquet files too large for memory.

        A first pass over the data fits the preprocessing (categories over all rows,
        numeric scalers on a uniform sample of ``sample_rows`` rows) and the target
        encoding, and keeps up to ``validation_rows`` random rows (at most
        ``validation_fraction`` of the data) for early stopping. Each epoch then reads the
        row groups in a new random order, ``batch_rows`` rows at a time, shuffling rows
        within each batch. Memory stays at about one batch plus the samples and the
        category vocabularies, whatever the file size. ``history_`` records rows/second. A
        tracked fit (``tracking=True`` or :func:`~tabular_suite.tracking.autolog`) is logged as
        :meth:`fit`'s is, the model's input example read from the file's first rows.

        Examples
        --------
        >>> import tempfile, numpy as np, pandas as pd, tabular_suite
        >>> df = pd.DataFrame({"x": np.arange(300.0), "y": np.arange(300) % 2})
        >>> path = tempfile.mkdtemp() + "/data.parquet"
        >>> df.to_parquet(path, row_group_size=100)
        >>> clf = tabular_suite.MLPClassifier(max_epochs=2, num_threads=1).fit_parquet(path, "y", batch_rows=64)
        >>> clf.classes_.tolist()
        [0, 1]
        """
        from ..data.io import ParquetSource

        self._check_params()
        source = ParquetSource(path, batch_rows=batch_rows)
        if target not in source.columns:
            raise ValueError(f"Target column {target!r} is not in {path} (columns: {', '.join(source.columns[:20])}).")
        return self._tracked_fit(
            lambda: source.head(5).drop(columns=[target]),  # (a few rows read alone, not a training batch)
            lambda callbacks: self._fit_parquet(source, target, validation_rows, sample_rows, callbacks),
        )

    def _fit_parquet(self, source, target: str, validation_rows: int, sample_rows: int, extra_callbacks: tuple):
        self._seed = seed = self._fit_seed()
        rng = np.random.default_rng(seed)
        n_valid = min(validation_rows, int(self.validation_fraction * source.n_rows))
        valid_idx = np.sort(rng.choice(source.n_rows, n_valid, replace=False)) if n_valid > 0 else np.zeros(0, np.int64)

        # Pass 1: schema, preprocessing, target encoding, validation rows, a first training sample.
        held, first_rows, labels = [], None, set()
        moments = np.zeros(3)  # count, sum, sum of squares of a regression target

        def features(epoch_batches):
            nonlocal first_rows
            for offset, batch in epoch_batches:
                y = as_1d_array(batch.pop(target))
                in_valid = _in_sorted(offset + np.arange(len(batch)), valid_idx)
                if in_valid.any():
                    held.append((batch[in_valid], y[in_valid]))
                if is_classifier(self):
                    labels.update(pd.unique(y).tolist())
                else:
                    y = TargetScaler._as_float(y)
                    if not np.isfinite(y).all():
                        raise ValueError(
                            f"The target column {target!r} contains NaN or infinite values: drop or fix those rows."
                        )
                    moments[:] += (len(y), y.sum(), (y**2).sum())
                if first_rows is None:
                    first_rows = (batch[~in_valid].iloc[:50_000], y[~in_valid][:50_000])
                yield batch

        def first_pass():
            for i, (offset, batch) in enumerate(source.batches()):
                self._prepare_frame(batch.drop(columns=[target]), reset=i == 0)
                yield offset, batch

        self.preprocessor_ = TablePreprocessor.from_params(self, self.numeric_scaling, seed)
        self._fit_columns = [c for c in source.columns if c != target]
        self.preprocessor_.fit_batches(features(first_pass()), sample_rows=sample_rows)
        if is_classifier(self):
            self._fit_target(np.asarray(list(labels)))
        else:
            count, total, squares = moments
            self._target_scaler = TargetScaler()
            self._target_scaler.mean_ = float(total / count)
            std = float(np.sqrt(max(squares / count - (total / count) ** 2, 0.0)))
            self._target_scaler.scale_ = std if std > 0 else 1.0

        def prepare(batch: pd.DataFrame) -> list[torch.Tensor]:
            y = as_1d_array(batch.pop(target))
            return self._tensors(self.preprocessor_.transform(batch), self._encode_target(y))

        valid = None
        if held:
            v_df = pd.concat([b for b, _ in held])
            valid = self._tensors(
                self.preprocessor_.transform(v_df), self._encode_target(np.concatenate([y for _, y in held]))
            )
        train = _ParquetChunks(source, prepare, valid_idx, seed)
        config = self._train_config(seed, n_train=train.n_rows)
        with seeded(seed, config.device):
            module = self._build_module(self.preprocessor_.n_numeric_out, self.preprocessor_.cardinalities, self._d_out)
            sample = self.preprocessor_.transform(first_rows[0])
            self._init_module(module, sample, self._encode_target(first_rows[1]), np.arange(len(first_rows[1])), seed)
            objective = self._training_objective(valid)
            callbacks = list(self.callbacks or ()) + list(extra_callbacks)
            state = fit_module(module, train, objective, config, valid, callbacks)
        return self._trained(module, state)

    # --------------------------------------------------------------- predict
    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "module_")
        df, _ = self._prepare_frame(X, reset=False)
        prepared = self.preprocessor_.transform(df)
        out = predict_module(
            self.module_,
            self._tensors(prepared),
            device=self.device,
            precision=self.precision,
            num_threads=self.num_threads,
        )
        return self._combine_outputs(out).numpy().astype(np.float64)

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # (a copy: scikit-learn's is the live __dict__)
        state.pop("_train_state", None)  # partial_fit's optimizer: a pickle restarts it
        return module_on_cpu(state)

    def save(self, path) -> None:
        """Save the fitted estimator to one file (weights + JSON config, no pickle).

        Examples
        --------
        >>> import tempfile, numpy as np, tabular_suite
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> est = tabular_suite.MLPRegressor(max_epochs=2, num_threads=1).fit(X, X[:, 0])
        >>> est.save(tempfile.mkdtemp() + "/model.tsm")
        """
        write_model_file(path, *self._to_state())

    def _to_state(self) -> tuple[dict, dict]:
        """(JSON-able config, tensors) describing the fitted estimator; see :func:`load`."""
        check_is_fitted(self, "module_")
        fitted, tensors = table_state(self)
        fitted.update(
            module={
                "n_num": self.preprocessor_.n_numeric_out,
                "cardinalities": self.preprocessor_.cardinalities,
                "d_out": self._d_out,
            },
            history=self.history_,
            best_epoch=self.best_epoch_,
            seed=self._seed,
        )
        config = estimator_config(self, fitted)
        tensors.update({f"module.{k}": v for k, v in self.module_.state_dict().items()})
        return config, tensors

    @classmethod
    def load(cls, path) -> TabularEstimator:
        """Load an estimator saved with :meth:`save` (see :func:`tabular_suite.load`)."""
        est = load(path)
        if not isinstance(est, cls):
            raise ValueError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}.")
        return est

    @classmethod
    def _from_state(cls, config: dict, tensors: dict) -> TabularEstimator:
        fitted = config["fitted"]
        params = dict(config["params"])
        for f in dataclasses.fields(cls):  # JSON stores tuples (layer widths) as lists
            if isinstance(f.default, tuple) and isinstance(params.get(f.name), list):
                params[f.name] = tuple(params[f.name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = cls(**params)
        restore_table_state(est, fitted, tensors)
        m = fitted["module"]
        module = build_checked(
            lambda: est._build_module(m["n_num"], m["cardinalities"], m["d_out"]),
            {"module": m, "architecture": est._module_kwargs()},
            {k[7:]: v for k, v in tensors.items() if k.startswith("module.")},
            source=f"the {cls.__name__} file",
        )
        est.module_ = module.eval()
        est.history_ = fitted["history"]
        est.best_epoch_ = fitted["best_epoch"]
        est._seed = fitted["seed"] if "seed" in fitted else derive_seed(est.random_state)  # files before 0.1.0+
        est.n_params_ = sum(p.numel() for p in module.parameters())
        return est


def estimator_doc(summary: str, params_cls: type, examples: str) -> str:
    """An estimator's docstring: ``summary``, the parameters of ``params_cls`` and ``examples``.

    The parameters are rendered from their declarations (:func:`~tabular_suite.core.params.params_doc`):
    first the model's own (its architecture's config fields, then any estimator-only ones), then
    those every tabular estimator shares, each with the default ``params_cls`` gives it.
    ``examples`` is the body of the Examples section, indented for a class docstring.
    """
    shared = {f.name for f in dataclasses.fields(TabularEstimator)}
    own = {f.name for f in dataclasses.fields(params_cls)} - shared
    return (
        f"{summary}\n\n    Parameters\n    ----------\n{params_doc(params_cls, skip=shared)}\n"
        f"{params_doc(params_cls, skip=own)}\n\n    Examples\n    --------\n{examples}"
    )


def _in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Boolean mask: which ``values`` are in the sorted array ``sorted_set``."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_set, values).clip(max=len(sorted_set) - 1)
    return sorted_set[pos] == values


class _ParquetChunks(ChunkedData):
    """Training rows of a :class:`ParquetSource` (validation rows left out), row groups in a
    new random order every epoch."""

    def __init__(self, source, prepare, exclude: np.ndarray, seed: int):
        self.source, self.prepare, self.exclude, self.seed = source, prepare, exclude, seed
        self.n_rows = source.n_rows - len(exclude)

    def chunks(self, epoch: int):
        order = np.random.default_rng([self.seed, epoch]).permutation(self.source.n_units)
        rank, world = self.shard
        if self.source.n_units < world:
            raise ValueError(
                f"The Parquet data has {self.source.n_units} row group(s), fewer than the {world} processes "
                "training on it: write it with smaller row groups (e.g. row_group_size=100_000)."
            )
        for offset, batch in self.source.batches(order[rank::world]):  # this rank's row groups
            keep = ~_in_sorted(offset + np.arange(len(batch)), self.exclude)
            if keep.any():
                yield self.prepare(batch[keep] if not keep.all() else batch)


def _weight_tensor(weights: np.ndarray) -> torch.Tensor | None:
    """The rows' weights scaled to mean 1 over these rows (a validation loss is then the
    weighted average of its rows' losses); None when they are all 0 (a validation split
    holding only rows of weight 0 is scored unweighted)."""
    total = float(np.sum(weights))
    if not total > 0:
        return None
    return torch.from_numpy(np.ascontiguousarray(weights * (len(weights) / total), dtype=np.float32))


class TabularClassifierMixin(ClassifierMixin):
    """Classification behaviour: label encoding, BCE/CE losses, ``predict_proba``."""

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        codes = self._label_encoder.transform(y)
        return codes.astype(np.float32) if len(self.classes_) == 2 else codes

    @property
    def _d_out(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    def _objective(self) -> Objective:
        if len(self.classes_) == 2:

            def loss(out, y, weight=None):
                if weight is not None:
                    return weighted_mean(F.binary_cross_entropy_with_logits(out[:, 0], y, reduction="none"), weight)
                return F.binary_cross_entropy_with_logits(out[:, 0], y)

            def accuracy(out, y, weight=None):
                return weighted_average(((out[:, 0] > 0).float() == y).float(), weight)
        else:

            def loss(out, y, weight=None):
                if weight is not None:
                    return weighted_mean(F.cross_entropy(out, y, reduction="none"), weight)
                return F.cross_entropy(out, y)

            def accuracy(out, y, weight=None):
                return weighted_average((out.argmax(1) == y).float(), weight)

        return Objective(loss, accuracy, "accuracy", higher_is_better=True)

    def _sample_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(self.classes_) == 2:
            return F.binary_cross_entropy_with_logits(out[:, 0], y, reduction="none")
        return F.cross_entropy(out, y, reduction="none")

    def _target_state(self) -> dict:
        return self._label_encoder.get_state()

    def _restore_target(self, state: dict) -> None:
        self._label_encoder = LabelEncoder.from_state(state)
        self.classes_ = self._label_encoder.classes_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        out = self._forward(X)
        if len(self.classes_) == 2:
            p = 1.0 / (1.0 + np.exp(-out[:, 0]))
            return np.column_stack([1.0 - p, p])
        out -= out.max(axis=1, keepdims=True)
        proba = np.exp(out)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Most probable class for each row, as a value of ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class TabularRegressorMixin(RegressorMixin):
    """Regression behaviour: standardized target, MSE loss, predictions in original units."""

    _d_out = 1

    def _fit_target(self, y: np.ndarray) -> np.ndarray:
        self._target_scaler = TargetScaler().fit(y)
        return self._encode_target(y)

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        return self._target_scaler.transform(y).astype(np.float32)

    def _objective(self) -> Objective:
        scale = self._target_scaler.scale_

        def loss(out, y, weight=None):
            if weight is not None:
                return weighted_mean((out[:, 0] - y) ** 2, weight)
            return F.mse_loss(out[:, 0], y)

        def rmse(out, y, weight=None):
            return weighted_average((out[:, 0] - y) ** 2, weight) ** 0.5 * scale

        return Objective(loss, rmse, "rmse", higher_is_better=False)

    def _sample_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (out[:, 0] - y) ** 2

    def _target_state(self) -> dict:
        return self._target_scaler.get_state()

    def _restore_target(self, state: dict) -> None:
        self._target_scaler = TargetScaler.from_state(state)

    def predict(self, X) -> np.ndarray:
        """Predicted values in the units of the training target."""
        out = self._forward(X)
        return self._target_scaler.inverse_transform(out[:, 0])
