from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylesearch.errors import ConfigError, DuplicateItemError, ItemNotFoundError
from stylesearch.index import MetadataStore, Record


@pytest.fixture
def meta(tmp_path: Path) -> MetadataStore:
    m = MetadataStore(tmp_path / "m.sqlite")
    m.add(
        [
            Record(0, "a", "/a.jpg", "boho", {"category": "dress", 'odd "key"': "x"}),
            Record(1, "b", "/b.jpg", "minimal", {"category": "mug"}),
            Record(2, "c", "/c.jpg", None, {"category": "dress"}),
        ]
    )
    return m


def test_filters(meta: MetadataStore) -> None:
    assert meta.vids_where(None) is None
    assert meta.vids_where({"category": "dress"}).tolist() == [0, 2]
    assert meta.vids_where({"category": "dress"}, labelled=True).tolist() == [0]
    assert meta.vids_where({"category": ["dress", "mug"], "label": "minimal"}).tolist() == [1]
    assert meta.vids_where({'odd "key"': "x"}).tolist() == [0]
    assert meta.vids_where({"nope": "x"}).tolist() == []
    with pytest.raises(ConfigError):
        meta.vids_where({"category": 3})  # type: ignore[dict-item]


def test_lookup_remove_and_duplicates(meta: MetadataStore) -> None:
    assert meta.by_ids(["b"])[0].attributes == {"category": "mug"}
    assert meta.label_counts() == {"boho": 1, "minimal": 1}
    assert meta.attribute_keys() == ["category", 'odd "key"']
    with pytest.raises(DuplicateItemError, match="'a'"):
        meta.add([Record(7, "z", "/z", None), Record(8, "a", "/a2", None)])
    assert meta.count() == 3  # the failed insert added nothing
    with pytest.raises(ItemNotFoundError, match="'q'"):
        meta.remove(["a", "q"])
    assert meta.count() == 3
    assert meta.remove(["a", "c"]) == [0, 2] and meta.vids().tolist() == [1] and meta.max_vid() == 1


def test_copy_signatures_are_stored_and_removed_with_their_items(meta: MetadataStore) -> None:
    meta.add([Record(100, "sig-a", "a.jpg", None), Record(101, "sig-b", "b.jpg", None)])
    signatures = np.arange(2 * 12, dtype=np.uint8).reshape(2, 12)
    meta.set_signatures([101], signatures[1:])
    found, ok = meta.signatures([100, 101], 12)
    assert ok.tolist() == [False, True] and np.array_equal(found[1], signatures[1]) and not found[0].any()
    assert not meta.signatures([101], 10)[1].any()  # another width: not usable
    meta.remove(["sig-b"])
    assert not meta.signatures([101], 12)[1].any()
