"""Every error says how it reaches people — a stable code, an HTTP status, an exit code — and
docs/api.md documents each one."""

from __future__ import annotations

from pathlib import Path

import pytest

from stylesearch.cli import main
from stylesearch.errors import StyleSearchError, all_errors

README = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("error", all_errors(), ids=lambda e: e.__name__)
def test_each_error_maps_to_a_documented_status_and_exit_code(error: type[StyleSearchError]) -> None:
    assert 400 <= error.http_status < 600 and error.exit_code in (1, 2)
    assert f"`{error.code}`" in README, f"docs/api.md's error table lacks {error.code}"
    assert f"| {error.http_status} |" in README.split(f"`{error.code}`", 1)[1].split("\n", 1)[0]


def test_codes_are_unique() -> None:
    codes = [e.code for e in all_errors()]
    assert len(codes) == len(set(codes))


def test_usage_mistakes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "x.jpg", "--index", str(tmp_path), "--where", "no-equals-sign"]) == 2
    assert "must look like KEY=VALUE" in capsys.readouterr().err
    assert main(["index", str(tmp_path), "--index", str(tmp_path / "i"), "--store", "redis://h/x"]) == 2
    assert "unknown store" in capsys.readouterr().err
