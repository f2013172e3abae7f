"""Crops of one frame turned into one normalised network batch.

All people of a frame go through the network in a single call: batching is much
cheaper than one call per person on a CPU.
"""
from __future__ import annotations

import cv2
import numpy as np

from lapx_ros.geometry import crop_transform
from lapx_ros.metadata import ModelMetadata


CHANNEL_ORDERS = ("bgr", "rgb")


class CropBatcher:
    """Warps regions of a frame (BGR by default) into the model's RGB, normalised NCHW input."""

    def __init__(self, metadata: ModelMetadata, channel_order: str = "bgr"):
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        # Which frame channel feeds each of the network's R, G, B inputs.
        self._source_channel = (2, 1, 0) if channel_order == "bgr" else (0, 1, 2)
        self.size = (metadata.input_width, metadata.input_height)
        std = np.asarray(metadata.std, np.float32)
        mean = np.asarray(metadata.mean, np.float32)
        # (px / 255 - mean) / std == px * scale - shift, per RGB channel.
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std

    @property
    def aspect_ratio(self) -> float:
        return self.size[0] / self.size[1]

    def __call__(self, frame: np.ndarray, regions):
        """Batch (N, 3, H, W) float32 and the N crop matrices (source -> crop pixels).

        ``regions`` is a sequence of (centre, size) pairs in source pixels, as returned
        by :func:`lapx_ros.geometry.box_to_center_size`, or (centre, size, rotation in
        degrees) triples.
        """
        w, h = self.size
        crops = np.empty((len(regions), h, w, 3), np.uint8)
        matrices = np.empty((len(regions), 2, 3), np.float64)
        for i, (center, size, *rotation) in enumerate(regions):
            matrices[i] = crop_transform(center, size, self.size, *rotation)
            cv2.warpAffine(frame, matrices[i], self.size, dst=crops[i],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        # Channel by channel straight into the NCHW batch: several times faster than a
        # transpose of the whole array followed by broadcasting.
        batch = np.empty((len(regions), 3, h, w), np.float32)
        for i in range(len(regions)):
            for c, source in enumerate(self._source_channel):
                np.multiply(crops[i, :, :, source], self._scale[c], out=batch[i, c], casting="unsafe")
                batch[i, c] -= self._shift[c]
        return batch, matrices
