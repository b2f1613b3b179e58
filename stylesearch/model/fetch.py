"""A batch's results on their way to the CPU.

On a GPU, :class:`Fetch` copies a batch's style vectors (or raw statistics) and copy
signatures into page-locked memory without waiting; :meth:`Fetch.result` waits for that copy
only. The embedder yields each batch one batch late (:meth:`Embedder.iter_raw`), so the next
batch's forward pass is already queued while the CPU stores, projects or writes this one: the
GPU does not idle through the pipeline's per-batch work. On a CPU nothing is copied and the
results are ready at once (the order of the batches is the same)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..results import Embedded
from ..stamps import Stamp


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` itself on the CPU; from a GPU, an asynchronous copy into page-locked memory
    (ready once the stream reaches it)."""
    if not tensor.is_cuda:
        return tensor
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    return host


class Fetch:
    """One batch's :class:`~stylesearch.results.Embedded`, once its copies have arrived."""

    def __init__(
        self,
        positions: Sequence[int],
        values: torch.Tensor,
        failures: list[tuple[int, str]],
        projected: bool,
        signatures: torch.Tensor | None = None,
        stamps: list[Stamp | None] | None = None,
    ) -> None:
        self.positions, self.failures, self.projected, self.stamps = positions, failures, projected, stamps
        self.values = to_host(values)
        self.signatures = None if signatures is None else to_host(signatures)
        self.event: torch.cuda.Event | None = None
        if values.is_cuda:
            self.event = torch.cuda.Event()
            self.event.record()

    def result(self) -> Embedded:
        if self.event is not None:
            self.event.synchronize()
        signatures = None if self.signatures is None else self.signatures.numpy()
        positions = np.asarray(self.positions, np.int64)
        return Embedded(positions, self.values.numpy(), self.failures, self.projected, signatures=signatures, stamps=self.stamps)
