"""``stylesearch add``, ``remove``, ``info`` and ``backbones``: the items of an index and what it is."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import Commands, emit, fmt_report, open_index


def cmd_add(args: argparse.Namespace) -> int:
    from .. import Where

    attrs = Where.parse_pairs(args.attr, "--attr").single()
    if attrs is None:
        raise UsageError("--attr names the same key twice")
    with open_index(args) as engine:
        report = engine.add(list(args.images), labels=args.label, ids=args.id or None, attributes=attrs)
    emit(args, report.to_dict(), fmt_report(report, "added"))
    return 0 if report.added else 1


def cmd_remove(args: argparse.Namespace) -> int:
    with open_index(args) as engine:
        removed = engine.remove(list(args.ids))
        items = len(engine)
    emit(args, {"removed": removed, "items": items}, f"removed {removed} item(s); the index holds {items} items")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with open_index(args) as engine:
        info = engine.info()
    embed = info["embed"]
    text = "\n".join(
        [
            f"index:      {info['index']} ({info['generation']})",
            f"items:      {info['items']}",
            "labels:     " + (", ".join(f"{k} ({v})" for k, v in info["labels"].items()) or "none"),
            "attributes: " + (", ".join(info["attributes"]) or "none"),
            f"model:      {embed['backbone']} [{info['weights_id']}], recipe {embed['recipe']}, "
            f"{embed['image_size']} px, {info['raw_dim']} -> {info['dim']} dims ({info['projection']['kind']}"
            f"{_whitening(embed)}){', flip-averaged' if embed.get('tta') == 'flip' else ''}",
            f"search:     {info['index_type']} ({info['index_key']}"
            + "".join(f", {k}={v}" for k, v in info["search_params"].items())
            + f") on {info['search_backend']}; vectors {info['vector_dtype']}",
            f"device:     {info['device']}; style model run by {info['engine']}",
            "vectors by: " + (", ".join(info.get("computed_by") or []) or "not recorded (an older index)"),
            f"updated:    {info['updated']} (created {info['created']})",
        ]
    )
    emit(args, info, text)
    return 0


def _whitening(embed: dict[str, object]) -> str:
    power = embed.get("whiten") or 0
    return f", whitened {power} (shrink {embed.get('whiten_shrink') or 0})" if power else ""


def cmd_backbones(args: argparse.Namespace) -> int:
    from .. import describe_backbones

    found = describe_backbones()
    emit(args, found, "\n".join(f"{k:<20} {v}" for k, v in found.items()))
    return 0


def register(commands: Commands) -> None:
    p = commands.add("add", "add images to an index", cmd_add)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--label", help="style label of all the images")
    p.add_argument("--attr", action="append", metavar="KEY=VALUE", help="attribute of all the images (repeatable)")
    p.add_argument("--id", action="append", help="item id, once per image in order (default: file name stem)")

    p = commands.add("remove", "remove items by id", cmd_remove)
    p.add_argument("ids", nargs="+", metavar="ID")

    commands.add("info", "describe an index", cmd_info)
    commands.add("backbones", "list the available backbones", cmd_backbones)
