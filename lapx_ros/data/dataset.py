"""A PyTorch dataset over pose records, with decoded images kept in memory."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from lapx_ros.data.lsp import PoseRecord
from lapx_ros.data.transforms import TopDownTransform, normalize, read_rgb


class PoseDataset(Dataset):
    """Yields (input tensor, heatmap targets, joint weights) for each record, followed by
    the teacher's targets and weights when the records carry teacher joints.

    Images are small (LSPET: under 700 px), so all of them fit in memory after their
    first decoding; this keeps JPEG decoding out of every epoch after the first.
    """

    def __init__(self, records: list[PoseRecord], transform: TopDownTransform,
                 mean, std, seed: int = 0, cache_images: bool = True, neighbours=None):
        """``neighbours``: indices of the records whose people may be pasted beside or
        behind another sample's person (``AugmentConfig.neighbour_prob``; None: all)."""
        self.records = records
        self.neighbours = list(range(len(records)) if neighbours is None else neighbours)
        self.transform = transform
        self.mean, self.std = mean, std
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, np.ndarray] | None = {} if cache_images else None

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Reseeds augmentation so each epoch differs but a resumed run repeats itself."""
        self.epoch = epoch

    def image(self, index: int) -> np.ndarray:
        if self._cache is None:
            return read_rgb(self.records[index].image_path)
        if index not in self._cache:
            self._cache[index] = read_rgb(self.records[index].image_path)
        return self._cache[index]

    def __getitem__(self, index: int):
        rng = np.random.default_rng((self.seed, self.epoch, index))
        record = self.records[index]
        neighbour = None
        prob = self.transform.augment.neighbour_prob
        if prob and self.neighbours:
            # A generator of its own, so that the other augmentation is the same with or without.
            pick = np.random.default_rng((self.seed, self.epoch, index, 1))
            if pick.random() < prob:
                other = self.neighbours[int(pick.integers(len(self.neighbours)))]
                if other != index:
                    neighbour = (self.image(other), self.records[other].joints)
        crop, *targets = self.transform(self.image(index), record.joints, rng, record.box, record.teacher,
                                        record.whole_image, neighbour)
        x = normalize(crop[None], self.mean, self.std)[0]
        return (torch.from_numpy(x),) + tuple(torch.from_numpy(t) for t in targets)
