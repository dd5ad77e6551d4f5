"""Shared fixtures (the thread settings live in the root conftest.py)."""

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)

FAST = dict(max_epochs=8, num_threads=1, random_state=0)


@pytest.fixture
def mixed_frame():
    """A small table with numeric, categorical, bool and missing values and a learnable target."""
    rng = np.random.default_rng(0)
    n = 240
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    flag = rng.random(n) > 0.5
    logit = 2 * x1 - x2 + (color == "red") * 1.5 - flag * 0.5
    df = pd.DataFrame({"x1": x1, "x2": x2, "color": color, "flag": flag})
    df.loc[::17, "x2"] = np.nan
    df.loc[::23, "color"] = None
    y_cls = np.where(logit > 0, "yes", "no")
    y_reg = 1000.0 + 250.0 * logit + rng.normal(scale=10, size=n)
    return df, y_cls, y_reg
