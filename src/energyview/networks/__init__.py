"""Reference networks by name: small ones for digits, Wide ResNets for CIFAR."""

from .registry import build_network, list_networks, register_network
from .small import DigitsCNN, MLP
from .wide_resnet import WideResNet

__all__ = ["DigitsCNN", "MLP", "WideResNet", "build_network", "list_networks", "register_network"]
