"""Interaction logs in, per-user item sequences out (for sequential recommenders)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.io import as_dataframe

__all__ = ["ItemSequences", "interaction_sequences", "check_interaction_columns"]


def check_interaction_columns(table, columns: dict[str, str | None], *, name: str = "interactions") -> pd.DataFrame:
    """``table`` as pandas, checked to be non-empty and to hold each named column without nulls.

    ``columns`` maps a role ("user", "item", "timestamp") to a column name (None = unused).
    """
    if isinstance(table, (str, bytes)) or hasattr(table, "__fspath__"):
        raise TypeError(f"{name} must be a table (pandas/polars/pyarrow); read files with tabular_suite.read_table().")
    df = as_dataframe(table, name=name)
    if df.shape[0] == 0:
        raise ValueError(f"The {name} table is empty: it has no rows.")
    for role, column in columns.items():
        if column is None:
            continue
        if column not in df.columns:
            raise ValueError(
                f"The {name} table has no {role} column {column!r}; its columns are {list(map(str, df.columns))}. "
                f"Set {role}_col to the right name."
            )
        missing = int(df[column].isna().sum())
        if missing:
            raise ValueError(f"Column {column!r} ({role}) of the {name} table has {missing} missing values.")
    return df


@dataclass
class ItemSequences:
    """Each user's items in order, as one CSR-style array.

    Item ids are ``1..n_items`` (0 is padding); ``items[i - 1]`` is the original value of id
    ``i``. User ``u`` (original value ``users[u]``) has ids ``item_ids[indptr[u]:indptr[u + 1]]``.

    Examples
    --------
    >>> s = interaction_sequences(pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["a", "b", "a"]}))
    >>> s.n_users, s.n_items, s.sequence(0).tolist()
    (2, 2, [1, 2])
    >>> s.windows(3).tolist()
    [[1, 2, 0], [1, 0, 0]]
    """

    users: np.ndarray
    items: np.ndarray
    indptr: np.ndarray
    item_ids: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def sequence(self, user: int) -> np.ndarray:
        return self.item_ids[self.indptr[user] : self.indptr[user + 1]]

    def windows(self, maxlen: int, *, drop_last=0, skip_first: int = 0, users: np.ndarray | None = None) -> np.ndarray:
        """The last ``maxlen`` ids of each user's sequence without its first ``skip_first``
        and last ``drop_last`` (a number or one per user), right-padded with 0: shape
        ``(len(users), maxlen)``."""
        users = np.arange(self.n_users) if users is None else np.asarray(users, dtype=np.int64)
        starts = self.indptr[users] + skip_first
        ends = self.indptr[users + 1] - drop_last
        take = np.clip(ends - starts, 0, maxlen)
        out = np.zeros((len(users), maxlen), dtype=np.int64)
        rows, cols, ids = self.spans(ends - take, take)
        out[rows, cols] = ids
        return out

    def spans(self, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row ``r`` of ``item_ids[starts[r] : starts[r] + lengths[r]]`` flattened:
        ``(row, position in row, item id)`` for every element, vectorised."""
        rows = np.repeat(np.arange(len(starts)), lengths)
        cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, cols, self.item_ids[np.repeat(starts, lengths) + cols]

    def encode_items(self, values) -> np.ndarray:
        """Ids of item values; 0 for values not in the vocabulary."""
        lookup = pd.Index(self.items)
        codes = lookup.get_indexer(pd.Index(values)) if len(values) else np.zeros(0, dtype=np.int64)
        return np.where(codes >= 0, codes + 1, 0).astype(np.int64)


def event_times(times: pd.Series) -> np.ndarray:
    """A timestamp column as values that sort in time: numbers and dates as they are, text parsed
    as dates (``"1/10/2024"`` after ``"1/9/2024"``, unlike the text); else an error naming it.

    >>> event_times(pd.Series(["1/9/2024", "1/10/2024"], name="ts")).argsort().tolist()
    [0, 1]
    """
    if pd.api.types.is_numeric_dtype(times) or pd.api.types.is_datetime64_any_dtype(times):
        return np.asarray(times)
    try:
        with warnings.catch_warnings():  # "could not infer format": parsed one by one, fine
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(pd.to_datetime(times))
    except (ValueError, TypeError):
        raise ValueError(
            f"Timestamp column {times.name!r} holds neither numbers nor dates (e.g. {times.iloc[0]!r})."
        ) from None


def interaction_sequences(
    table,
    user_col: str = "user_id",
    item_col: str = "item_id",
    time_col: str | None = None,
    items=None,
) -> ItemSequences:
    """Group an interaction table into per-user item sequences.

    Sequences are ordered by ``time_col`` (a stable sort: ties keep their row order) or,
    without one, by row order. Users and items are numbered in order of first appearance;
    ``items`` (optional) adds catalogue items without interactions at the end.
    """
    df = check_interaction_columns(table, {"user": user_col, "item": item_col, "timestamp": time_col})
    user_codes, users = pd.factorize(df[user_col], sort=False)
    item_codes, item_values = pd.factorize(df[item_col], sort=False)
    items = item_values if items is None else item_values.append(pd.Index(items).difference(item_values, sort=False))
    if time_col is not None:
        order = np.lexsort((event_times(df[time_col]), user_codes))  # lexsort is stable
    else:
        order = np.argsort(user_codes, kind="stable")
    counts = np.bincount(user_codes, minlength=len(users))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ItemSequences(
        users=np.asarray(users),
        items=np.asarray(items),
        indptr=indptr,
        item_ids=(item_codes[order] + 1).astype(np.int64),
    )
