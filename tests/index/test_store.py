from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch.errors import IndexCorruptError
from stylesearch.index.backends.faiss import FaissBackend


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_search_is_exact_inner_product() -> None:
    x, q = _unit(300, 16), _unit(7, 16, seed=1)
    store = FaissBackend(16)
    store.add(np.arange(100, 400), x)
    scores, ids = store.search(q, 5)
    expected = np.argsort(-(q @ x.T), axis=1)[:, :5] + 100
    assert np.array_equal(ids, expected)
    assert np.allclose(scores, np.take_along_axis(q @ x.T, expected - 100, axis=1), atol=1e-5)


def test_filtered_search_returns_k_where_that_many_match() -> None:
    x = _unit(200, 8)
    store = FaissBackend(8)
    store.add(np.arange(200), x)
    allowed = np.arange(0, 200, 10)
    scores, ids = store.search(x[:3], 5, allowed)
    assert np.isin(ids, allowed).all() and (ids >= 0).all()
    scores, ids = store.search(x[:1], 5, np.array([3, 4]))
    assert ids[0].tolist()[:2] == sorted([3, 4], key=lambda i: -float(x[0] @ x[i])) and ids[0, 2:].tolist() == [-1] * 3
    assert np.isneginf(scores[0, 2:]).all()
    _, ids = store.search(x[:1], 3, np.array([], np.int64))
    assert (ids == -1).all()


def test_remove_get_and_id_order() -> None:
    x = _unit(10, 4)
    store = FaissBackend(4, vector_dtype="float16")
    store.add(np.arange(10), x)
    assert store.remove(np.array([2, 5, 99])) == 2 and len(store) == 8
    _, ids = store.search(x[2:3], 10)
    assert 2 not in ids and 5 not in ids
    assert np.allclose(store.get(np.array([3])), x[3], atol=1e-3)
    with pytest.raises(KeyError):
        store.get(np.array([5]))
    with pytest.raises(ValueError, match="increasing"):
        store.add(np.array([4]), x[:1])
    with pytest.raises(ValueError, match="shape"):
        store.add(np.array([20]), np.zeros((1, 3), np.float32))


def test_save_load_round_trip_and_corruption(tmp_path: Path) -> None:
    x = _unit(50, 8)
    store = FaissBackend(8)
    store.add(np.arange(50), x)
    store.save(tmp_path)
    again = FaissBackend.read(tmp_path, dim=8, vector_dtype="float32")
    assert np.array_equal(again.search(x[:4], 3)[1], store.search(x[:4], 3)[1])
    np.save(tmp_path / "ids.npy", np.arange(49))
    with pytest.raises(IndexCorruptError, match="disagree"):
        FaissBackend.read(tmp_path, dim=8, vector_dtype="float32")
    (tmp_path / "index.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError):
        FaissBackend.read(tmp_path, dim=8, vector_dtype="float32")


def test_missing_faiss_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from stylesearch.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(MissingDependencyError, match=r"stylesearch\[cpu\].*stylesearch\[gpu\]"):
        FaissBackend(4)


def test_filtered_search_survives_faiss_torch_utils() -> None:
    import faiss.contrib.torch_utils  # noqa: F401  (pytorch-metric-learning imports it and patches faiss)

    x = _unit(20, 4)
    store = FaissBackend(4)
    store.add(np.arange(20), x)
    _, ids = store.search(x[:1], 3, np.array([1, 2, 3]))
    assert sorted(ids[0].tolist()) == [1, 2, 3]


def test_exact_torch_search_matches_faiss(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The GPU backend's code, run on the CPU device: same top-10 as FAISS's exact search,
    with filters, after removal, and with fewer candidates than k."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3000, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    ids = np.arange(100, 3100, dtype=np.int64)
    cpu = FaissBackend(24)
    cpu.add(ids, vectors)
    gpu_like = cpu.copy()
    from stylesearch.index.backends.accelerators import TorchExact

    gpu_like.accelerator = TorchExact("cpu", chunk=700)  # several chunks
    assert gpu_like.backend == "torch-exact"
    for allowed in (None, ids[::7], ids[:3]):
        s1, i1 = cpu.search(queries, 10, allowed)
        s2, i2 = gpu_like.search(queries, 10, allowed)
        assert np.mean([set(a) == set(b) for a, b in zip(i1, i2)]) >= 0.99
        assert np.allclose(np.where(np.isfinite(s1), s1, 0), np.where(np.isfinite(s2), s2, 0), atol=1e-4)
    gpu_like.remove(ids[:50])
    assert not np.isin(gpu_like.search(queries, 10)[1], ids[:50]).any()


@pytest.mark.parametrize("chunk", [700, 100_000])
def test_bf16_shortlist_search_matches_exact(chunk: int) -> None:
    """The GPU default (a bf16 shortlist re-scored in float32), run on the CPU: the same
    top-10 as exact search for >= 99% of queries, float32 scores, filters and k > n."""
    from stylesearch.index.backends.accelerators import TorchExactSearch

    rng = np.random.default_rng(1)
    centers = rng.standard_normal((30, 32)).astype(np.float32)
    vectors = centers[rng.integers(0, 30, 4000)] + 0.5 * rng.standard_normal((4000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.integers(0, 4000, 200)] + 0.1 * rng.standard_normal((200, 32)).astype(np.float32)
    ids = np.arange(4000, dtype=np.int64) * 3
    exact = TorchExactSearch(ids, vectors, "cpu", precision="fp32")
    fast = TorchExactSearch(ids, vectors, "cpu", chunk=chunk, precision="bf16", query_block=64)
    for allowed in (None, ids[::5]):
        s1, i1 = exact.search(queries, 10, allowed)
        s2, i2 = fast.search(queries, 10, allowed)
        assert np.mean([set(a) == set(b) for a, b in zip(i1, i2)]) >= 0.99
        same = i1 == i2
        assert np.allclose(s1[same], s2[same], atol=1e-5)  # re-scored in float32, not bf16
    scores, found = fast.search(queries[:3], 10, ids[:4])
    assert (found[:, :4] >= 0).all() and (found[:, 4:] == -1).all() and np.isinf(scores[:, 4:]).all()
