from __future__ import annotations

from pathlib import Path

import numpy as np

from stylesearch.model.projection import Projection, QueryPurpose, int8_rows


def test_pca_projection_fit_apply_save(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 40))
    raw = (rng.normal(size=(200, 5)) * [10, 5, 3, 2, 1]) @ basis + rng.normal(0, 0.01, (200, 40))
    proj = Projection.fit_pca(raw.astype(np.float32), dim=5)
    assert proj.matrix is not None and proj.matrix.shape == (40, 5) and proj.dim == 5
    assert np.allclose(proj.matrix.T @ proj.matrix, np.eye(5), atol=1e-4)
    vec = proj.apply(raw.astype(np.float32))
    assert vec.dtype == np.float32 and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    proj.save(tmp_path / "p.npz")
    again = Projection.load(tmp_path / "p.npz")
    assert np.array_equal(again.apply(raw.astype(np.float32)), vec)
    small = Projection.fit_pca(raw[:10].astype(np.float32), dim=256)
    assert small.dim == 9


def test_a_tiny_sample_is_padded_so_later_photos_keep_their_differences() -> None:
    """10 photos span 9 directions: a PCA alone maps two later photos that differ only outside
    them to one vector; the padded projection keeps them apart, and the 10 photos' own
    geometry (their cosines) is exactly the plain PCA's."""
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(10, 40)).astype(np.float32)
    plain = Projection.fit_pca(raw, dim=16, whiten=0.5, shrink=1.0)
    padded = Projection.fit_pca(raw, dim=16, whiten=0.5, shrink=1.0, pad=True)
    assert plain.dim == 9 and padded.dim == 16
    a, b = plain.apply(raw), padded.apply(raw)
    assert np.allclose(a @ a.T, b @ b.T, atol=1e-4)
    assert padded.matrix is not None and np.allclose(padded.matrix[:, :9], plain.matrix, atol=1e-6)
    centred = raw - raw.mean(0)
    span = np.linalg.svd(centred, full_matrices=False)[2][:9]
    outside = rng.normal(size=40).astype(np.float32)
    outside -= span.T @ (span @ outside)  # a difference no sampled photo shows
    x = raw[0] + 0.1 * rng.normal(size=40).astype(np.float32)
    pair = np.stack([x, x + 3 * outside])
    flat, kept = plain.apply(pair), padded.apply(pair)
    assert float(flat[0] @ flat[1]) > 0.999 and float(kept[0] @ kept[1]) < 0.9


def test_blocks_and_query_weights(tmp_path: Path) -> None:
    """Stored vectors hold each block normalised at its weight; a query reweighted with
    ``for_query`` ranks by t·t' + w·p·p' (the blocks' cosines mixed by the query's weight)."""
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((20, 6)).astype(np.float32)
    proj = Projection(matrix, np.zeros(6, np.float32), "trained", ((4, 1.0), (2, 1.0)), {"search": (1.0, 0.25)})
    x = rng.standard_normal((5, 20)).astype(np.float32)
    stored = proj.apply(x)
    t, p = x @ matrix[:, :4], x @ matrix[:, 4:]
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    assert np.allclose(stored, np.concatenate([t, p], 1) / np.sqrt(2), atol=1e-5)
    query = proj.for_query(stored, "search")
    mixed = (t @ t.T + 0.25 * (p @ p.T)) / 1.25  # the weighted mean of the two blocks' cosines
    assert np.allclose(query @ stored.T, mixed, atol=1e-5)
    assert np.allclose(np.diag(query @ stored.T), 1.0, atol=1e-5)  # an item scores 1 against itself
    assert proj.for_query(stored, "classify") is stored  # no weights for that purpose: unchanged
    proj.save(tmp_path / "p.npz")
    again = Projection.load(tmp_path / "p.npz")
    assert again.parts == proj.parts and again.query_weights == {"search": (1.0, 0.25)}
    assert np.allclose(again.for_query(again.apply(x), "search"), query, atol=1e-6)


def test_query_purposes_are_the_projection_s_enum() -> None:
    assert [p.value for p in QueryPurpose] == ["search", "classify", "classify_new_labels"]
    proj = Projection(None, np.zeros(4, np.float32), "identity", ((2, 1.0), (2, 1.0)), {"classify": (1.0, 0.0)})
    stored = np.eye(4, dtype=np.float32)[:2] / 1.0
    assert np.array_equal(proj.for_query(stored, QueryPurpose.CLASSIFY), proj.for_query(stored, "classify"))


def test_whitening_evens_out_the_kept_components() -> None:
    rng = np.random.default_rng(1)
    raw = (rng.normal(size=(400, 6)) * [20, 8, 4, 2, 1, 0.5]) @ rng.normal(size=(6, 30))
    raw = raw.astype(np.float32)
    variance = lambda p: (((raw - raw.mean(0)) @ p.matrix) ** 2).mean(0)  # noqa: E731
    plain = Projection.fit_pca(raw, 4)
    full = Projection.fit_pca(raw, 4, whiten=1.0)
    half = Projection.fit_pca(raw, 4, whiten=0.5, shrink=1.0)
    assert variance(plain)[0] > 50 * variance(plain)[3]
    assert np.allclose(variance(full), 1.0, rtol=1e-3)
    v = variance(half)
    assert v[0] > v[3] and v[0] / v[3] < variance(plain)[0] / variance(plain)[3]  # partly evened out
    assert np.allclose(np.linalg.norm(full.apply(raw), axis=1), 1.0, atol=1e-5)


def test_a_projection_on_the_int8_grid_stays_close_and_snaps_once(tmp_path: Path) -> None:
    """An int8 index projects with its matrix rounded to int8 levels per output: close to the
    float32 one, idempotent, and unchanged by saving."""
    rng = np.random.default_rng(2)
    raw = rng.normal(size=(300, 60)).astype(np.float32)
    proj = Projection.fit_pca(raw, dim=8)
    snapped = proj.on_int8_grid()
    assert snapped is not proj and snapped.matrix is not None and proj.matrix is not None
    levels, scale = int8_rows(snapped.matrix.T)
    assert levels.dtype == np.int8 and np.abs(levels).max() == 127 and scale.shape == (8, 1)
    assert np.array_equal(levels * scale, snapped.matrix.T)  # exactly on the grid
    assert snapped.on_int8_grid() is snapped
    assert (proj.apply(raw) * snapped.apply(raw)).sum(1).min() > 0.999
    snapped.save(tmp_path / "p.npz")
    assert Projection.load(tmp_path / "p.npz").on_int8_grid().matrix is not None
    assert np.array_equal(Projection.load(tmp_path / "p.npz").matrix, snapped.matrix)
    assert Projection.identity(5).on_int8_grid().matrix is None


def test_novelty_tells_photos_unlike_the_catalog_at_any_distance(tmp_path: Path) -> None:
    """Off the catalog's span or far from its mean: small p-values; like the catalog's held-out
    photos: p-values spread over 0-1. Kept with the projection, whitened or not."""
    rng = np.random.default_rng(1)
    basis = rng.normal(size=(6, 50))

    def catalog(n: int) -> np.ndarray:
        return ((rng.normal(size=(n, 6)) * [8, 6, 4, 3, 2, 1]) @ basis + rng.normal(0, 0.3, (n, 50))).astype(np.float32)

    raw = catalog(300)
    for whiten in (0.0, 0.5):
        proj = Projection.fit_pca(raw, dim=6, whiten=whiten, novelty=True)
        assert proj.novelty is not None and len(proj.novelty.residuals) == 300
        like, p_like = proj.apply_measured(catalog(200))
        off_span, p_off = proj.apply_measured(catalog(50) + rng.normal(0, 3, (50, 50)).astype(np.float32))
        far, p_far = proj.apply_measured(catalog(50) + (100 * basis[0]).astype(np.float32))
        assert p_like is not None and p_off is not None and p_far is not None
        sample = catalog(5)
        assert np.allclose(proj.apply_measured(sample)[0], proj.apply(sample), atol=1e-6)
        assert np.all(np.median(p_like, axis=0) > 0.3) and np.mean(p_like.min(axis=1) < 0.005) < 0.05
        assert np.all(p_off[:, 0] < 0.01) and np.all(p_far[:, 1] < 0.01)  # residual, distance
    proj.save(tmp_path / "p.npz")
    again = Projection.load(tmp_path / "p.npz")
    assert again.novelty is not None and np.array_equal(again.novelty.residuals, proj.novelty.residuals)
    assert np.allclose(again.apply_measured(raw[:5])[1], proj.apply_measured(raw[:5])[1])
    assert Projection.fit_pca(raw, dim=6).novelty is None  # only when asked (the index's PCA asks)
    assert Projection.fit_pca(raw[:30], dim=6, novelty=True).novelty is None  # too few to hold a fifth out
