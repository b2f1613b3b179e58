from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stylesearch import demo

from .conftest import RUN


def test_render_is_seeded_and_varies_by_style_and_product() -> None:
    a = np.asarray(demo.render("mug", "plaid", np.random.default_rng(3)))
    b = np.asarray(demo.render("mug", "plaid", np.random.default_rng(3)))
    assert a.shape == (demo.SIZE, demo.SIZE, 3) and np.array_equal(a, b)
    assert (a[0, 0] == 255).all()  # white studio background
    for other in (demo.render("mug", "neon", np.random.default_rng(3)), demo.render("lamp", "plaid", np.random.default_rng(3))):
        assert not np.array_equal(a, np.asarray(other))


def test_demo_generates_indexes_and_classifies(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    summary = demo.run_demo(tmp_path / "d", per_cell=2, run=RUN, out=lines.append)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text  # the demo knows its own size
    assert summary["indexed"] == len(demo.PRODUCTS) * len(demo.STYLES) * 2
    assert len(list((tmp_path / "d" / "catalog").glob("*/*.png"))) == summary["indexed"]
    assert summary["held_out_accuracy"] >= 0.8 and summary["precision_at_5"] >= 0.6
    assert any("same-style items" in line for line in lines)
