"""LAPX network in PyTorch (training, evaluation and export only; the node never imports it)."""
from lapx_ros.model.lapx import LapxConfig, LapxNet, build_lapx

__all__ = ["LapxConfig", "LapxNet", "build_lapx"]
