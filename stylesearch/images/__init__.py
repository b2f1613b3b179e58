"""Safe image decoding and the tensors the model reads.

Every image goes through :func:`load_image`: a byte limit, a pixel limit checked from the
header *before* decoding (decompression bombs), EXIF orientation, the first frame of an
animation, transparency flattened onto white, and any mode converted to 8-bit RGB. Anything it
cannot do raises :class:`~stylesearch.errors.ImageError` with the reason. Two fast paths take
plain JPEGs that pass the same limits (:func:`jpeg_frame` reads their header) to libjpeg
directly, to the same pixels: small ones on the CPU (:func:`load_tensor`) and, on a GPU,
batches for nvJPEG (:func:`read_plain_jpeg`, :func:`decode_jpegs`).

Modules: :mod:`.safe` (decoding with limits), :mod:`.jpeg` (the fast paths and
:func:`load_tensor`), :mod:`.batches` (datasets and batches), :mod:`.augment` (training).
"""

from .augment import load_augmented, random_resized_crop
from .batches import Batch, ImageDataset, Sample, collate, decode_encoded
from .jpeg import (
    JpegFrame,
    decode_jpegs,
    jpeg_frame,
    load_tensor,
    read_plain_jpeg,
    read_source,
    resize_batch,
    small_plain_jpeg,
)
from .safe import (
    ALLOWED_FORMATS,
    MAX_FILE_BYTES,
    MAX_PIXELS,
    ImageInput,
    check_upload,
    describe,
    load_image,
    sniff_image_type,
    to_tensor,
)

__all__ = [
    "ALLOWED_FORMATS",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "Batch",
    "ImageDataset",
    "ImageInput",
    "JpegFrame",
    "Sample",
    "check_upload",
    "collate",
    "decode_encoded",
    "decode_jpegs",
    "describe",
    "jpeg_frame",
    "load_augmented",
    "load_image",
    "load_tensor",
    "random_resized_crop",
    "read_plain_jpeg",
    "read_source",
    "resize_batch",
    "sniff_image_type",
    "small_plain_jpeg",
    "to_tensor",
]
