"""Next-item recommendation: interaction logs -> item sequences, SASRec, ranking metrics."""

from . import metrics
from .interactions import ItemSequences, check_interaction_columns, interaction_sequences
from .metrics import leave_one_out_split, ranking_metrics
from .recommender import SASRecRecommender

__all__ = [
    "SASRecRecommender",
    "ItemSequences",
    "check_interaction_columns",
    "interaction_sequences",
    "leave_one_out_split",
    "ranking_metrics",
    "metrics",
]
