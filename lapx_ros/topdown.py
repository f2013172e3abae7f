"""Top-down inference: crop regions, run a heatmap model, decode back to image pixels.

Numpy and OpenCV only: the ROS runtime (``runtime.estimator``) and offline evaluation
(with a PyTorch or ONNX model) share this one code path. ``infer`` is any callable from a normalised float32 batch
(N, 3, H, W) to heatmaps (N, K, H/stride, W/stride).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from lapx_ros.geometry import (JOINTS_BOX_PADDING, CropBatcher, apply_affine, box_to_center_size,
                               invert_affine, keypoints_to_box)
from lapx_ros.heatmaps import dark_blur_kernel, decode, flip_heatmaps, from_heatmap_coords
from lapx_ros.metadata import ModelMetadata

HeatmapFn = Callable[[np.ndarray], np.ndarray]
# A region to crop: centre (x, y), size (w, h) in source pixels, rotation in degrees.
Region = tuple[np.ndarray, np.ndarray, float]
# Fewer confident joints than this say too little about where the person is to crop.
MIN_SEEN_JOINTS = 3
# Network calls of a whole-frame search: the whole frame, then two crops, each around the
# previous call's joints (MODEL.md: the third call adds 0.007 PCKh on the shipped file).
SEARCH_PASSES = 3
# Context around the joints of a search's first refinement. The whole-frame pass sees the
# person small and misplaces limbs, so the box of its joints is grown more than that of
# joints found in a crop (JOINTS_BOX_PADDING, the later refinements). LSPET validation, the
# r3 default file: PCKh 0.597 at 1.25, 0.614 at 1.75 (1.6-2.0 within 0.002); on training
# images 8001-8500 0.667 -> 0.683 (MODEL.md, round 2).
FIRST_REFINEMENT_PADDING = 1.75


def whole_frame_region(image_shape, aspect_ratio: float) -> Region:
    """The whole image padded to the network's aspect ratio: the first inference pass,
    and the whole-image training samples that teach it."""
    h, w = image_shape[:2]
    center, size = box_to_center_size((0, 0, w, h), aspect_ratio, padding=1.0)
    return center, size, 0.0


def box_region(box, aspect_ratio: float, padding: float = JOINTS_BOX_PADDING) -> Region:
    """The crop around a box (x0, y0, x1, y1) grown by ``padding``: the joints' box by
    default; a person's own box takes PERSON_BOX_PADDING."""
    center, size = box_to_center_size(box, aspect_ratio, padding)
    return center, size, 0.0


class TopDownPredictor:
    """Predicts keypoints for regions of a frame, all regions in one batch."""

    def __init__(self, infer: HeatmapFn, meta: ModelMetadata, decode_method: str = "dark",
                 flip_test: bool = False, channel_order: str = "rgb"):
        self.infer = infer
        self.meta = meta
        self.decode_method = decode_method
        self.flip_test = flip_test
        self.aspect_ratio = meta.input_width / meta.input_height
        self._batcher = CropBatcher(meta, channel_order)
        self._flip_perm = meta.flip_permutation()

    def preprocess(self, image: np.ndarray, regions: Sequence[Region]):
        """Crops as a normalised batch (N, 3, H, W) and their source->crop matrices."""
        return self._batcher(image, regions)

    def heatmaps(self, batch: np.ndarray) -> np.ndarray:
        heatmaps = np.asarray(self.infer(batch), dtype=np.float32)
        if self.flip_test:
            flipped = np.asarray(self.infer(np.ascontiguousarray(batch[..., ::-1])), dtype=np.float32)
            heatmaps = 0.5 * (heatmaps + flip_heatmaps(flipped, self._flip_perm))
        return heatmaps

    def predict_regions(self, image: np.ndarray, regions: Sequence[Region], decode_method: str | None = None):
        """Keypoints (N, K, 2) in source pixels and confidences (N, K) in [0, 1]."""
        if not regions:
            k = self.meta.num_joints
            return np.zeros((0, k, 2)), np.zeros((0, k), np.float32)
        batch, matrices = self.preprocess(image, regions)
        coords, confidence = decode(self.heatmaps(batch), decode_method or self.decode_method,
                                    dark_blur_kernel(self.meta.heatmap_stride))
        points = from_heatmap_coords(coords, self.meta.heatmap_stride)
        keypoints = np.stack([apply_affine(p, invert_affine(m)) for p, m in zip(points, matrices)])
        return keypoints, np.clip(confidence, 0.0, 1.0)

    def region_from_keypoints(self, keypoints: np.ndarray, confidence: np.ndarray,
                              min_confidence: float = 0.2,
                              padding: float = JOINTS_BOX_PADDING) -> Region | None:
        """The crop around confident keypoints, or None when too few are confident."""
        confident = confidence >= min_confidence
        if confident.sum() < MIN_SEEN_JOINTS:
            return None
        box = keypoints_to_box(keypoints, confident)
        center, size = box_to_center_size(box, self.aspect_ratio, padding)
        return center, size, 0.0

    def estimate_single(self, image: np.ndarray, passes: int = SEARCH_PASSES, min_confidence: float = 0.0,
                        first_padding: float = FIRST_REFINEMENT_PADDING, padding: float = JOINTS_BOX_PADDING,
                        decode_method: str | None = None, more_passes=None):
        """One person: whole frame first, then ``passes - 1`` refinements on a crop
        around the previous pass's keypoints with at least ``min_confidence``, grown by
        ``first_padding`` the first time and by ``padding`` after. The node
        searches a frame this way too, so offline figures are the node's. ``more_passes(done)``,
        when given, may end the refinement early (after ``done`` passes).

        By default every joint places the crop: the whole-frame pass sees the person small
        and is unsure of each joint, yet together its joints span the person, whereas a
        box around the few confident ones often crops a single limb."""
        region = whole_frame_region(image.shape, self.aspect_ratio)
        keypoints, confidence = self.predict_regions(image, [region], decode_method)
        for done in range(1, passes):
            if more_passes is not None and not more_passes(done):
                break
            region = self.region_from_keypoints(keypoints[0], confidence[0], min_confidence,
                                                first_padding if done == 1 else padding)
            if region is None:
                break
            keypoints, confidence = self.predict_regions(image, [region], decode_method)
        return keypoints[0], confidence[0]
