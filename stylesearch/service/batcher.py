"""Micro-batching: concurrent requests share one forward pass.

Each request hands its images to :meth:`MicroBatcher.embed` and awaits them. A single worker
task takes the first waiting request, gathers more until ``max_images`` images or
``max_wait_s`` have passed, embeds them all in one call on a worker thread (never on the event
loop), and hands each request its own vectors back. Images that fail to decode come back as
reasons, per image.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..results import Embedded

EmbedFn = Callable[[Sequence[bytes]], Embedded]


@dataclass
class _Job:
    images: Sequence[bytes]
    future: asyncio.Future[Embedded]
    queued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    def __init__(
        self,
        embed: EmbedFn,
        *,
        max_images: int = 32,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._embed = embed
        self.max_images = max_images
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch  # (images in the batch, seconds) — for metrics
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stylesearch-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def embed(self, images: Sequence[bytes]) -> Embedded:
        """The style vectors of ``images`` that could be read, and why the others could not."""
        if self._task is None or self._task.done():
            raise RuntimeError("the micro-batcher is not running")
        future: asyncio.Future[Embedded] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(images, future))
        return await future

    async def _gather(self) -> list[_Job]:
        jobs = [await self._queue.get()]
        size = len(jobs[0].images)
        deadline = time.perf_counter() + self.max_wait_s
        while size < self.max_images:
            remaining = deadline - time.perf_counter()
            try:
                job = self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self._queue.get(), remaining)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            jobs.append(job)
            size += len(job.images)
        return jobs

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            images = [image for job in jobs for image in job.images]
            t0 = time.perf_counter()
            try:
                done = await loop.run_in_executor(self._executor, self._embed, images)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self._on_batch is not None:
                self._on_batch(len(images), time.perf_counter() - t0)
            start = 0
            for job in jobs:
                if not job.future.done():  # a client that went away has a cancelled future
                    job.future.set_result(done.part(start, start + len(job.images)))
                start += len(job.images)
