"""Architectures: pure ``torch.nn.Module`` classes, one per file with its config dataclass (the
defaults). Tabular models take ``forward(x_num, x_cat)``; :mod:`.sasrec` item sequences;
:mod:`.pfn` a context table. Shared pieces: :mod:`.embeddings`, :mod:`.num_embeddings` (numeric
feature embeddings), :mod:`.blocks` and the native
CPU attention kernel (:mod:`.native`)."""

from .activator import Activator
from .excelformer import ExcelFormer
from .ft_transformer import FTTransformer
from .hourglass import HourglassMLP
from .kan import KAN
from .mlp import MLP
from .resnet import ResNet
from .tabm import TabM

__all__ = ["MLP", "ResNet", "FTTransformer", "ExcelFormer", "TabM", "Activator", "HourglassMLP", "KAN"]
