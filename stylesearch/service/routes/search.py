"""Searching: by an uploaded photo, by an indexed item, by items liked and disliked, by a mood board."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool

from ... import Example
from .. import schemas
from ..deps import ApiError, Reader
from .common import (
    ERRORS,
    base64_image,
    checked_k,
    elapsed_ms,
    embed_uploads,
    item_out,
    parse_where,
    read_upload,
    search_response,
    strict_form,
)

router = APIRouter(prefix="/v1", responses=ERRORS)


async def _multipart(request: Request) -> None:
    """``/v1/search`` takes a photo; an item's id goes to ``/v1/search/item`` (415 otherwise)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the photo as multipart/form-data 'file'; to search by an item, POST /v1/search/item",
        )


@router.post(
    "/search",
    response_model=schemas.SearchResponse,
    summary="Same-style items for an uploaded photo",
    dependencies=[Depends(_multipart), strict_form(*schemas.SearchUpload.model_fields)],
)
async def search(
    form: Annotated[schemas.SearchUpload, Form(media_type="multipart/form-data")], svc: Reader
) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    k, where = checked_k(svc, form.k), parse_where(form.where)
    data = await read_upload(svc, form.file)
    name = form.file.filename or "upload"
    vectors = await embed_uploads(svc, [name], [data])
    (found,) = await run_in_threadpool(lambda: svc.engine.query_vectors(vectors, k, where, [name], **form.arrangement()))
    return schemas.SearchResponse(
        query=name,
        results=[item_out(h) for h in found.results],
        took_ms=elapsed_ms(t0),
        hint=found.hint,
        familiarity=found.familiarity,
        out_of_catalog=found.out_of_catalog,
    )


@router.post("/search/item", response_model=schemas.SearchResponse, summary="Same-style items for an indexed item")
async def search_item(body: schemas.SearchByItem, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    similar = await run_in_threadpool(
        lambda: svc.engine.similar(body.item_id, checked_k(svc, body.k), body.where, **body.arrangement())
    )
    return await search_response(svc, f"item:{body.item_id}", similar, body.where, t0)


@router.post("/recommend", response_model=schemas.SearchResponse, summary="More like these items, less like those")
async def recommend(body: schemas.RecommendRequest, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    hits = await run_in_threadpool(
        lambda: svc.engine.recommend(body.positive, body.negative, checked_k(svc, body.k), body.where, **body.arrangement())
    )
    return await search_response(svc, "recommend", hits, body.where, t0)


@router.post(
    "/board",
    response_model=schemas.SearchResponse,
    summary="Items in the style of a mood board: weighted photos, items and vectors (negative weights push away)",
)
async def board(body: schemas.BoardRequest, svc: Reader) -> schemas.SearchResponse:
    t0 = time.perf_counter()
    k = checked_k(svc, body.k)
    photos = [(i, e) for i, e in enumerate(body.examples) if e.image is not None]
    images = [base64_image(svc, e.image or "", f"examples.{i}.image") for i, e in photos]
    embedded = iter((await embed_uploads(svc, [f"examples.{i}.image" for i, _ in photos], images)).values if images else [])
    examples = [  # an uploaded photo is passed on as its vector, embedded with the other uploads
        Example("vector", next(embedded), e.weight)
        if e.image is not None
        else Example("item", e.item, e.weight)
        if e.item is not None
        else Example("vector", e.vector, e.weight)
        for e in body.examples
    ]
    hits = await run_in_threadpool(lambda: svc.engine.board(examples, k, body.where, body.strategy, **body.arrangement()))
    return await search_response(svc, "board", hits, body.where, t0)
