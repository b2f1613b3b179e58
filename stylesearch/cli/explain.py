"""``stylesearch explain``: why an item matches a photo — block shares and heat maps, as text
and as a picture."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import Commands, emit, open_index


def cmd_explain(args: argparse.Namespace) -> int:
    item = args.item[len("item:") :] if args.item.startswith("item:") else args.item
    with open_index(args) as engine:
        why = engine.explain(args.query, item)
        size = engine.embedder.config.image_size
        photos = [args.query if not args.query.startswith("item:") else engine.get(args.query[5:]).path, engine.get(item).path]
    if args.out:
        render(Path(args.out), why, photos, size, args.query, item)
    lines = [f"{args.query} ~ {item}: similarity {why.score:.3f} (raw statistics {why.raw_similarity:.3f})"]
    lines.append("  per block, how much more alike than a typical pair of this catalog:")
    lines += [f"  {b['block']:<8} {b['kind']:<16} {_versus_catalog(b)}  share {b['share']:6.1%}" for b in why.blocks]
    if args.out:
        lines.append(f"written: {args.out}")
    emit(args, why.to_dict(), "\n".join(lines))
    return 0


def _versus_catalog(block: dict[str, Any]) -> str:
    if block.get("lift") is None:
        return f"cosine {block['cosine']:.3f}"
    return (
        f"{block['lift']:+5.1f} sd, above {block['percentile']:6.1%} of catalog pairs "
        f"(cosine {block['cosine']:.3f}, typical {block['catalog_mean']:.3f})"
    )


def render(path: Path, why: Any, photos: list[str], size: int, query: str, item: str) -> None:
    """The two photos at their own aspect ratio with their heat maps laid over (a colour
    scale beside), and per block its share of the lift over a typical catalog pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..catalog import path_of
    from ..images import load_image

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1, 1, 1.3]})
    for ax, photo, heat, title in zip(axes, photos, why.heat, (query, f"item {item}")):
        image = np.asarray(load_image(path_of(photo) if isinstance(photo, str) else photo).convert("RGB"))
        height, width = image.shape[:2]
        ax.imshow(image, extent=(0, width, height, 0))
        # the heat map is made on the model's square input: stretched back over the photo as it was squeezed
        shown = ax.imshow(
            np.ma.masked_where(heat < 0.05, heat), cmap="inferno", alpha=0.6, vmin=0, vmax=1, extent=(0, width, height, 0)
        )
        ax.set_aspect("equal")
        ax.set_title(title[-40:], fontsize=9)
        ax.axis("off")
    fig.colorbar(shown, ax=list(axes[:2]), fraction=0.03, pad=0.02, label="how much hiding it lowers the similarity")
    bars = axes[2]
    names = [f"{b['block']} ({b['kind']})" for b in why.blocks]
    bars.barh(names[::-1], [b["share"] for b in why.blocks][::-1], color="#2f5fd0")
    for y, b in enumerate(why.blocks[::-1]):
        if b.get("lift") is not None:
            bars.text(b["share"], y, f" {b['lift']:+.1f} sd", va="center", fontsize=8)
    bars.set_xlabel("share of how much more alike than a typical catalog pair")
    bars.set_title(f"similarity {why.score:.3f}", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def register(commands: Commands) -> None:
    p = commands.add("explain", "why an item matches a photo: each style block's share, and heat maps", cmd_explain)
    p.add_argument("query", metavar="QUERY", help="a photo, or item:ID for an indexed item")
    p.add_argument("item", metavar="ITEM", help="the indexed item it matched (its id)")
    p.add_argument("--out", help="write a picture: both photos with their heat maps, and the blocks' shares (.png)")
