"""Copy signatures: is this photo a copy of that one (re-encoded, resized, mirrored, cropped a
little, written on)? Pure numpy, used by ingestion (which makes them), duplicate groups and
collapsed results (which compare them).

Style vectors are the wrong descriptor for this: two products of one style are meant to be
close, and different colourways of one product are closer still. A copy is instead *the same
pixels*, up to resampling, mirroring and a small crop. So each item keeps a **thumbnail**, its
decoded photo (the model's input, ``S`` × ``S``) area-averaged to :data:`THUMB` × :data:`THUMB`
RGB (uint8, 3 KB), made in the same decode pass as its style vector. Two thumbnails are
compared as mean-centred colour grids of :data:`GRID` × :data:`GRID` cells (cosine), the best
over **views**: the whole photo, and windows of :data:`CROP` of its side at a 5 × 5 grid of
offsets (a copy cropped to 90 % lines up with one of them), each photo and its mirror image,
either photo as the cropped one. JPEG noise and resizing average out at this size; colour is
kept, so colourways of one product differ.

:func:`copy_score` of a pair is that best cosine; two items are copies when it is at or above
:data:`stylesearch.config.DUPLICATE_THRESHOLD`, chosen on planted copies of `train` photos with
precision first (``benchmarks/bench_dedup.py``). Candidate pairs come from :func:`coarse`
descriptors (the whole view at 8 × 8, searched with the photo and its mirror image).
"""

from __future__ import annotations

from functools import cache

import numpy as np

THUMB = 32  # stored thumbnail side, pixels
GRID = 16  # cells per side of a compared view
COARSE = 8  # cells per side of the candidate descriptor
CROP = 0.9  # a window's side, as a share of the photo's
STEPS = 5  # window offsets per axis
SIGNATURE_BYTES = 3 * THUMB * THUMB


def _pool_matrix(size: int, out: int) -> np.ndarray:
    """float32 [out, size]: each row averages one adaptive-pooling bin of ``size`` pixels."""
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        lo, hi = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def thumbnails(images: np.ndarray) -> np.ndarray:
    """uint8 RGB [B, 3, S, S] (the model's input) → signatures uint8 [B, 3·THUMB²]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got {list(images.shape)}")
    b, _, h, w = images.shape
    if h % THUMB == 0 and w % THUMB == 0:  # whole blocks: a reshaped mean (the model's 128 and 160 px)
        blocks = images.reshape(b, 3, THUMB, h // THUMB, THUMB, w // THUMB)
        pooled = blocks.mean((3, 5), dtype=np.float32)
    else:
        rows, cols = _pool_matrix(h, THUMB), _pool_matrix(w, THUMB)
        pooled = np.einsum("yi,bcij,xj->bcyx", rows, images.astype(np.float32), cols, optimize=True)
    return np.clip(np.rint(pooled), 0, 255).astype(np.uint8).reshape(b, -1)


@cache
def _sampler(scale: float, offset: float, out: int) -> np.ndarray:
    """float32 [out, THUMB]: bilinear samples of a window of ``scale`` of the side starting at
    ``offset`` (share of the side), ``out`` cells, edges clamped (as torch's grid_sample with
    align_corners=False, border padding)."""
    m = np.zeros((out, THUMB), np.float32)
    for u in range(out):
        x = (offset + scale * (u + 0.5) / out) * THUMB - 0.5
        x = min(max(x, 0.0), THUMB - 1.0)
        lo = int(np.floor(x))
        hi = min(lo + 1, THUMB - 1)
        m[u, lo] += 1.0 - (x - lo)
        m[u, hi] += x - lo
    return m


def _windows() -> list[tuple[float, float, float]]:
    """(scale, x offset, y offset) of every view: the whole photo first."""
    offsets = np.linspace(0.0, 1.0 - CROP, STEPS).tolist()
    return [(1.0, 0.0, 0.0)] + [(CROP, ox, oy) for oy in offsets for ox in offsets]


def _normalised(grid: np.ndarray) -> np.ndarray:
    """[..., 3, G, G] → mean-centred, L2-normalised float32 [..., 3·G²]."""
    flat = grid.reshape(*grid.shape[:-3], -1)
    flat = flat - flat.mean(-1, keepdims=True, dtype=np.float32)
    flat /= np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-6)
    return flat.astype(np.float32, copy=False)


def _as_images(signatures: np.ndarray) -> np.ndarray:
    signatures = np.asarray(signatures)
    if signatures.ndim != 2 or signatures.shape[1] != SIGNATURE_BYTES:
        raise ValueError(f"expected copy signatures [N, {SIGNATURE_BYTES}], got {list(signatures.shape)}")
    return signatures.reshape(-1, 3, THUMB, THUMB).astype(np.float32) * np.float32(1 / 255)


def views(signatures: np.ndarray) -> np.ndarray:
    """float32 [N, V, 3·GRID²]: every view of each signature (the whole photo first). Two large
    matrix products: every window's rows of every photo at once, then each window's columns.
    (Mirror images need no views of their own: the windows are placed symmetrically, so
    comparing them with the other photo's mirrored whole view is the same.)"""
    images = _as_images(signatures)  # [N, 3, THUMB, THUMB]
    n = len(images)
    windows = _windows()
    tall = np.concatenate([_sampler(s, oy, GRID) for s, _, oy in windows])  # [V·GRID, THUMB]
    rows = tall @ images.transpose(2, 0, 1, 3).reshape(THUMB, -1)  # [V·GRID, N·3·THUMB]
    rows = rows.reshape(len(windows), GRID, n * 3, THUMB)
    out = np.empty((len(windows), GRID, n * 3, GRID), np.float32)
    for v, (s, ox, _) in enumerate(windows):
        out[v] = rows[v] @ _sampler(s, ox, GRID).T
    flat = np.ascontiguousarray(out.reshape(len(windows), GRID, n, 3, GRID).transpose(2, 0, 3, 1, 4))
    flat = flat.reshape(n, len(windows), -1)  # [N, V, 3·GRID·GRID]
    flat -= flat.mean(-1, keepdims=True)
    flat /= np.maximum(np.sqrt(np.einsum("nvd,nvd->nv", flat, flat))[..., None], 1e-6)
    return flat


def _whole_grid(signatures: np.ndarray, cells: np.ndarray, mirrored: bool) -> np.ndarray:
    """The whole photo resampled by ``cells`` [G, THUMB] on both axes, normalised: [N, 3·G²]."""
    images = _as_images(signatures)
    if mirrored:
        images = images[..., ::-1]
    return _normalised(np.einsum("yi,bcij,xj->bcyx", cells, images, cells, optimize=True))


def whole(signatures: np.ndarray, mirrored: bool = False) -> np.ndarray:
    """float32 [N, 3·GRID²]: the whole-photo view alone (of the mirror image with ``mirrored``)."""
    return _whole_grid(signatures, _sampler(1.0, 0.0, GRID), mirrored)


def coarse(signatures: np.ndarray, mirrored: bool = False) -> np.ndarray:
    """float32 [N, 3·COARSE²]: the whole photo at COARSE × COARSE cells (mirrored: of the mirror
    image) — the descriptor candidate pairs are searched with."""
    return _whole_grid(signatures, _pool_matrix(THUMB, COARSE), mirrored)


def copy_scores(signatures: np.ndarray, pairs: np.ndarray, batch: int = 512) -> np.ndarray:
    """float32 [P]: :func:`copy_score` of each row pair ``pairs`` int [P, 2] of ``signatures``.

    Each photo's views are made once (in batches of ``batch`` photos), whichever pairs it is
    in, and compared with the other photo's whole view and its mirror image's (the windows
    are placed symmetrically, so that is the same as mirroring the windows)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    best = np.full(len(pairs), -1.0, np.float32)
    if not len(pairs):
        return best
    ordered = np.concatenate([pairs, pairs[:, ::-1]])  # either photo as the cropped one
    slot = np.concatenate([np.arange(len(pairs))] * 2)
    order = np.argsort(ordered[:, 0], kind="stable")
    ordered, slot = ordered[order], slot[order]
    used = np.unique(ordered)
    at = np.searchsorted(used, ordered[:, 1])
    # every compared photo's whole view and its mirror's, side by side: [U, 2·D] as [U, 2, D]
    flat = np.stack([whole(signatures[used]), whole(signatures[used], mirrored=True)], 1)
    firsts, starts = np.unique(ordered[:, 0], return_index=True)
    bounds = np.append(starts, len(ordered))
    scores = np.empty(len(ordered), np.float32)
    for lo in range(0, len(firsts), batch):
        looks = views(signatures[firsts[lo : lo + batch]])
        for n in range(len(looks)):
            rows = slice(bounds[lo + n], bounds[lo + n + 1])
            others = flat[at[rows]].reshape(-1, flat.shape[2])  # [2m, D]
            scores[rows] = (looks[n] @ others.T).max(0).reshape(-1, 2).max(1)
    np.maximum.at(best, slot, scores)
    return best


def copy_score(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two photos' pixels are at their best alignment: the cosine of their
    mean-centred colour grids, the best over the whole photo and 90 % windows of either, each
    or its mirror image (1.0: the same pixels)."""
    return float(copy_scores(np.stack([np.asarray(a), np.asarray(b)]), np.array([[0, 1]]))[0])
