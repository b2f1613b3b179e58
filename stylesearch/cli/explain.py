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
    lines += [f"  {b['block']:<8} {b['kind']:<16} share {b['share']:6.1%}  (cosine {b['cosine']:.3f})" for b in why.blocks]
    if args.out:
        lines.append(f"written: {args.out}")
    emit(args, why.to_dict(), "\n".join(lines))
    return 0


def render(path: Path, why: Any, photos: list[str], size: int, query: str, item: str) -> None:
    """The two photos with their heat maps laid over, and the blocks' shares as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..catalog import path_of
    from ..images import load_tensor

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    for ax, photo, heat, title in zip(axes, photos, why.heat, (query, f"item {item}")):
        image = load_tensor(path_of(photo) if isinstance(photo, str) else photo, size).permute(1, 2, 0).numpy()
        ax.imshow(image)
        import numpy as np

        ax.imshow(np.ma.masked_where(heat < 0.05, heat), cmap="autumn_r", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(title[-40:], fontsize=9)
        ax.axis("off")
    bars = axes[2]
    names = [f"{b['block']} ({b['kind']})" for b in why.blocks]
    bars.barh(names[::-1], [b["share"] for b in why.blocks][::-1], color="#2f5fd0")
    bars.set_xlabel("share of the similarity")
    bars.set_title(f"similarity {why.score:.3f}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def register(commands: Commands) -> None:
    p = commands.add("explain", "why an item matches a photo: each style block's share, and heat maps", cmd_explain)
    p.add_argument("query", metavar="QUERY", help="a photo, or item:ID for an indexed item")
    p.add_argument("item", metavar="ITEM", help="the indexed item it matched (its id)")
    p.add_argument("--out", help="write a picture: both photos with their heat maps, and the blocks' shares (.png)")
