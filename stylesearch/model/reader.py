"""Decode scheduling: sources in, decoded batches out, in order, as fast as the device that
runs the model can take them. Failures travel with each batch (never raised).

- CPU, ``workers == 0`` (auto): each batch is decoded by a pool of ``torch.get_num_threads()``
  threads between forward passes (PIL and torch release the GIL). Measured faster than worker
  processes when the CPU also runs the model: every core decodes, then every core computes,
  and no decoder preempts the backbone's threads.
- ``workers > 0`` (auto on CUDA): DataLoader worker processes decode ahead, at low priority.
- On a device that decodes JPEGs itself (nvJPEG, ``run.decode``), plain JPEGs come as bytes
  and are decoded on the device in a thread two batches ahead of the forward pass.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from ..config import RunConfig
from ..images import Batch, ImageDataset, ImageInput, collate, decode_encoded


def _lower_priority(_worker_id: int) -> None:
    """Decoding workers yield the CPU to the forward pass. On a machine whose cores the
    backbone keeps busy, a worker at equal priority preempts one of the backbone's OpenMP
    threads and stalls the others at the next barrier; at low priority it decodes in the gaps."""
    with contextlib.suppress(OSError):
        os.nice(19)


class Reader:
    """Reads images of ``image_size`` px for a model on ``device``, as ``run`` says."""

    def __init__(self, run: RunConfig, device: torch.device, image_size: int) -> None:
        self.run, self.device, self.image_size = run, device, image_size

    @property
    def decodes_on_device(self) -> bool:
        """Whether plain JPEGs are decoded by the model's device in batches (``run.decode``:
        ``auto`` means on a CUDA device, where nvJPEG outruns CPU decoding; see
        :func:`~stylesearch.images.decode_jpegs`)."""
        if self.run.decode == "auto":
            return self.device.type == "cuda"
        return self.run.decode == "device"

    def workers(self) -> int:
        """Resolved ``run.workers``: ``-1`` (auto) means DataLoader worker processes on CUDA
        (decoding overlaps the GPU) and in-process decoding threads on CPU."""
        if self.run.workers >= 0:
            return self.run.workers
        return min(8, os.cpu_count() or 1) if self.device.type == "cuda" else 0

    def read(self, sources: Sequence[ImageInput], flip: bool = False, stamped: bool = False) -> Iterator[Batch]:
        """Decoded batches of ``sources`` (mirrored when ``flip``; with their files' stamps,
        made by the decoders from the bytes they read, when ``stamped``), in order."""
        dataset = ImageDataset(sources, self.image_size, flip=flip, encoded=self.decodes_on_device, stamped=stamped)
        if not dataset.encoded:
            yield from self._batches(dataset)
            return
        # On a GPU the decoder gets its own CUDA stream, so that its kernels need not wait for
        # the forward pass's (one stream would serialise them); an event orders the two.
        stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

        def decode(batch: Batch) -> tuple[Batch, Any]:
            if stream is None:
                return decode_encoded(batch, self.image_size, self.device, flip=flip), None
            with torch.cuda.stream(stream):
                decoded = decode_encoded(batch, self.image_size, self.device, flip=flip)
                done = torch.cuda.Event()
                done.record(stream)
            return decoded, done

        def ready(batch: Batch, done: Any) -> Batch:
            if done is not None:
                current = torch.cuda.current_stream(self.device)
                current.wait_event(done)
                if batch.images.is_cuda:
                    batch.images.record_stream(current)  # freed memory is reused only after this stream's use
            return batch

        # nvJPEG decodes small images' entropy coding on the calling CPU thread, which would
        # otherwise stall the GPU: decoding runs in a thread two batches ahead.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="device-decode") as pool:
            ahead: collections.deque[Future[tuple[Batch, Any]]] = collections.deque()
            for batch in self._batches(dataset):
                ahead.append(pool.submit(decode, batch))
                if len(ahead) > 2:
                    yield ready(*ahead.popleft().result())
            while ahead:
                yield ready(*ahead.popleft().result())

    def _batches(self, dataset: ImageDataset) -> Iterator[Batch]:
        n, size = len(dataset), self.run.batch_size
        workers = min(self.workers(), max(1, n // size))
        if workers > 0:
            yield from torch.utils.data.DataLoader(
                dataset,
                batch_size=size,
                shuffle=False,
                num_workers=workers,
                collate_fn=collate,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=4,
                persistent_workers=False,
                worker_init_fn=_lower_priority,
            )
            return
        with ThreadPoolExecutor(max_workers=max(1, torch.get_num_threads()), thread_name_prefix="decode") as pool:
            # Decoding the next batch during the forward pass was measured too, with OpenVINO
            # (which computes outside the GIL): 15 % fewer images/s, its threads preempted.
            for start in range(0, n, size):
                yield collate(list(pool.map(dataset.__getitem__, range(start, min(n, start + size)))))
