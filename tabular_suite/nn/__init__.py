"""Architectures: pure ``torch.nn.Module`` classes with ``forward(x_num, x_cat)``."""

from .excelformer import ExcelFormer
from .ft_transformer import FTTransformer
from .mlp import MLP
from .resnet import ResNet

__all__ = ["MLP", "ResNet", "FTTransformer", "ExcelFormer"]
