"""compare()'s category encoding against scikit-learn's encoders over the values' text (issue 23).

compare()'s tree and linear baselines encode the categorical columns in every fold model, at
fit and at every prediction. They used scikit-learn's OrdinalEncoder / OneHotEncoder over the
columns turned into text (missing values as "__missing__"); they now use
``tabular_suite.data.preprocess.OrdinalCategories`` (and OneHotEncoder over its codes), which
must give the same matrices. Per table of ../shared/data/tabular with text columns: the 80/20
split of benchmarks/automl.py (seed 0), fit on the 80%, transform the 20%; whether the outputs
are identical, and the seconds (best of 3) of fit + transform for each. One thread.

    python benchmarks/category_encoding.py --data ../shared/data/tabular   # measure and update RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _results import machine, write_section  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder  # noqa: E402
from suite import datasets, load  # noqa: E402

HEADER = "## Category encoding in compare()'s baselines vs scikit-learn's encoders over text (issue 23)"
ONE_HOT = {"handle_unknown": "infrequent_if_exist", "min_frequency": 5, "max_categories": 64}


def as_text(X: pd.DataFrame) -> pd.DataFrame:
    return X.astype(object).where(X.notna(), "__missing__").astype(str)


def encoders() -> dict:
    from tabular_suite.data.preprocess import OrdinalCategories

    ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan)
    return {
        "ordinal": (make_pipeline(FunctionTransformer(as_text), ordinal), OrdinalCategories()),
        "one-hot": (
            make_pipeline(FunctionTransformer(as_text), OneHotEncoder(**ONE_HOT)),
            make_pipeline(OrdinalCategories(), OneHotEncoder(**ONE_HOT)),
        ),
    }


def seconds(encoder, fit: pd.DataFrame, new: pd.DataFrame) -> tuple[float, object]:
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        out = encoder.fit(fit).transform(new)
        best = min(best, time.perf_counter() - start)
    return best, out


def same(a, b) -> bool:
    a = a.toarray() if hasattr(a, "toarray") else a
    b = b.toarray() if hasattr(b, "toarray") else b
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("TABULAR_DATA", "../shared/data/tabular")))
    args = parser.parse_args()
    lines = [HEADER, "", __doc__.split("\n\n")[1].replace("\n", " "), ""]
    lines += [
        f"Machine: {machine()}. Command: `python benchmarks/category_encoding.py --data ../shared/data/tabular`.",
        "",
    ]
    lines += ["| dataset | rows | text columns | encoder | identical | scikit-learn over text, s | ours, s | speed-up |",
              "|---|---:|---:|---|---|---:|---:|---:|"]  # fmt: skip
    for entry in datasets(args.data).itertuples():
        X, y, _ = load(args.data, entry)
        text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if not text:
            continue
        fit, new = train_test_split(X[text], test_size=0.2, random_state=0)
        for name, (theirs, ours) in encoders().items():
            t_theirs, out_theirs = seconds(theirs, fit, new)
            t_ours, out_ours = seconds(ours, fit, new)
            lines.append(
                f"| {entry.name} | {len(X):,} | {len(text)} | {name} | {'yes' if same(out_theirs, out_ours) else 'NO'} "
                f"| {t_theirs:.3f} | {t_ours:.3f} | {t_theirs / t_ours:.1f}x |"
            )
            print(lines[-1], flush=True)
    write_section(lines)


if __name__ == "__main__":
    main()
