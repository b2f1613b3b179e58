"""The ``/v1`` endpoints. Model and index work runs on worker threads, never on the event loop;
uploaded images go through the micro-batcher."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile as StarletteUpload

from .. import Example, Where
from ..catalog import Columns, path_of
from ..config import DUPLICATE_THRESHOLD
from ..errors import ConfigError, ImageError
from ..images import check_upload, sniff_image_type
from ..results import Hit
from . import schemas
from .deps import ApiError, Reader, Services, Writer

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": text}
    for status, text in {
        400: "bad request (malformed body or parameters)",
        401: "missing or wrong API key",
        403: "writes are disabled on this server",
        404: "no such item",
        409: "the item id is taken",
        413: "upload too large",
        415: "not an image type we read",
        422: "invalid parameters, or an image that cannot be decoded",
        503: "not ready",
    }.items()
}

router = APIRouter(prefix="/v1", responses=ERRORS)


# --------------------------------------------------------------------------- helpers


def item_out(hit: Hit, with_score: bool = True) -> schemas.Item:
    return schemas.Item(
        id=hit.id,
        label=hit.label,
        attributes=hit.attributes,
        image_url=f"/v1/items/{quote(hit.id, safe='')}/image",
        score=hit.score if with_score else None,
        group=hit.group,
    )


def _k(svc: Services, k: int | str) -> int:
    """``k`` checked in one place: a whole number from 1 to the server's ``max_k`` (the
    schemas state the same bounds in the OpenAPI document)."""
    try:
        k = int(k)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "k must be an integer") from exc
    if not 1 <= k <= svc.settings.max_k:
        raise ApiError(422, "invalid_request", f"k must be from 1 to {svc.settings.max_k}, got {k}")
    return k


def _where(text: str | None) -> Where:
    """A ``where`` filter sent as a JSON string (form fields and query parameters)."""
    try:
        return Where.parse_json(text)
    except ConfigError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from exc


async def _read_upload(svc: Services, upload: StarletteUpload) -> bytes:
    limit = svc.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413, "payload_too_large", f"{upload.filename or 'the upload'} is over the {limit}-byte limit: send a smaller image"
        )
    try:
        check_upload(data, max_bytes=limit, max_pixels=svc.settings.max_pixels)
    except ImageError as exc:
        raise ApiError(exc.http_status, exc.code, f"{upload.filename or 'upload'}: {exc}") from exc
    return data


async def _embed(svc: Services, names: list[str], images: list[bytes]) -> np.ndarray:
    """float32 [N, D] style vectors of uploaded images, micro-batched with other requests."""
    done = await svc.batcher.embed(images)
    if (first := done.first_failure()) is not None:
        raise ApiError(422, "bad_image", f"{names[first[0]]}: {first[1]}")
    return done.values.astype(np.float32)


def _only_fields(given: Iterable[str], allowed: Sequence[str]) -> None:
    """422 for form fields the schema does not have (its ``additionalProperties`` is false)."""
    stray = sorted(set(given) - set(allowed))
    if stray:
        raise ApiError(
            422, "invalid_request", f"unexpected form field(s) {', '.join(stray)}: this endpoint takes {', '.join(allowed)}"
        )


def strict_form(*allowed: str) -> Any:
    """A dependency that refuses multipart fields beyond ``allowed``."""

    async def check(request: Request) -> None:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            _only_fields((await request.form()).keys(), allowed)

    return Depends(check)


async def _hint(svc: Services, found: bool, where: Any) -> str | None:
    """Why a filtered answer is empty (a value no item has), else ``None``."""
    if found or not where:
        return None
    return await run_in_threadpool(svc.engine.snapshot.hint, where)


async def _search_response(svc: Services, query: str, hits: list[Hit], where: Any, t0: float) -> schemas.SearchResponse:
    return schemas.SearchResponse(
        query=query,
        results=[item_out(h) for h in hits],
        took_ms=_ms(t0),
        hint=await _hint(svc, bool(hits), where),
        familiarity=None,
    )


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


# --------------------------------------------------------------------------- search


_SEARCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "a product photo"},
                        "k": {"type": "integer", "minimum": 1, "maximum": schemas.K_LIMIT, "default": 10},
                        "where": {"type": "string", "description": "JSON object; " + schemas.WHERE_DESCRIPTION},
                        "group_by": {"type": "string", "minLength": 1, "maxLength": 200, "description": schemas.GROUP_BY},
                        "group_size": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
                        "diversity": {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                            "default": 0,
                            "description": schemas.DIVERSITY,
                        },
                    },
                }
            },
            "application/json": {"schema": schemas.SearchByItem.model_json_schema(ref_template="#/components/schemas/{model}")},
        },
    }
}


@router.post(
    "/search",
    response_model=schemas.SearchResponse,
    summary="Same-style items for an uploaded photo (multipart) or an indexed item (JSON)",
    openapi_extra=_SEARCH_BODY,
)
async def search(request: Request, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        _only_fields(form.keys(), ("file", "k", "where", "group_by", "group_size", "diversity", "collapse"))
        upload = form.get("file")
        if not isinstance(upload, StarletteUpload):
            raise ApiError(422, "invalid_request", "send the photo as the multipart file field 'file'")
        k = _k(svc, str(form.get("k", 10)))
        where = _where(str(form["where"]) if "where" in form else None)
        arrange = _arranged({key: str(form[key]) for key in ("group_by", "group_size", "diversity", "collapse") if key in form})
        data = await _read_upload(svc, upload)
        vectors = await _embed(svc, [upload.filename or "file"], [data])
        name = upload.filename or "upload"
        (found,) = await run_in_threadpool(lambda: svc.engine.query_vectors(vectors, k, where, [name], **arrange))
        return schemas.SearchResponse(
            query=name,
            results=[item_out(h) for h in found.results],
            took_ms=_ms(t0),
            hint=found.hint,
            familiarity=found.familiarity,
            out_of_catalog=found.out_of_catalog,
        )
    if content_type.startswith("application/json"):
        try:
            body = schemas.SearchByItem.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", _summary(exc)) from exc
        similar = await run_in_threadpool(
            lambda: svc.engine.similar(body.item_id, _k(svc, body.k), body.where, **body.arrangement())
        )
        return await _search_response(svc, f"item:{body.item_id}", similar, body.where, t0)
    raise ApiError(415, "unsupported_media_type", "send multipart/form-data with a 'file', or JSON {\"item_id\": ...}")


def _arranged(fields: dict[str, str]) -> dict[str, Any]:
    """group_by / group_size / diversity given as form fields, checked as the JSON bodies are."""
    try:
        return schemas.Arranged.model_validate(fields).arrangement()
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _summary(exc)) from exc


def _summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)


@router.post("/recommend", response_model=schemas.SearchResponse, summary="More like these items, less like those")
async def recommend(body: schemas.RecommendRequest, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    hits = await run_in_threadpool(
        lambda: svc.engine.recommend(body.positive, body.negative, _k(svc, body.k), body.where, **body.arrangement())
    )
    return await _search_response(svc, "recommend", hits, body.where, t0)


@router.post(
    "/board",
    response_model=schemas.SearchResponse,
    summary="Items in the style of a mood board: weighted photos, items and vectors (negative weights push away)",
)
async def board(body: schemas.BoardRequest, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    k = _k(svc, body.k)
    photos = [(i, e) for i, e in enumerate(body.examples) if e.image is not None]
    images = [_base64_image(svc, e.image or "", f"examples.{i}.image") for i, e in photos]
    embedded = iter(await _embed(svc, [f"examples.{i}.image" for i, _ in photos], images) if images else [])
    examples = [  # an uploaded photo is passed on as its vector, embedded with the other uploads
        Example("vector", next(embedded), e.weight)
        if e.image is not None
        else Example("item", e.item, e.weight)
        if e.item is not None
        else Example("vector", e.vector, e.weight)
        for e in body.examples
    ]
    hits = await run_in_threadpool(lambda: svc.engine.board(examples, k, body.where, body.strategy, **body.arrangement()))
    return await _search_response(svc, "board", hits, body.where, t0)


def _base64_image(svc: Services, text: str, name: str) -> bytes:
    """A base64-encoded photo of a JSON body, within the upload limits."""
    limit = svc.settings.max_upload_bytes
    if len(text) > (limit + 2) // 3 * 4 + 4:
        raise ApiError(413, "payload_too_large", f"{name} is over the {limit}-byte limit: send a smaller image")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "invalid_request", f"{name} is not valid base64") from exc
    try:
        check_upload(data, max_bytes=limit, max_pixels=svc.settings.max_pixels)
    except ImageError as exc:
        raise ApiError(exc.http_status, exc.code, f"{name}: {exc}") from exc
    return data


@router.get("/explain", response_model=schemas.ExplainResponse, summary="Why an item matches another: block shares, heat maps")
async def explain_items(
    svc: Reader,
    query: Annotated[str, Query(min_length=1, description="the indexed item searched from (its id)")],
    item: Annotated[str, Query(min_length=1, description="the indexed item it matched (its id)")],
    grid: Annotated[int, Query(ge=2, le=64, description="cells per side of the heat maps")] = 16,
) -> schemas.ExplainResponse:
    t0 = time.perf_counter()
    why = await run_in_threadpool(svc.engine.explain, f"item:{query}", item)
    return _explained(svc, f"item:{query}", item, why, grid, t0)


@router.post(
    "/explain",
    response_model=schemas.ExplainResponse,
    summary="Why an item matches an uploaded photo: block shares, heat maps",
    dependencies=[strict_form("file", "item", "grid")],
)
async def explain_upload(
    svc: Reader,
    file: Annotated[UploadFile, File(description="the photo searched with")],
    item: Annotated[str, Form(min_length=1, description="the indexed item it matched (its id)")],
    grid: Annotated[int, Form(ge=2, le=64)] = 16,
) -> schemas.ExplainResponse:
    t0 = time.perf_counter()
    data = await _read_upload(svc, file)
    why = await run_in_threadpool(svc.engine.explain, data, item)
    return _explained(svc, file.filename or "upload", item, why, grid, t0)


def _explained(svc: Services, query: str, item: str, why: Any, grid: int, t0: float) -> schemas.ExplainResponse:
    body = why.to_dict(grid)
    return schemas.ExplainResponse(query=query, item=item_out(svc.engine.get(item)), took_ms=_ms(t0), **body)


# --------------------------------------------------------------------------- classify


@router.post(
    "/classify",
    response_model=schemas.ClassifyResponse,
    summary="Style of uploaded photos, with evidence",
    dependencies=[strict_form("file", "method", "k", "prior", "min_confidence", "where", "min_familiarity")],
)
async def classify(
    svc: Reader,
    file: Annotated[list[UploadFile], File(description="one or more product photos")],
    method: Annotated[Literal["knn", "linear", "both"], Form()] = "both",
    k: Annotated[int, Form(ge=1, le=schemas.K_LIMIT)] = 10,
    prior: Annotated[
        Literal["catalog", "uniform"],
        Form(description="catalog: the index's label shares mixed with uniform (default); uniform: every style alike"),
    ] = "catalog",
    min_confidence: Annotated[float | None, Form(ge=0, le=1)] = None,
    where: Annotated[str | None, Form(description="JSON object; " + schemas.WHERE_DESCRIPTION)] = None,
    min_familiarity: Annotated[
        float | None, Form(ge=0, le=1, description="below it the label is null, reason out_of_catalog (0: off)")
    ] = None,
) -> schemas.ClassifyResponse:
    t0 = time.perf_counter()
    if len(file) > svc.settings.max_files:
        raise ApiError(413, "too_many_files", f"at most {svc.settings.max_files} images per request")
    names = [f.filename or f"file{i + 1}" for i, f in enumerate(file)]
    data = [await _read_upload(svc, f) for f in file]
    vectors = await _embed(svc, names, data)
    verdicts = await run_in_threadpool(
        svc.engine.classify_vectors, vectors, _k(svc, k), _where(where), min_confidence, method, prior, min_familiarity
    )
    results = []
    for name, v in zip(names, verdicts):
        results.append(
            schemas.Classification(
                image=name,
                label=v.label,
                confidence=v.confidence,
                method=v.method,  # type: ignore[arg-type]
                scores=v.scores,
                knn=v.knn,  # type: ignore[arg-type]
                linear=v.linear,  # type: ignore[arg-type]
                neighbors=[item_out(h) for h in v.neighbors],
                reason=v.reason,  # type: ignore[arg-type]
                hint=v.hint,
                familiarity=v.familiarity,
                out_of_catalog=v.out_of_catalog,
                answer=v.answer,
                support=v.support,
                prior=v.prior,  # type: ignore[arg-type]
            )
        )
    return schemas.ClassifyResponse(results=results, took_ms=_ms(t0))


# --------------------------------------------------------------------------- shares


@router.post(
    "/shares",
    response_model=schemas.SharesResponse,
    summary="Style shares of a photo set (uploads and/or indexed items), with 95 % intervals",
    dependencies=[strict_form("file", "items", "k")],
)
async def style_shares(
    svc: Reader,
    file: Annotated[list[UploadFile] | None, File(description="photos of the set")] = None,
    items: Annotated[str | None, Form(description='JSON list of indexed item ids in the set, e.g. ["a", "b"]')] = None,
    k: Annotated[int, Form(ge=1, le=schemas.K_LIMIT)] = 10,
) -> schemas.SharesResponse:
    from .. import shares

    t0 = time.perf_counter()
    uploads = file or []
    if len(uploads) > svc.settings.max_files:
        raise ApiError(413, "too_many_files", f"at most {svc.settings.max_files} images per request")
    try:
        ids = TypeAdapter(list[str]).validate_json(items) if items else []
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", "items must be a JSON list of item ids") from exc
    if not uploads and not ids:
        raise ApiError(422, "invalid_request", "send the photos as file fields, or their item ids as items")
    parts = []
    if uploads:
        names = [f.filename or f"file{i + 1}" for i, f in enumerate(uploads)]
        parts.append(await _embed(svc, names, [await _read_upload(svc, f) for f in uploads]))
    if ids:
        parts.append((await run_in_threadpool(svc.engine.snapshot.vectors_of, ids))[1])
    result = await run_in_threadpool(shares.of, svc.engine, np.concatenate(parts), None, _k(svc, k))
    return schemas.SharesResponse(**result, took_ms=_ms(t0))


# --------------------------------------------------------------------------- items


@router.get("/items", response_model=schemas.ItemPage, summary="Browse indexed items (optionally filtered)")
async def list_items(
    svc: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=schemas.OFFSET_LIMIT)] = 0,
    where: Annotated[str | None, Query(description="JSON object; " + schemas.WHERE_DESCRIPTION)] = None,
) -> schemas.ItemPage:
    filt = _where(where)
    hits = await run_in_threadpool(svc.engine.browse, filt, limit, offset)
    total = await run_in_threadpool(svc.engine.count, filt)
    return schemas.ItemPage(
        items=[item_out(h, with_score=False) for h in hits], total=total, offset=offset, hint=await _hint(svc, total > 0, filt)
    )


@router.get("/items/{item_id:path}/similar", response_model=schemas.SearchResponse, summary="Items in the style of an item")
async def similar(
    item_id: str,
    svc: Reader,
    k: Annotated[int, Query(ge=1, le=schemas.K_LIMIT)] = 10,
    where: Annotated[str | None, Query(description="JSON object; " + schemas.WHERE_DESCRIPTION)] = None,
    group_by: Annotated[str | None, Query(min_length=1, max_length=200, description=schemas.GROUP_BY)] = None,
    group_size: Annotated[int, Query(ge=1, le=100, description=schemas.GROUP_SIZE)] = 1,
    diversity: Annotated[float, Query(ge=0, le=1, description=schemas.DIVERSITY)] = 0.0,
    collapse: Annotated[bool, Query(description=schemas.COLLAPSE)] = False,
) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    filt = _where(where)
    arrange = schemas.Arranged(group_by=group_by, group_size=group_size, diversity=diversity, collapse=collapse)
    hits = await run_in_threadpool(lambda: svc.engine.similar(item_id, _k(svc, k), filt, **arrange.arrangement()))
    return await _search_response(svc, f"item:{item_id}", hits, filt, t0)


@router.get(
    "/items/{item_id:path}/image",
    response_class=FileResponse,
    summary="The photo of an indexed item",
    responses={200: {"content": {"image/*": {}}, "description": "the image file"}},
)
async def item_image(item_id: str, svc: Reader) -> FileResponse:
    hit = await run_in_threadpool(svc.engine.get, item_id)  # only files that belong to indexed items
    path = path_of(hit.path)
    try:
        with path.open("rb") as fh:
            mime = sniff_image_type(fh.read(16))
    except OSError as exc:
        raise ApiError(404, "image_missing", f"the photo of item {item_id!r} is no longer on disk") from exc
    if mime is None:
        raise ApiError(404, "image_missing", f"the file of item {item_id!r} is not an image")
    return FileResponse(path, media_type=mime, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("/items/{item_id:path}", response_model=schemas.Item, summary="One indexed item")
async def get_item(item_id: str, svc: Reader) -> schemas.Item:
    return item_out(await run_in_threadpool(svc.engine.get, item_id), with_score=False)


@router.post(
    "/items",
    response_model=schemas.AddResponse,
    status_code=201,
    summary="Add a photo to the index (API key)",
    dependencies=[strict_form("file", "id", "label", "attributes")],
)
async def add_item(
    svc: Writer,
    file: Annotated[UploadFile, File(description="the product photo")],
    id: Annotated[str | None, Form(min_length=1, max_length=512, description="item id (default: a hash of the image)")] = None,
    label: Annotated[str | None, Form(min_length=1, max_length=200, description="its style, if known")] = None,
    attributes: Annotated[str | None, Form(description='JSON object of attributes, e.g. {"articleType": "Shirts"}')] = None,
) -> schemas.AddResponse:
    attrs: dict[str, str] = {}
    if attributes:
        try:
            attrs = TypeAdapter(dict[str, str]).validate_json(attributes)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", "attributes must be a JSON object of strings") from exc
    data = await _read_upload(svc, file)
    item_id = id or hashlib.sha1(data).hexdigest()[:16]
    vectors = await _embed(svc, [file.filename or "file"], [data])
    await run_in_threadpool(svc.engine.add_vectors, vectors, [item_id], [data], [label], [attrs])
    added = Hit(item_id, 1.0, label, "", attrs)  # what was just written; no lookup needed
    return schemas.AddResponse(item=item_out(added, with_score=False), items=len(svc.engine))


@router.delete("/items/{item_id:path}", response_model=schemas.RemoveResponse, summary="Remove an item (API key)")
async def remove_item(item_id: str, svc: Writer) -> schemas.RemoveResponse:
    await run_in_threadpool(svc.engine.remove, [item_id])
    return schemas.RemoveResponse(removed=item_id, items=len(svc.engine))


@router.post(
    "/sync", response_model=schemas.SyncResponse, summary="Bring the index up to date with its catalog on the server (API key)"
)
async def sync(body: schemas.SyncRequest, svc: Writer) -> dict[str, Any]:
    roots = svc.settings.roots()
    for given in [body.catalog] + ([body.manifest] if body.manifest else []):
        if not any(Path(given).resolve().is_relative_to(root) for root in roots):
            raise ApiError(
                403,
                "sync_not_allowed",
                f"{given!r} is not under a folder this server may sync from"
                + (f" ({', '.join(map(str, roots))})" if roots else "; set STYLESEARCH_SYNC_ROOTS to allow one"),
            )
    columns = Columns(body.path_column, body.id_column, body.label_column, body.unlabelled)
    report = await run_in_threadpool(svc.engine.sync, body.catalog, body.manifest, columns=columns)
    return report.to_dict()


# --------------------------------------------------------------------------- describing


@router.get("/duplicates", response_model=schemas.DuplicatesResponse, summary="Groups of near-duplicate items")
async def duplicates(
    svc: Reader,
    threshold: Annotated[
        float, Query(gt=0, le=1, description="cosine at or above which two items are copies")
    ] = DUPLICATE_THRESHOLD,
    limit: Annotated[int, Query(ge=1, le=1000, description="groups returned, largest first")] = 100,
) -> schemas.DuplicatesResponse:
    groups = await run_in_threadpool(svc.engine.duplicates, threshold)
    shown = [schemas.DuplicateGroup.model_validate(g.to_dict()) for g in groups[:limit]]
    return schemas.DuplicatesResponse(groups=shown, total_groups=len(groups), threshold=threshold)


@router.get("/labels", response_model=schemas.LabelsResponse, summary="Style labels and their item counts")
async def labels(svc: Reader) -> schemas.LabelsResponse:
    return schemas.LabelsResponse(labels=await run_in_threadpool(svc.engine.labels))


@router.get("/attributes", response_model=dict[str, dict[str, int]], summary="Attribute values (for filters) with counts")
async def attributes(svc: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, dict[str, int]]:
    return await run_in_threadpool(svc.engine.attribute_values, limit)


@router.get("/index", response_model=schemas.IndexInfo, summary="What is served: size, model, search backend")
async def index_info(svc: Reader) -> dict[str, Any]:
    info = await run_in_threadpool(svc.engine.info)
    info.pop("index", None)  # the server's file system is not the client's business
    return json.loads(json.dumps(info, default=str))
