"""`index --ray` on a local Ray instance (2 CPUs, bound to 127.0.0.1): the same items and
the same vectors (max abs difference <= 1e-4) as the local path, with failures reported the
same way; and the CLI flag."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from stylesearch import StyleSearch, index_catalog  # noqa: E402
from stylesearch.config import IndexConfig  # noqa: E402

from ..conftest import RUN, SMALL  # noqa: E402


def vectors_by_id(index: Path) -> dict[str, np.ndarray]:
    with StyleSearch.open(index, run=RUN) as engine:
        store = engine.snapshot.backend
        records = engine.snapshot.meta.by_vids(store.ids.tolist())
        return {records[int(v)].id: store.vectors[i].astype(np.float32) for i, v in enumerate(store.ids)}


@pytest.fixture(scope="module")
def ray_local() -> object:
    from stylesearch.ingest import ray as ray_ingest

    ray = ray_ingest.start(None, 2)
    yield ray
    ray_ingest.shutdown()


def test_ray_vectors_equal_the_local_path(demo_data, tmp_path: Path, ray_local: object) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog"
    shutil.copytree(Path(demo_data[0]).parent, catalog)
    (catalog / "floral" / "broken.png").write_bytes(b"not an image")
    options = IndexConfig(pca_sample=48)
    local = index_catalog(catalog, tmp_path / "local", embed=SMALL, run=RUN, options=options)
    remote = index_catalog(catalog, tmp_path / "ray", embed=SMALL, run=RUN, options=options, ray="local", ray_workers=2)
    assert remote.added == local.added and [s.path for s in remote.skipped] == [s.path for s in local.skipped]
    a, b = vectors_by_id(tmp_path / "local"), vectors_by_id(tmp_path / "ray")
    assert set(a) == set(b)
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-4
    assert os.environ.get("RAY_ADDRESS") is None  # nothing left pointing at a cluster
