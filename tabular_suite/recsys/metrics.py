"""Next-item evaluation: leave-one-out splits and ranking metrics (HR@k, NDCG@k).

Two protocols, named in every result:

* ``"sampled"`` (SASRec paper): the true item is ranked among ``n_negatives`` (100) items
  drawn uniformly from the items the user has not interacted with;
* ``"full"``: the true item is ranked among all items, the user's earlier items excluded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .interactions import check_interaction_columns, event_times

__all__ = ["leave_one_out_split", "ranking_metrics", "PROTOCOLS", "protocol_label"]

PROTOCOLS = ("full", "sampled")


def protocol_label(protocol: str, n_negatives: int = 100) -> str:
    """A readable description of an evaluation protocol (used in every output)."""
    if protocol == "full":
        return "full ranking over all items (items seen before excluded)"
    if protocol == "sampled":
        return f"sampled: true item + {n_negatives} uniformly sampled unseen items"
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")


def leave_one_out_split(
    interactions,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split an interaction log into (train, validation, test) as in SASRec's protocol.

    For every user with at least 3 interactions, the last one (by ``time_col``, stable for
    ties, else by row order) is the test item and the second-last the validation item;
    users with fewer stay entirely in train.

    Examples
    --------
    >>> log = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 10]})
    >>> train, valid, test = leave_one_out_split(log)
    >>> len(train), valid.item_id.tolist(), test.item_id.tolist()
    (2, [11], [12])
    """
    df = check_interaction_columns(interactions, {"user": user_col, "item": item_col, "timestamp": time_col})
    df = df.reset_index(drop=True)
    if time_col is not None:  # in time, as the model orders them (text dates parsed, not sorted as text)
        df = df.iloc[np.lexsort((event_times(df[time_col]), pd.factorize(df[user_col])[0]))]
    position_from_end = df.groupby(user_col, sort=False).cumcount(ascending=False).to_numpy()
    size = df.groupby(user_col, sort=False)[item_col].transform("size").to_numpy()
    eligible = size >= 3
    test = eligible & (position_from_end == 0)
    valid = eligible & (position_from_end == 1)
    train = ~(test | valid)
    return df[train].sort_index(), df[valid].sort_index(), df[test].sort_index()


def ranking_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k from 0-based ranks of the true items (``inf`` = not ranked).

    Examples
    --------
    >>> ranks = np.array([0, 1, 20])
    >>> {k: round(v, 4) for k, v in ranking_metrics(ranks, k=10).items()}
    {'HR@10': 0.6667, 'NDCG@10': 0.5436}
    """
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("No users to evaluate.")
    hit = ranks < k
    ndcg = np.where(hit, 1.0 / np.log2(np.where(hit, ranks, 0) + 2.0), 0.0)
    return {f"HR@{k}": float(hit.mean()), f"NDCG@{k}": float(ndcg.mean())}
