"""Vectors in, neighbours out: FAISS store, SQLite metadata, kNN votes, on-disk generations.

This package works on numpy arrays and never imports torch.
"""

from .knn import Vote, knn_vote
from .layout import IndexDir
from .metadata import MetadataStore, Record
from .store import VectorStore, faiss_backend

__all__ = ["IndexDir", "MetadataStore", "Record", "VectorStore", "Vote", "faiss_backend", "knn_vote"]
