"""Request and response models of the HTTP API (they make its OpenAPI document)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import MAX_GROUP_SIZE, ArrangeOptions, help_of

Where = dict[str, str | list[str]]
K_LIMIT = 10_000  # the schema's bound on k; a server's own --max-k (at most this) is stated in its document
OFFSET_LIMIT = 2**31 - 1  # the schema's bound on offsets (SQLite takes 64-bit integers; no page lies further)
FAMILIARITY = (
    "how much the photo looks like this catalog, 0-1: the share of indexed items whose nearest other item is no closer "
    "than the photo's nearest item (about uniform for photos like the catalog's, near 0 for another domain; "
    "null for an index under 20 items)"
)
GROUP_BY, GROUP_SIZE, DIVERSITY, COLLAPSE = (
    help_of(ArrangeOptions, n) for n in ("group_by", "group_size", "diversity", "collapse")
)
WHERE_DESCRIPTION = (
    'keep items whose attributes match: {"articleType": "Shirts"} or {"articleType": ["Shirts", "Tops"]}; '
    "the keys label and id work too"
)


class ErrorBody(BaseModel):
    """Every error: a stable machine-readable ``code`` and a message that says what to do."""

    code: str = Field(examples=["item_not_found"])
    message: str
    status: int


class Item(BaseModel):
    id: str
    label: str | None
    attributes: dict[str, str]
    image_url: str = Field(description="GET this to see the item's photo")
    score: float | None = Field(None, description="cosine similarity to the query (1 = same style)")
    group: str | None = Field(None, description="its value of the group_by attribute, when the search was grouped")


class ItemPage(BaseModel):
    items: list[Item]
    total: int = Field(description="items matching the filter")
    offset: int
    hint: str | None = Field(None, description="why no item matches, when a filter value no item has is the reason")


class Arranged(BaseModel):
    """How a search's results are arranged: the API's mirror of
    :class:`~stylesearch.config.ArrangeOptions` (its help, bounds and defaults)."""

    group_by: str | None = Field(None, min_length=1, max_length=200, description=GROUP_BY)
    group_size: int = Field(1, ge=1, le=MAX_GROUP_SIZE, description=GROUP_SIZE)
    diversity: float = Field(0.0, ge=0, le=1, description=DIVERSITY)
    collapse: bool = Field(False, description=COLLAPSE)

    def arrangement(self) -> dict[str, Any]:
        """The engine's keyword options (``stylesearch.index.arrange.Arrangement``)."""
        return self.model_dump(include={f.name for f in fields(ArrangeOptions)})


class SimilarQuery(Arranged):
    """``GET /v1/items/{id}/similar``'s query parameters."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(10, ge=1, le=K_LIMIT, description="how many items (groups, with group_by)")
    where: str | None = Field(None, description="JSON object; " + WHERE_DESCRIPTION)


class SearchByItem(Arranged):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, description="an indexed item; the result leaves it out")
    k: int = Field(10, ge=1, le=K_LIMIT, description="how many items (groups, with group_by)")
    where: Where | None = Field(None, description=WHERE_DESCRIPTION)


class SearchUpload(Arranged):
    """``POST /v1/search``'s multipart form: the photo and how to search with it."""

    model_config = ConfigDict(extra="forbid")

    file: UploadFile = Field(description="a product photo")
    k: int = Field(10, ge=1, le=K_LIMIT, description="how many items (groups, with group_by)")
    where: str | None = Field(None, description="JSON object; " + WHERE_DESCRIPTION)


class SearchResponse(BaseModel):
    query: str = Field(description="the uploaded file's name, or item:<id>")
    results: list[Item]
    took_ms: float
    hint: str | None = Field(None, description="why there are no results, when a filter value no item has is the reason")
    familiarity: float | None = Field(None, description=FAMILIARITY + " (uploads only)")
    out_of_catalog: bool = Field(
        False,
        description="the photo looks like nothing in the catalog (familiarity below the threshold): the results are "
        "only the least unlike items",
    )


class RecommendRequest(Arranged):
    model_config = ConfigDict(extra="forbid")

    positive: list[str] = Field(min_length=1, max_length=100, description="more like these item ids")
    negative: list[str] = Field(default_factory=list, max_length=100, description="less like these item ids")
    k: int = Field(10, ge=1, le=K_LIMIT)
    where: Where | None = Field(None, description=WHERE_DESCRIPTION)


class BoardExample(BaseModel):
    """One example of a mood board: exactly one of ``item``, ``image`` or ``vector``."""

    model_config = ConfigDict(extra="forbid")

    item: str | None = Field(None, min_length=1, description="an indexed item's id (left out of the answer)")
    image: str | None = Field(None, min_length=1, description="a photo, base64-encoded (the upload limits apply)")
    vector: list[float] | None = Field(None, min_length=1, max_length=65_536, description="a style vector of the index's dim")
    weight: float = Field(1.0, allow_inf_nan=False, description="non-zero; negative pushes results away from this example")

    @model_validator(mode="after")
    def one_kind(self) -> BoardExample:
        if sum(x is not None for x in (self.item, self.image, self.vector)) != 1:
            raise ValueError("give exactly one of item, image or vector")
        if self.weight == 0:
            raise ValueError("weight must not be 0")
        return self


class BoardRequest(Arranged):
    model_config = ConfigDict(extra="forbid")

    examples: list[BoardExample] = Field(min_length=1, max_length=64, description="the mood board: weighted examples")
    strategy: Literal["average", "best_score"] = Field(
        "average",
        description="average: one query, the weighted sum of the examples' vectors; best_score: each item scored by its "
        "closest positive example, below zero when a negative one is closer",
    )
    k: int = Field(10, ge=1, le=K_LIMIT)
    where: Where | None = Field(None, description=WHERE_DESCRIPTION)


class MethodAnswer(BaseModel):
    label: str | None
    confidence: float
    scores: dict[str, float]


class Classification(BaseModel):
    image: str
    label: str | None = Field(description="null: no style reached the confidence threshold")
    confidence: float = Field(description="calibrated: how often an answer of this confidence is right on the catalog's photos")
    method: Literal["knn", "linear", "both"] = Field(description="what decided the label")
    scores: dict[str, float]
    knn: MethodAnswer | None
    linear: MethodAnswer | None
    neighbors: list[Item] = Field(description="the labelled items that voted (evidence)")
    reason: Literal["low_confidence", "no_labelled_items", "out_of_catalog"] | None = Field(
        None,
        description="why label is null: below the confidence threshold, no labelled item may vote, "
        "or the photo looks like nothing in the catalog (familiarity below min_familiarity)",
    )
    familiarity: float | None = Field(None, description=FAMILIARITY)
    out_of_catalog: bool = Field(False, description="the photo looks like nothing in the catalog (reason out_of_catalog)")
    answer: str | None = Field(None, description="the best label, also when label is null")
    support: int | None = Field(
        None, description="how many of the k neighbours carry the answer (null: kNN did not run); at most one: confidence < 0.5"
    )
    prior: Literal["catalog", "uniform"] = Field("catalog", description="the prior the probabilities were computed with")
    hint: str | None = Field(None, description="what to change (a filter value no item has, say)")


class ClassifyResponse(BaseModel):
    results: list[Classification]
    took_ms: float


class Share(BaseModel):
    share: float = Field(description="the estimated share of the photos in this style, 0-1")
    low: float = Field(description="95 % interval, lower end")
    high: float = Field(description="95 % interval, upper end")


class SharesResponse(BaseModel):
    photos: int
    shares: dict[str, Share] = Field(description="per style, largest first")
    classify_and_count: dict[str, float] = Field(description="the plain share of answers per style, uncorrected")
    method: str
    held_out_items: int = Field(description="indexed items whose held-out answers measured the classifier's errors")
    took_ms: float


class AddResponse(BaseModel):
    item: Item
    items: int = Field(description="items in the index after the add")


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    catalog: str = Field(min_length=1, description="the catalog folder or .csv/.jsonl manifest, as a path on the server")
    manifest: str | None = Field(None, min_length=1, description="a manifest beside a catalog folder")
    path_column: str = Field("path", min_length=1)
    id_column: str = Field("id", min_length=1)
    label_column: str = Field("label", min_length=1)
    unlabelled: bool = Field(False, description="the manifest has no labels on purpose")


class SkippedFile(BaseModel):
    path: str
    reason: str


class SyncResponse(BaseModel):
    added: int
    updated: int = Field(description="re-embedded: their file's content changed")
    relabelled: int = Field(description="label, attributes or path changed; not re-embedded")
    removed: int
    unchanged: int
    skipped: list[SkippedFile]
    items: int = Field(description="items in the index after the sync")
    seconds: float
    restamped: int = Field(0, description="unchanged files whose new size / time were recorded (same content)")
    generation: int | None = Field(None, description="the generation it published; null when nothing changed")


class DuplicateMember(BaseModel):
    id: str
    score: float = Field(description="its highest copy score to another member")


class DuplicateGroup(BaseModel):
    representative: str = Field(description="the most central member (listed first)")
    size: int = Field(description="members, the representative included")
    copies: int = Field(description="members besides the representative (size - 1), as the CLI and the page count them")
    members: list[DuplicateMember]


class DuplicatesResponse(BaseModel):
    groups: list[DuplicateGroup] = Field(description="largest first")
    total_groups: int
    threshold: float


class BlockShare(BaseModel):
    block: str = Field(description="the backbone block")
    kind: str = Field(description="what it mostly sees: colour / texture (early blocks) or shapes / parts")
    cosine: float = Field(description="the two photos' cosine in this block's statistics")
    catalog_mean: float | None = Field(None, description="the mean cosine of pairs of catalog photos in this block")
    percentile: float | None = Field(None, description="the share of catalog pairs less alike in this block, 0-1")
    lift: float | None = Field(None, description="how many standard deviations this pair is above a typical catalog pair")
    share: float = Field(
        description="its share of the positive lifts (shares sum to 1; 0 everywhere when no block is above typical)"
    )


class ExplainResponse(BaseModel):
    query: str
    item: Item
    score: float = Field(description="the two style vectors' cosine (what the search ranks by)")
    raw_similarity: float = Field(description="cosine of the raw statistics (the mean of the blocks' cosines)")
    blocks: list[BlockShare]
    heat: dict[str, list[list[float]]] = Field(
        description="per photo (query, item), a grid of 0-1 values (rows top to bottom): how much the score falls "
        "when that region is hidden (occlusion sensitivity)"
    )
    took_ms: float


class RemoveResponse(BaseModel):
    removed: str
    items: int


class LabelsResponse(BaseModel):
    labels: dict[str, int]


class IndexInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    items: int
    dim: int
    labels: dict[str, int]
    attributes: list[str]
    head: dict[str, Any] | None
    search_backend: str
    device: str
    computed_by: list[str] = Field(
        default_factory=list,
        description="what computed the index's vectors: runtime and arithmetic, e.g. 'torch fp16 on cuda:0', 'openvino fp32'",
    )
    card_fields: list[str] = Field(
        default_factory=list, description="attributes the page's cards show ($STYLESEARCH_CARD_FIELDS; empty: two short ones)"
    )


class Health(BaseModel):
    status: str
