"""A generated demo catalog: product silhouettes × visual styles, so that style and product
type vary independently, and a demo run that indexes it and shows results.

Products: shirt, dress, mug, bag, lamp, chair. Styles: stripes, polka dots, plaid, floral,
solid pastel, neon, monochrome, vintage-faded. Every image is drawn from a seeded random
generator: no downloaded data.
"""

from __future__ import annotations

import colorsys
import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 128
PRODUCTS = ("shirt", "dress", "mug", "bag", "lamp", "chair")
STYLES = ("stripes", "polka_dots", "plaid", "floral", "solid_pastel", "neon", "monochrome", "vintage_faded")
Color = tuple[int, int, int]


def _hsv(h: float, s: float, v: float) -> Color:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


# --------------------------------------------------------------------------- silhouettes


def _silhouette(product: str, rng: np.random.Generator) -> Image.Image:
    """An 'L' mask (255 = product) of one product at 2x size, with a little random jitter."""
    s = SIZE * 2
    mask = Image.new("L", (s, s), 0)
    d = ImageDraw.Draw(mask)
    j = lambda v: v + rng.uniform(-8, 8)  # noqa: E731
    if product == "shirt":
        d.polygon(
            [
                (j(70), 40),
                (j(186), 40),
                (j(236), 90),
                (j(206), 118),
                (j(186), 100),
                (j(186), 220),
                (j(70), 220),
                (j(70), 100),
                (j(50), 118),
                (j(20), 90),
            ],
            fill=255,
        )
        d.ellipse((104, 28, 152, 56), fill=0)
    elif product == "dress":
        d.polygon([(j(100), 30), (j(156), 30), (j(166), 110), (j(216), 230), (j(40), 230), (j(90), 110)], fill=255)
        d.rectangle((98, 14, 106, 34), fill=255)
        d.rectangle((150, 14, 158, 34), fill=255)
    elif product == "mug":
        d.rounded_rectangle((j(50), j(60), 170, 210), radius=14, fill=255)
        d.ellipse((150, 90, 220, 170), fill=255)
        d.ellipse((170, 110, 200, 150), fill=0)
    elif product == "bag":
        d.rounded_rectangle((j(40), j(100), j(216), 220), radius=18, fill=255)
        d.arc((80, 40, 176, 150), 180, 360, fill=255, width=14)
    elif product == "lamp":
        d.polygon([(j(80), 30), (j(176), 30), (j(206), 120), (j(50), 120)], fill=255)
        d.rectangle((120, 120, 136, 200), fill=255)
        d.ellipse((70, 196, 186, 226), fill=255)
    elif product == "chair":
        d.rectangle((j(70), j(20), 186, 130), fill=255)
        d.rectangle((60, 130, 196, 150), fill=255)
        for x in (62, 178):
            d.rectangle((x, 150, x + 16, 236), fill=255)
    else:
        raise ValueError(f"unknown product {product!r}")
    angle = rng.uniform(-6, 6)
    return mask.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=0)


# --------------------------------------------------------------------------- style fills


def _stripes(rng: np.random.Generator, s: int) -> Image.Image:
    hue = rng.random()
    a, b = _hsv(hue, rng.uniform(0.5, 0.9), rng.uniform(0.5, 0.9)), (245, 245, 240)
    im = Image.new("RGB", (s, s), b)
    d = ImageDraw.Draw(im)
    width = int(rng.integers(8, 16))
    for x in range(-s, 2 * s, 2 * width):
        d.polygon([(x, 0), (x + width, 0), (x + width + s // 3, s), (x + s // 3, s)], fill=a)
    return im


def _polka(rng: np.random.Generator, s: int) -> Image.Image:
    hue = rng.random()
    bg, dot = _hsv(hue, rng.uniform(0.4, 0.9), rng.uniform(0.4, 0.9)), (250, 250, 250)
    im = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(im)
    step, r = int(rng.integers(20, 30)), int(rng.integers(4, 7))
    for row, y in enumerate(range(0, s + step, step)):
        for x in range((row % 2) * step // 2, s + step, step):
            d.ellipse((x - r, y - r, x + r, y + r), fill=dot)
    return im


def _plaid(rng: np.random.Generator, s: int) -> Image.Image:
    hue = rng.random()
    base = np.full((s, s, 3), _hsv(hue, 0.6, 0.55), np.float32)
    band = np.array(_hsv(hue + 0.5, 0.7, 0.35), np.float32)
    thin = np.array((235, 225, 200), np.float32)
    period = int(rng.integers(36, 52))
    idx = np.arange(s)
    wide = (idx % period) < period // 3
    narrow = (idx % period) == period // 2
    for mask_1d, color, alpha in ((wide, band, 0.5), (narrow, thin, 0.7)):
        rows = mask_1d[:, None] & np.ones((1, s), bool)
        cols = mask_1d[None, :] & np.ones((s, 1), bool)
        for m in (rows, cols):
            base[m] = base[m] * (1 - alpha) + color * alpha
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def _floral(rng: np.random.Generator, s: int) -> Image.Image:
    bg = _hsv(rng.random(), 0.15, 0.95)
    im = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(14, 22))):
        cx, cy = rng.uniform(0, s, 2)
        petal = _hsv(rng.random(), 0.7, 0.9)
        r = rng.uniform(6, 11)
        for k in range(5):
            a = 2 * math.pi * k / 5 + rng.uniform(0, 1)
            px, py = cx + r * math.cos(a), cy + r * math.sin(a)
            d.ellipse((px - r * 0.6, py - r * 0.6, px + r * 0.6, py + r * 0.6), fill=petal)
        d.ellipse((cx - r * 0.35, cy - r * 0.35, cx + r * 0.35, cy + r * 0.35), fill=(250, 210, 60))
        d.line((cx, cy + r, cx + rng.uniform(-6, 6), cy + 2.2 * r), fill=(60, 140, 60), width=3)
    return im


def _pastel(rng: np.random.Generator, s: int) -> Image.Image:
    base = np.full((s, s, 3), _hsv(rng.random(), rng.uniform(0.18, 0.3), 0.96), np.float32)
    base += rng.normal(0, 2.0, (s, s, 1))
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def _neon(rng: np.random.Generator, s: int) -> Image.Image:
    hue = rng.choice([0.33, 0.9, 0.55, 0.15]) + rng.uniform(-0.03, 0.03)
    im = Image.new("RGB", (s, s), _hsv(hue, 1.0, 1.0))
    d = ImageDraw.Draw(im)
    for _ in range(3):
        y = rng.uniform(0, s)
        d.line((0, y, s, y + rng.uniform(-40, 40)), fill=_hsv(hue + 0.5, 1.0, 1.0), width=int(rng.integers(4, 8)))
    return im


def _monochrome(rng: np.random.Generator, s: int) -> Image.Image:
    g = np.linspace(rng.uniform(20, 80), rng.uniform(150, 230), s, dtype=np.float32)
    arr = (g[:, None] if rng.random() < 0.5 else g[None, :]) * np.ones((s, s), np.float32)
    arr += rng.normal(0, 6, (s, s))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L").convert("RGB")


def _vintage(rng: np.random.Generator, s: int) -> Image.Image:
    inner = [_stripes, _polka, _plaid, _floral][int(rng.integers(0, 4))](rng, s)
    arr = np.asarray(inner.convert("L"), np.float32) / 255.0
    sepia = np.stack([0.45 + 0.4 * arr, 0.35 + 0.35 * arr, 0.22 + 0.25 * arr], -1) * 255
    sepia += rng.normal(0, 9, (s, s, 1))
    return Image.fromarray(sepia.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))


FILLS: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    "stripes": _stripes,
    "polka_dots": _polka,
    "plaid": _plaid,
    "floral": _floral,
    "solid_pastel": _pastel,
    "neon": _neon,
    "monochrome": _monochrome,
    "vintage_faded": _vintage,
}


def render(product: str, style: str, rng: np.random.Generator) -> Image.Image:
    """One product photo (RGB, SIZE×SIZE): a ``style``-filled ``product`` on white."""
    s = SIZE * 2
    mask = _silhouette(product, rng)
    fill = FILLS[style](rng, s)
    photo = Image.new("RGB", (s, s), (255, 255, 255))
    photo.paste(fill, (0, 0), mask)
    outline = mask.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 40 else 0)
    photo.paste((40, 40, 40), (0, 0), outline)
    return photo.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def generate(folder: Path, per_cell: int = 4, seed: int = 0) -> tuple[Path, list[tuple[Path, str, str]]]:
    """Write ``folder/catalog/<style>/<product>-<n>.png``, ``folder/catalog/manifest.csv``
    (id, path, label, product) and one held-out query per (product, style) under
    ``folder/queries``. Returns (manifest path, [(query path, style, product)])."""
    rng = np.random.default_rng(seed)
    catalog = folder / "catalog"
    queries = folder / "queries"
    queries.mkdir(parents=True, exist_ok=True)
    rows = []
    for style in STYLES:
        (catalog / style).mkdir(parents=True, exist_ok=True)
        for product in PRODUCTS:
            for n in range(per_cell):
                rel = f"{style}/{product}-{n}.png"
                render(product, style, rng).save(catalog / rel)
                rows.append((f"{style}-{product}-{n}", rel, style, product))
    manifest = catalog / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "path", "label", "product"])
        writer.writerows(rows)
    held_out = []
    for style in STYLES:
        for product in PRODUCTS:
            path = queries / f"{product}-{style}.png"
            render(product, style, rng).save(path)
            held_out.append((path, style, product))
    return manifest, held_out


def run_demo(
    folder: Path,
    index_dir: Path | None = None,
    *,
    per_cell: int = 4,
    run: Any = None,
    out: Callable[[str], Any] | None = print,
) -> dict[str, Any]:
    """Generate the catalog, index it, and show same-style results and classifications."""
    from .config import EmbedConfig
    from .engine import StyleSearch
    from .ingest import index_catalog

    say = out or (lambda _msg: None)
    index_dir = index_dir or folder / "index"
    manifest, held_out = generate(folder, per_cell)
    say(
        f"generated {len(PRODUCTS) * len(STYLES) * per_cell} product images "
        f"({len(PRODUCTS)} products x {len(STYLES)} styles) in {manifest.parent}"
    )
    # the demo knows its size: a projection of fewer dimensions than it has photos fits every one
    # (the default 256 would need more than 256 photos, and warn that it does not)
    images = len(PRODUCTS) * len(STYLES) * per_cell
    below = 1 << max(0, (images - 1).bit_length() - 1)  # the largest power of two below the photo count
    dim = max(8, min(EmbedConfig().dim, below))
    report = index_catalog(manifest, index_dir, embed=EmbedConfig(dim=dim), run=run)
    say(f"indexed {report.added} images into {index_dir} in {report.seconds:.1f} s")
    summary: dict[str, Any] = {"index": str(index_dir), "indexed": report.added, "examples": []}
    with StyleSearch.open(index_dir, run=run) as engine:
        for path, style, product in [held_out[1], held_out[14], held_out[33]]:
            result = engine.query(path, k=5)
            verdict = engine.classify(path, k=10)
            say(f"\nquery {path.name}  (a {style.replace('_', ' ')} {product}, not in the index)")
            say("  same-style items:")
            for h in result.results:
                say(f"    {h.score:.3f}  {h.id:<28} style={h.label} product={h.attributes.get('product')}")
            label = verdict.label or "unknown"
            support = f"; {verdict.support} of 10 neighbours {verdict.answer}" if verdict.support is not None else ""
            say(f"  classified as: {label} (confidence {verdict.confidence:.2f}{support})")
            summary["examples"].append({"query": result.to_dict(), "classification": verdict.to_dict()})
        predicted = engine.classify([p for p, _, _ in held_out], k=10, min_confidence=0.0, min_familiarity=0.0)
        correct = sum(c.label == style for c, (_, style, _) in zip(predicted, held_out))
        other_product = engine.query([p for p, _, _ in held_out], k=5)
        same_style = np.mean([[h.label == s for h in r.results] for r, (_, s, _) in zip(other_product, held_out)])
    summary["held_out_accuracy"] = correct / len(held_out)
    summary["precision_at_5"] = float(same_style)
    say(
        f"\nstyle of {len(held_out)} held-out images: {correct}/{len(held_out)} classified right by kNN; "
        f"{same_style:.0%} of their top-5 neighbours share their style"
    )
    return summary
