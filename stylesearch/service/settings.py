"""Service settings from arguments or the environment (prefix ``STYLESEARCH_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..config import DEFAULT_INDEX_DIR


class Settings(BaseSettings):
    """``STYLESEARCH_INDEX=indexes/shop STYLESEARCH_API_KEYS=k1,k2 stylesearch serve`` — every
    field can be set as ``STYLESEARCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="STYLESEARCH_", extra="ignore")

    index: str = Field(DEFAULT_INDEX_DIR, description="index folder to serve")
    device: str = Field("auto", description="auto | cpu | cuda")
    engine: str = Field("auto", description="what runs the style model: auto | torch | openvino")
    api_keys: SecretStr = Field(SecretStr(""), description="comma-separated keys for write endpoints; none: writes refused")
    read_requires_key: bool = Field(False, description="also require a key for reads")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="largest accepted upload")
    max_pixels: int = Field(40_000_000, gt=0, description="largest accepted image (width × height)")
    max_files: int = Field(16, gt=0, description="most images in one classify request")
    max_k: int = Field(200, gt=0, description="largest k a request may ask for")
    min_familiarity: float | None = Field(
        None, ge=0, le=1, description="below this familiarity a photo is out of the catalog (default: the library's)"
    )
    batch_max_images: int = Field(32, gt=0, description="micro-batch: most images in one forward pass")
    batch_max_wait_ms: float = Field(5.0, ge=0, description="micro-batch: how long the first image waits for others")
    sync_roots: str = Field(
        "", description="comma-separated folders whose catalogs POST /v1/sync may read; none: sync over HTTP is refused"
    )

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not value.startswith("cuda:"):
            raise ValueError("device must be auto, cpu or cuda")
        return value

    def roots(self) -> list[Path]:
        return [Path(r.strip()).resolve() for r in self.sync_roots.split(",") if r.strip()]

    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]
