"""Parameter and multiply-accumulate counts, as the LAPX paper reports them."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model: nn.Module, input_height: int, input_width: int) -> float:
    """Multiply-accumulates (x 1e9) of one inference at batch 1 (convolutions and matmuls)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, input_height, input_width))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9
