"""Batches the model reads: a dataset that decodes (in DataLoader workers or threads) and
never raises, the collated batch with its failures, and device decoding of the JPEGs left
encoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

import torch

from ..errors import ImageError
from ..stamps import Stamp
from .jpeg import decode_jpegs, load_tensor, read_plain_jpeg, read_source, resize_batch
from .safe import ImageInput


@dataclass
class Batch:
    """A collated batch: ``positions`` index the dataset; ``failures`` are (position, reason)."""

    positions: list[int]
    images: torch.Tensor  # uint8 [B, 3, S, S]; B may be 0
    failures: list[tuple[int, str]]
    encoded: list[tuple[int, bytes]] = field(default_factory=list)  # JPEG bytes, not decoded yet
    stamps: dict[int, Stamp] = field(default_factory=dict)  # position → its file's stamp (when asked for)

    def pin_memory(self) -> Batch:
        """Called by a DataLoader with ``pin_memory=True``: page-locked images copy to a GPU
        asynchronously. (Encoded JPEGs stay as bytes: many small pinned buffers cost more
        than they save.)"""
        return Batch(self.positions, self.images.pin_memory(), self.failures, self.encoded, self.stamps)


# (position, decoded uint8 [3, S, S] or None, error or None, JPEG bytes left to decode or None,
# the file's stamp or None)
Sample = tuple[int, Union[torch.Tensor, None], Union[str, None], Union[bytes, None], Union[Stamp, None]]  # noqa: UP007


class ImageDataset(torch.utils.data.Dataset):
    """Decodes images in DataLoader workers; a failure is returned, never raised.

    With ``encoded=True`` a plain JPEG (:func:`read_plain_jpeg`) is returned undecoded, as
    its bytes, for a batched decoder on the GPU; every other image is decoded here. With
    ``stamped=True`` each file's stamp is made from the bytes read (what an index records)."""

    def __init__(
        self, sources: Sequence[ImageInput], size: int, *, flip: bool = False, encoded: bool = False, stamped: bool = False
    ) -> None:
        self.sources = sources
        self.size = size
        self.flip = flip  # mirror left-right (a style-preserving augmentation)
        self.encoded = encoded
        self.stamped = stamped

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, position: int) -> Sample:
        source, stamp = read_source(self.sources[position], self.stamped)  # each file read once
        if self.encoded:
            data = read_plain_jpeg(source)
            if data is not None:
                return position, None, None, data, stamp
        try:
            tensor = load_tensor(source, self.size)
            return position, tensor.flip(-1) if self.flip else tensor, None, None, stamp
        except ImageError as exc:
            return position, None, str(exc), None, None


def collate(samples: list[Sample]) -> Batch:
    """Stack decoded images into one uint8 [B, 3, S, S] batch in channels-last memory (what
    the backbone runs on, so the main process copies nothing); undecoded JPEG bytes travel
    in ``encoded``."""
    good = [(s[0], s[1]) for s in samples if s[1] is not None]
    failures = [(s[0], s[2] or "unknown error") for s in samples if s[1] is None and s[3] is None]
    encoded = [(s[0], s[3]) for s in samples if s[3] is not None]
    stamps = {s[0]: s[4] for s in samples if s[4] is not None}
    if not good:
        return Batch([], torch.empty((0, 3, 1, 1), dtype=torch.uint8), failures, encoded, stamps)
    _, height, width = good[0][1].shape
    out = torch.empty((len(good), height, width, 3), dtype=torch.uint8)
    for row, (_, t) in enumerate(good):
        out[row] = t.permute(1, 2, 0)
    return Batch([p for p, _ in good], out.permute(0, 3, 1, 2), failures, encoded, stamps)


def decode_encoded(batch: Batch, size: int, device: torch.device, *, flip: bool = False) -> Batch:
    """A batch whose ``encoded`` JPEGs are decoded on ``device`` (:func:`decode_jpegs`) and
    resized (:func:`resize_batch`), appended after its already-decoded images (moved there)."""
    if not batch.encoded:
        return batch
    positions = [p for p, _ in batch.encoded]
    decoded, errors = decode_jpegs([data for _, data in batch.encoded], size, device)
    kept = [i for i, image in enumerate(decoded) if image is not None]
    fresh = resize_batch([decoded[i] for i in kept], size)  # type: ignore[misc]
    if flip:
        fresh = fresh.flip(-1)
    images = torch.cat([batch.images.to(device), fresh]) if len(batch.positions) else fresh
    failures = batch.failures + [
        (positions[i], errors[i] or "unknown error") for i in range(len(positions)) if decoded[i] is None
    ]
    return Batch(batch.positions + [positions[i] for i in kept], images, failures, stamps=batch.stamps)
