"""The feature transforms of the in-context model's views, each fitted on the context with all
columns at once: Yeo-Johnson power, quantile-to-normal and a rotation onto principal axes."""

from __future__ import annotations

import numpy as np

from ..data.preprocess import quantile_normal

__all__ = ["TRANSFORMS", "YeoJohnson", "QuantileNormal", "Rotation", "yeo_johnson"]

#: The view transforms, in the order the views cycle through them ("none" = values as they are).
TRANSFORMS = ("none", "power", "quantile", "rotation")
_NORMAL_BOUND = quantile_normal(np.array([-np.inf, np.inf]), np.array([0.0, 1.0]))  # about -+5.2


def yeo_johnson(log1p_abs: np.ndarray, sign: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Yeo-Johnson transform given ``log1p(|x|)`` and ``sign`` (+1 for ``x >= 0``, else -1);
    one ``lam`` per column."""
    # x >= 0: ((x+1)^lam - 1)/lam (log1p at lam=0); x < 0: -((1-x)^(2-lam) - 1)/(2-lam).
    power = 1.0 + sign * (lam - 1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.expm1(power * log1p_abs)
        out /= power
    small = np.abs(power) < 1e-8
    if small.any():
        out[small] = log1p_abs[small]
    out *= sign
    return out


class YeoJohnson:
    """Yeo-Johnson power transform + standardisation, fitted on all columns at once.

    Maximum likelihood for each column's lambda by a grid on [-2, 3] refined to 0.025, all
    columns at once (scikit-learn's PowerTransformer optimises column by column, which
    dominated an in-context fit); NaN is ignored in the fit and kept.
    """

    def fit(self, x: np.ndarray) -> YeoJohnson:
        count = (~np.isnan(x)).sum(0).clip(min=1)
        log1p_abs, sign = np.log1p(np.abs(x)), np.where(x >= 0, 1.0, -1.0)
        log_term = np.nansum(sign * log1p_abs, axis=0)
        variance = np.nanvar if np.isnan(x).any() else np.var
        best = np.zeros(x.shape[1])
        for grid, around_best in ((np.linspace(-2, 3, 21), False), (np.linspace(-0.125, 0.125, 11), True)):
            candidates = grid[:, None] + (best if around_best else np.zeros_like(best))
            scores = np.empty((len(grid), x.shape[1]))
            for i, lam in enumerate(candidates):
                with np.errstate(all="ignore"):
                    var = variance(yeo_johnson(log1p_abs, sign, lam), axis=0)
                scores[i] = np.where(var > 0, -0.5 * count * np.log(np.where(var > 0, var, 1.0)), -np.inf)
                scores[i] += (lam - 1) * log_term
            scores[~np.isfinite(scores)] = -np.inf
            best = candidates[np.argmax(scores, axis=0), np.arange(x.shape[1])]
        self.lambdas_ = best
        with np.errstate(all="ignore"):
            z = yeo_johnson(log1p_abs, sign, best)
            self.mean_, std = np.nanmean(z, axis=0), np.nanstd(z, axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return (
                yeo_johnson(np.log1p(np.abs(x)), np.where(x >= 0, 1.0, -1.0), self.lambdas_) - self.mean_
            ) / self.scale_


class QuantileNormal:
    """Quantile-to-normal transform (scikit-learn's ``QuantileTransformer(output_distribution=
    "normal", n_quantiles=min(1000, n // 2))``), fitted on all columns at once with vectorised
    numpy (scikit-learn's works column by column); NaN is ignored and kept."""

    def fit(self, x: np.ndarray) -> QuantileNormal:
        probs = np.linspace(0.0, 1.0, max(2, min(1000, len(x) // 2)))
        ordered = np.sort(x, axis=0)  # NaN last
        count = (~np.isnan(x)).sum(0)
        # numpy's default ("linear") quantiles of each column's observed values
        position = probs[:, None] * np.maximum(count - 1, 0)
        lo = np.floor(position).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        a, b = np.take_along_axis(ordered, lo, 0), np.take_along_axis(ordered, hi, 0)
        frac = position - lo
        self.quantiles_ = np.where(count > 0, np.where(frac >= 0.5, b - (b - a) * (1 - frac), a + (b - a) * frac), 0.0)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = quantile_normal(x, self.quantiles_)
        # As scikit-learn, values at or beyond the extreme quantiles map to the bounds (ties included).
        with np.errstate(invalid="ignore"):
            out[x - 1e-7 < self.quantiles_[0]] = out.dtype.type(_NORMAL_BOUND[0])
            out[x + 1e-7 > self.quantiles_[-1]] = out.dtype.type(_NORMAL_BOUND[1])
        return out


class Rotation:
    """The context's principal axes: columns standardised (missing -> the mean) and rotated
    onto the right singular vectors, as many outputs as inputs. A view in this basis sees
    directions across correlated features, which axis-aligned views miss (on PMLB's two
    Hill-Valley tables, 100 strongly correlated columns, 3 seeds: mean ROC AUC 0.71 / 0.79 with
    every view rotated, 0.55 / 0.58 with the four transforms in turn)."""

    def fit(self, x: np.ndarray) -> Rotation:
        self.mean_ = np.nan_to_num(np.nanmean(x, axis=0))
        std = np.nan_to_num(np.nanstd(x, axis=0))
        self.scale_ = np.where(std > 0, std, 1.0)
        z = self._standardise(x)
        _, vectors = np.linalg.eigh(z.T @ z)  # the right singular vectors, ascending
        self.components_ = vectors[:, ::-1].T
        return self

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num((x - self.mean_) / self.scale_)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self._standardise(x) @ self.components_.T
