"""Tables in, tensors out: the only place that touches pandas, polars and pyarrow."""

from .io import as_1d_array, as_dataframe, read_table
from .preprocess import LabelEncoder, PreparedTable, TablePreprocessor, TargetScaler
from .schema import Schema, infer_schema, infer_task

__all__ = [
    "as_dataframe", "as_1d_array", "read_table", "TablePreprocessor", "PreparedTable",
    "LabelEncoder", "TargetScaler", "Schema", "infer_schema", "infer_task",
]
