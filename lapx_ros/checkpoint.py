"""Saving and safely loading training checkpoints and model files.

Everything stored is tensors and plain Python values, so ``torch.load(weights_only=True)``
can read it: a checkpoint from an untrusted source cannot run code.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lapx_ros.model import LapxConfig, LapxNet


def save_atomic(state: dict, path) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"{path} is not a readable LAPX checkpoint: {exc}") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise ValueError(f"{path} is not a LAPX checkpoint (no model or model_config)")
    return state


def load_model(path) -> tuple[LapxNet, dict]:
    """The network of a checkpoint in eval mode, and the checkpoint's other fields."""
    state = load_checkpoint(path)
    model = LapxNet(LapxConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
