"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, index_size: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stylesearch_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "stylesearch_request_seconds",
            "time to answer a request",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "stylesearch_embed_batch_images",
            "images per micro-batched forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.embed_seconds = Histogram(
            "stylesearch_embed_batch_seconds", "time of one micro-batched forward pass", registry=self.registry
        )
        self.items = Gauge("stylesearch_index_items", "items in the served index", registry=self.registry)
        self.items.set_function(index_size)

    def observe_batch(self, images: int, seconds: float) -> None:
        self.batch_size.observe(images)
        self.embed_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
