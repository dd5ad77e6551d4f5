"""Tables in, tensors out: reading files and user inputs (:mod:`.io`), column roles
(:mod:`.schema`), checks against a fitted estimator (:mod:`.validation`) and the fitted
preprocessing to model tensors (:mod:`.preprocess`)."""

from .io import as_1d_array, as_dataframe, read_table
from .preprocess import LabelEncoder, PreparedTable, TablePreprocessor, TargetScaler
from .schema import Schema, infer_schema, infer_task
from .validation import prepare_fit, prepare_frame

__all__ = [
    "as_dataframe",
    "as_1d_array",
    "read_table",
    "TablePreprocessor",
    "PreparedTable",
    "LabelEncoder",
    "TargetScaler",
    "Schema",
    "infer_schema",
    "infer_task",
    "prepare_fit",
    "prepare_frame",
]
