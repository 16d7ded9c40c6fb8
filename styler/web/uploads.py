"""Reading a multipart upload safely: a size cap on the bytes, the image type from the bytes, a pixel cap.

The order matters, and each step refuses before the next one spends anything:

1. the declared ``Content-Length`` above the cap is refused (413) before a byte is read; bodies without one (or
   that lie) are counted while they stream and refused the moment they pass the cap;
2. the image type is sniffed from the file's first bytes (PNG, JPEG, GIF, WebP, BMP, TIFF); the file name and the
   part's ``Content-Type`` are never trusted, and anything else is 415 — so Pillow is never asked to run one of its
   riskier decoders (EPS would start Ghostscript) on a client's bytes;
3. the header is opened with only the sniffed format and its width × height checked against the pixel cap (413)
   before anything is decoded; then :func:`styler.io.images.read_image` decodes it with the same per-call limit.

Uploaded files go to Starlette's spooled temporary files (memory up to 1 MB, then an anonymous file the kernel
removes once it is closed); :func:`read_form`'s caller closes the form in a ``finally``, so none outlives its
request.
"""

from __future__ import annotations

import io
import math
from collections.abc import AsyncGenerator, AsyncIterator

from PIL import Image
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from styler.errors import ImageError
from styler.io.images import RGBImage, read_image
from styler.web.errors import ClientError

__all__ = ["read_form", "upload_bytes", "sniff_image", "decode_image", "form_text", "form_bool", "form_float",
           "form_int", "SNIFFED_TYPES"]

#: Leading bytes → Pillow format, for the image types the server accepts.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"),
)
SNIFFED_TYPES = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
#: Non-file fields are short (a model name, a number): 64 kB each at most.
_MAX_FIELD_BYTES = 64 * 1024


def _too_large(limit: int) -> ClientError:
    return ClientError(413, f"upload too large: the limit is {limit / 1e6:.1f} MB")


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused (413) as soon as more than ``limit`` bytes have arrived."""
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
        yield chunk


async def read_form(request: Request, limit: int, *, max_files: int = 2) -> FormData:
    """The request's multipart form, read with the byte cap; the caller must ``await form.close()``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ClientError(415, "send the photo as multipart/form-data with a file field 'image'")
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ClientError(400, "bad Content-Length header") from None
        if length > limit:
            raise _too_large(limit)
    parser = MultiPartParser(request.headers, _capped(request.stream(), limit), max_files=max_files,
                             max_fields=16, max_part_size=_MAX_FIELD_BYTES)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ClientError(400, f"malformed multipart form: {exc.message}") from exc


async def upload_bytes(form: FormData, field: str, *, required: bool = True) -> bytes | None:
    """The content of file field ``field`` (None when absent and not ``required``)."""
    value = form.get(field)
    if value is None or (isinstance(value, str) and not value):
        if required:
            raise ClientError(400, f"no file in the form field {field!r}")
        return None
    if not isinstance(value, UploadFile):
        raise ClientError(400, f"the form field {field!r} must be a file, not text")
    data = await value.read()
    if not data:
        raise ClientError(400, f"the file in {field!r} is empty")
    return data


def sniff_image(data: bytes) -> str | None:
    """The accepted image type whose signature ``data`` starts with (WebP: ``RIFF....WEBP``), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((fmt for signature, fmt in _SIGNATURES if data.startswith(signature)), None)


def decode_image(data: bytes, max_pixels: int, label: str = "upload") -> RGBImage:
    """Decode an upload: 415 unless its bytes are an accepted type, 413 above ``max_pixels``, 400 if damaged."""
    fmt = sniff_image(data)
    if fmt is None:
        raise ClientError(415, f"{label}: not an image (accepted: {', '.join(SNIFFED_TYPES)}, recognized by "
                               "their content, not their name)")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as exc:
        raise ClientError(413, f"{label}: image too large ({exc})") from exc
    except Exception as exc:  # any decoder failure on a client's bytes: the client's damaged file
        raise ClientError(400, f"{label}: damaged {fmt} file ({exc})") from exc
    if width * height > max_pixels:
        raise ClientError(413, f"{label}: image is {width}×{height} = {width * height / 1e6:.1f} MP; this server "
                               f"accepts at most {max_pixels / 1e6:.1f} MP")
    try:
        return read_image(data, max_pixels=max_pixels, name=label)
    except ImageError as exc:
        raise ClientError(400, str(exc)) from exc


# --- the form's text fields -----------------------------------------------------------------------------------

def form_text(form: FormData, field: str) -> str | None:
    """A text field, stripped (None when absent or blank); a file sent in a text field is a 422."""
    value = form.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ClientError(422, f"the form field {field!r} must be text, not a file")
    return value.strip() or None


def form_bool(form: FormData, field: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (absent: False)."""
    text = form_text(form, field)
    if text is None:
        return False
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ClientError(422, f"{field} must be true or false, not {text[:40]!r}")


def form_float(form: FormData, field: str, default: float, low: float, high: float) -> float:
    """A number in [low, high] (absent: ``default``)."""
    text = form_text(form, field)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ClientError(422, f"{field} must be a number, not {text[:40]!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ClientError(422, f"{field} must be between {low:g} and {high:g}, not {text[:40]!r}")
    return value


def form_int(form: FormData, field: str, default: int | None, low: int, high: int) -> int | None:
    """A whole number in [low, high] (absent: ``default``)."""
    text = form_text(form, field)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ClientError(422, f"{field} must be a whole number, not {text[:40]!r}") from None
    if not low <= value <= high:
        raise ClientError(422, f"{field} must be between {low} and {high}, not {value}")
    return value
