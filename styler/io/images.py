"""Reading and writing images: one place that turns any photo file into clean RGB pixels and back.

Photos arrive in every mode Pillow knows (bilevel, grayscale, palette, CMYK, 16-bit, 32-bit float, with alpha) and
with EXIF rotation flags; everything else in styler sees only RGB float arrays in [0, 1] (``H×W×3`` numpy, or
``1×3×H×W`` torch tensors for training code) plus, where the photo had one, a separate alpha plane.

Decisions (documented for ``styler apply``):

* **EXIF orientation** is applied on read, and the written file carries no orientation flag, so viewers agree.
* **Alpha** (RGBA, LA, palette transparency) is kept: the colour planes are stylized, the alpha plane is resized
  with the image and written back unchanged. Formats without alpha (JPEG) drop it with a warning.
* **16-bit and float images** (``I;16``, ``I``, ``F``) are read at full precision and scaled to [0, 1]; output is
  8-bit. Pillow itself reads 16-bit-per-channel *RGB* PNG/TIFF files as 8-bit RGB.
* **Animated / multi-frame files** (GIF, APNG, WebP, multi-page TIFF): the first frame only, with a warning.
* **Decompression bombs:** images above ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`) are refused *before*
  decoding, with an error that states the limit and how to raise it (``--max-pixels``).
* **PNG compression:** zlib level 1 (:data:`PNG_COMPRESS_LEVEL`), not Pillow's default 6. A stylized image is dense
  texture that deflate barely shrinks past PNG's row filters, so level 6 spends its time for little: on 512²
  outputs of five bundled models, level 1 encodes in 28-30 ms against 45-104 ms at level 6 (2-3.5× faster; min of
  5, loaded 2-core Zen 4) for files 2-8 % larger (the default model's: 524 KiB against 515 KiB). The encode was a
  fifth of a one-shot ``styler apply`` at 512². PNG stays lossless: the pixels are the same. JPEG, WebP and the
  other formats are written as before.

This module imports torch only inside the tensor helpers, so the ONNX Runtime apply path stays torch-free.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import io
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps

from styler.errors import ImageError
from styler.io.tempfiles import temp_path

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["IMAGE_EXTENSIONS", "DEFAULT_MAX_PIXELS", "PNG_COMPRESS_LEVEL", "RGBImage", "InputItem", "read_image",
           "write_image", "resize_image", "open_rgb", "pil_to_tensor", "tensor_to_pil", "save_image", "find_images",
           "expand_inputs", "STDIO"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm")

#: Largest image (pixels) read without ``--max-pixels``: 16384² ≈ 268 MP (8-bit RGB in memory: 0.8 GB; float: 3.2 GB).
DEFAULT_MAX_PIXELS = 16384 * 16384

#: The path spelling of stdin / stdout.
STDIO = "-"

_WRITE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".gif": "GIF", ".ppm": "PPM", ".pgm": "PPM"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
#: Formats Pillow embeds an ICC profile in.
_PROFILE_FORMATS = {"PNG", "JPEG", "WEBP", "TIFF"}
#: zlib level of every PNG written (Pillow's default is 6): fastest, files a few % larger (module docstring).
PNG_COMPRESS_LEVEL = 1


@dataclass
class RGBImage:
    """Decoded pixels: ``rgb`` is float32 ``H×W×3`` in [0, 1]; ``alpha`` float32 ``H×W`` in [0, 1] or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    source: str = ""
    format: str | None = None  # Pillow format name of the source ("JPEG", "PNG", ...)
    mode: str = "RGB"  # Pillow mode of the source
    frames: int = 1
    warnings: list[str] = field(default_factory=list)
    profile: str | None = None  # description of the colour profile converted to sRGB on read (None: had none)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), like Pillow."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# --- reading -------------------------------------------------------------------------------------------------------

def _limit_message(width: int, height: int, max_pixels: int, source: str) -> str:
    return (f"{source}: image is {width}×{height} = {width * height / 1e6:.1f} MP, above the decompression-bomb limit "
            f"of {max_pixels / 1e6:.1f} MP; raise it with --max-pixels {width * height} (or 0 for no limit) "
            "if you trust this file")


def _open_unchecked(source: str | os.PathLike | BinaryIO) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb check, so that :func:`read_image`'s per-call ``max_pixels``
    is the only limit (checked right after, before anything is decoded). ``source``: a path or a binary stream.

    Why not set ``Image.MAX_IMAGE_PIXELS = None`` around ``Image.open``, as this module once did: that is
    process-wide state, so another thread opening an image meanwhile (``styler serve`` decodes uploads in a pool)
    ran with no limit at all, or had the old one restored in the middle of its call. This is the loop
    ``Image.open`` runs (every registered format whose ``accept`` takes the first 16 bytes, common plugins first)
    and it reads no global; checks that a few plugins make themselves (WebP canvas, MPO and GIF frames, TIFF
    tiles) still apply Pillow's own limit, as they always did on load.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as head:
            prefix = head.read(16)
    else:
        try:
            source.seek(0)
        except (AttributeError, io.UnsupportedOperation):  # a pipe: buffer it, as Image.open does
            source = io.BytesIO(source.read())
        prefix = source.read(16)
    tried: set[str] = set()
    for load_plugins in (Image.preinit, Image.init):
        load_plugins()
        for fmt in [f for f in Image.ID if f not in tried]:
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            opener: Callable[..., Image.Image] = factory  # takes a path too, as Image.open's plugins do
            try:
                accepted = accept(prefix) if accept else True
                if not accepted or isinstance(accepted, str):
                    continue
                if not isinstance(source, (str, os.PathLike)):
                    source.seek(0)
                return opener(source, "")
            except (SyntaxError, IndexError, TypeError, struct.error):  # not this format after all
                continue
    raise Image.UnidentifiedImageError("cannot identify image file")


def _to_float_planes(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode → (float32 H×W×3 RGB, float32 H×W alpha or None), values in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float32)
        if mode.startswith("I;16"):
            arr /= 65535.0
        elif mode == "I":  # 32-bit ints: PNG 16-bit gray often lands here; scale by the type's apparent range
            arr /= 65535.0 if arr.max(initial=0) > 255 else 255.0
        else:  # float: assume [0, 1] unless it is obviously 0–255
            if arr.max(initial=0) > 1.0:
                arr /= 255.0
        arr = np.clip(arr, 0.0, 1.0)
        return np.repeat(arr[:, :, None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info) \
        or (mode in ("L", "RGB") and "transparency" in img.info)
    # Divided in place: one float copy of the photo instead of two at once (0.6 GB at 48 MP).
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
        rgb = rgba[:, :, :3].astype(np.float32)
        rgb /= 255.0
        alpha = rgba[:, :, 3].astype(np.float32)
        alpha /= 255.0
        return rgb, alpha
    rgb = np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8).astype(np.float32)
    rgb /= 255.0
    return rgb, None


def _open_regular(path: str | os.PathLike, label: str) -> BinaryIO:
    """Open a path for reading only if it is a regular file; anything else is an :class:`ImageError` at once.

    Why not ``open()`` and see: opening a FIFO blocks until a writer appears (forever, in a batch), and a device such
    as ``/dev/zero`` never ends. The file is opened non-blocking (which never waits, whatever it is), checked with
    ``fstat`` on the open descriptor (so a file swapped for a FIFO after a check cannot slip through), then switched
    back to blocking reads.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise ImageError(f"{label}: no such file") from exc
    except PermissionError as exc:
        raise ImageError(f"{label}: permission denied") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{label}: is a directory") from exc
    except OSError as exc:  # e.g. a symlink loop (ELOOP), a name too long
        raise ImageError(f"{label}: cannot open ({exc.strerror or exc})") from exc
    try:
        kind = _file_kind(os.fstat(fd).st_mode)
        if kind == "directory":
            raise ImageError(f"{label}: is a directory")
        if kind is not None:
            raise ImageError(f"{label}: is a {kind}, not a regular file; styler reads image files (use '-' to "
                             "read from stdin)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is, for the message."""
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))
    return next((name for test, name in kinds if test(mode)), "special file")


#: Leading bytes of the formats styler reads, to tell a damaged file of a known format from a file that is no image.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"),
)


def _sniff_format(head: bytes) -> str | None:
    """The format whose signature ``head`` starts with (WebP: ``RIFF....WEBP``; PPM/PGM: ``P1``-``P6``), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "PPM"
    return next((fmt for signature, fmt in _SIGNATURES if head.startswith(signature)), None)


def _unidentified_message(label: str, handle: BinaryIO) -> str:
    """Why Pillow could not identify the file: empty, a damaged file of a known format (with the decoder's reason),
    or not an image at all."""
    try:
        handle.seek(0)
        head = handle.read(16)
    except (OSError, ValueError):  # a pipe or socket stream cannot be read again
        return f"{label}: not an image, or a format Pillow cannot read"
    if not head:
        return f"{label}: empty file, not an image"
    fmt = _sniff_format(head)
    if fmt is None:
        return f"{label}: not an image, or a format Pillow cannot read"
    reason = ""
    factory = Image.OPEN.get(fmt, (None, None))[0]
    if factory is not None:
        try:
            handle.seek(0)
            factory(handle, label)
        except Exception as exc:  # the decoder's own words: "broken PNG file (bad header checksum in b'IHDR')"
            reason = f": {exc}" if str(exc) else ""
    return f"{label}: damaged {fmt} file, its header cannot be decoded{reason}"


def _source_handle(source: str | os.PathLike | bytes | BinaryIO, name: str | None) -> tuple[BinaryIO, str, bool]:
    """``(binary handle, label for messages, whether the caller must close it)`` for any source of read_image."""
    if isinstance(source, (str, os.PathLike)) and str(source) == STDIO:
        source = sys.stdin.buffer.read()
        name = name or "<stdin>"
    if isinstance(source, bytes):
        return io.BytesIO(source), name or "<bytes>", True
    if isinstance(source, (str, os.PathLike)):
        label = name or str(source)
        return _open_regular(source, label), label, True
    return source, name or str(getattr(source, "name", "<stream>")), False


def read_image(source: str | os.PathLike | bytes | BinaryIO, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> RGBImage:
    """Decode an image file, bytes or binary stream into an :class:`RGBImage` (EXIF orientation applied, colours
    converted to sRGB when the file embeds another colour profile).

    Args:
        source: a path (a regular file: FIFOs, devices and sockets are refused before anything is read), ``"-"`` for
            stdin, raw bytes or a binary file object.
        max_pixels: refuse larger images before decoding (decompression-bomb guard); ``None`` or 0: no limit.
        name: how to call the source in messages (defaults to the path, or ``<stdin>``).

    Raises:
        ImageError: unreadable path, not a regular file, not an image, damaged/truncated data, or above
        ``max_pixels``.
    """
    handle, label, owned = _source_handle(source, name)
    try:
        return _decode(handle, label, int(max_pixels or 0))
    finally:
        if owned:
            handle.close()


def _decode(handle: BinaryIO, label: str, limit: int) -> RGBImage:
    """The body of :func:`read_image` once the source is an open binary handle."""
    try:
        # Our own per-call limit replaces Pillow's process-wide one (see _open_unchecked); checked before decoding.
        img: Image.Image = _open_unchecked(handle)
        with img:
            width, height = img.size
            if limit and width * height > limit:
                raise ImageError(_limit_message(width, height, limit, label))
            notes: list[str] = []
            frames = int(getattr(img, "n_frames", 1) or 1)
            if frames > 1:
                notes.append(f"{label}: {frames} frames ({img.format}); only the first frame is stylized")
                img.seek(0)
            fmt, mode = img.format, img.mode
            img.load()
            icc = img.info.get("icc_profile")
            img = ImageOps.exif_transpose(img)
            img, profile = _to_srgb(img, icc, label, notes)
            rgb, alpha = _to_float_planes(img)
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{label}: no such file") from exc
    except PermissionError as exc:
        raise ImageError(f"{label}: permission denied") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(_unidentified_message(label, handle)) from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError) as exc:
        raise ImageError(f"{label}: cannot decode image ({exc})") from exc
    return RGBImage(rgb=np.ascontiguousarray(rgb), alpha=alpha, source=label, format=fmt, mode=mode, frames=frames,
                    warnings=notes, profile=profile)


# --- colour profiles -----------------------------------------------------------------------------------------------

#: Pillow mode → (colour space its embedded profile must describe, mode of the sRGB result).
_CMS_MODES = {"RGB": ("RGB ", "RGB"), "RGBA": ("RGB ", "RGBA"), "CMYK": ("CMYK", "RGB"), "L": ("GRAY", "RGB")}


@functools.lru_cache(maxsize=1)
def _srgb_profile() -> Any:
    """LittleCMS's built-in sRGB profile (an ``ImageCms.ImageCmsProfile``), built once."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def srgb_icc_profile() -> bytes:
    """The sRGB ICC profile styler embeds in outputs whose input carried a colour profile."""
    return bytes(_srgb_profile().tobytes())


def _to_srgb(img: Image.Image, icc: bytes | None, label: str, notes: list[str]) -> tuple[Image.Image, str | None]:
    """Convert an image with an embedded colour profile ``icc`` to sRGB; returns it and the profile's description.

    Why: the network, the colour-preserving blend and every viewer that ignores profiles assume sRGB. A Display P3
    or Adobe RGB photo read as raw values is off by up to ~60 levels in colour-managed viewers once its profile is
    dropped. Images without a profile are sRGB by convention and come back unchanged (None). A profile that cannot
    be used (unreadable, of another colour space than the pixels, or a mode LittleCMS cannot convert, e.g. 16-bit)
    is ignored with a warning: the raw values are then taken as sRGB, as before.
    """
    if not icc:
        return img, None
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(source).strip() or "unnamed profile"
        space = str(source.profile.xcolor_space)
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError) as exc:
        notes.append(f"{label}: embedded colour profile unreadable ({exc}); colours taken as sRGB")
        return img, None
    alpha = None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "LA":  # LittleCMS has no grey+alpha type: convert the grey plane, put the alpha back
        alpha, img = img.getchannel("A"), img.convert("L")
    expected, out_mode = _CMS_MODES.get(img.mode, (None, None))
    if expected != space or out_mode is None:
        notes.append(f"{label}: colour profile {description!r} ({space.strip()}) not applied to {img.mode} pixels; "
                     "colours taken as sRGB")
        return img if alpha is None else _with_alpha(img, alpha), None
    try:
        converted = ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode=out_mode)
    except (OSError, ImageCms.PyCMSError, ValueError) as exc:
        notes.append(f"{label}: colour profile {description!r} could not be applied ({exc}); colours taken as sRGB")
        return img if alpha is None else _with_alpha(img, alpha), None
    assert converted is not None  # not in place: profileToProfile returns the new image
    return converted if alpha is None else _with_alpha(converted, alpha), description


def _with_alpha(img: Image.Image, alpha: Image.Image) -> Image.Image:
    out = img.convert("RGBA" if img.mode != "L" else "LA")
    out.putalpha(alpha)
    return out


# --- resizing ------------------------------------------------------------------------------------------------------

def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), "F")
                      .resize(size, Image.Resampling.LANCZOS if size[0] * size[1] < plane.size
                              else Image.Resampling.BICUBIC), dtype=np.float32)


def resize_image(image: RGBImage, size: tuple[int, int]) -> RGBImage:
    """Resize colour and alpha planes to ``size`` = (width, height) in float precision (Lanczos down, bicubic up)."""
    if size == image.size:
        return image
    rgb = np.stack([_resize_plane(image.rgb[:, :, c], size) for c in range(3)], axis=2)
    alpha = None if image.alpha is None else np.clip(_resize_plane(image.alpha, size), 0, 1)
    return RGBImage(rgb=np.clip(rgb, 0, 1), alpha=alpha, source=image.source, format=image.format,
                    mode=image.mode, frames=image.frames, warnings=list(image.warnings), profile=image.profile)


# --- writing -------------------------------------------------------------------------------------------------------

def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with rounding (values outside [0, 1] are clipped).

    Scaled in place on the one copy ``clip`` makes: the same values as ``clip(arr) * 255 + 0.5``, with one float
    copy alive instead of two (for a 48 MP photo, 0.6 GB less at the moment the output is encoded).
    """
    scaled = np.clip(arr, 0.0, 1.0)
    if not np.issubdtype(scaled.dtype, np.floating):
        scaled = scaled.astype(np.float32)
    scaled *= 255.0
    scaled += 0.5
    return scaled.astype(np.uint8)


def output_format(path: str | os.PathLike | None, fallback: str | None = "PNG") -> str:
    """Pillow format name for a path's suffix (``fallback`` for stdout or unknown suffixes)."""
    if path is not None and str(path) != STDIO:
        fmt = _WRITE_FORMATS.get(Path(path).suffix.lower())
        if fmt:
            return fmt
    return (fallback or "PNG").upper().replace("JPG", "JPEG")


def write_image(rgb: np.ndarray, path: str | os.PathLike, *, alpha: np.ndarray | None = None,
                fmt: str | None = None, quality: int = 95, overwrite: bool = True,
                srgb_profile: bool = False) -> list[str]:
    """Write float RGB (and alpha) to ``path`` (``"-"``: stdout, format ``fmt`` or PNG); returns warnings.

    Files are written to a temporary name beside the target (:func:`styler.io.tempfiles.temp_path`) and then put in
    place, so a failure or an interrupt never leaves a half-written output. ``overwrite=False`` puts it in place
    exclusively: if the target exists, even one created by another process a moment ago, nothing is replaced and
    an :class:`ImageError` says so. ``srgb_profile`` embeds the sRGB ICC profile (formats that carry one), for
    outputs of photos that had a colour profile: the pixels are sRGB and the file says so. PNG is written at zlib
    level :data:`PNG_COMPRESS_LEVEL` (fast; see the module docstring). Writes to stdout are checked to the last byte
    (see :func:`_write_stdout`).
    """
    notes: list[str] = []
    fmt = output_format(None, fmt) if fmt else output_format(path)
    img = Image.fromarray(to_uint8(rgb), "RGB")
    if alpha is not None:
        if fmt in _ALPHA_FORMATS:
            img.putalpha(Image.fromarray(to_uint8(alpha), "L"))
        else:
            notes.append(f"{path}: {fmt} has no alpha channel; transparency dropped (write .png to keep it)")
    kwargs: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    elif fmt == "PNG":
        kwargs["compress_level"] = PNG_COMPRESS_LEVEL
    if srgb_profile and fmt in _PROFILE_FORMATS:
        kwargs["icc_profile"] = srgb_icc_profile()
    if fmt == "GIF":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    try:
        if str(path) == STDIO:
            buffer = io.BytesIO()
            img.save(buffer, format=fmt, **kwargs)
            _write_stdout(buffer.getbuffer())
            return notes
        _save_in_place(img, Path(path), fmt, kwargs, overwrite)
    except ImageError:
        raise
    except FileExistsError as exc:
        raise ImageError(f"output {path} exists (created while this run wrote it; use --force to overwrite)") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise ImageError(f"cannot write image {path}: {exc}") from exc
    return notes


def _save_in_place(img: Image.Image, target: Path, fmt: str, kwargs: dict[str, object], overwrite: bool) -> None:
    """Save to the temporary name, then rename it over ``target`` (``overwrite``) or link it there exclusively.

    Why a hard link for the exclusive case: ``os.link`` fails if the target exists, atomically, so of two runs that
    both found the name free only one gets it; checking first and renaming after would let the second overwrite the
    first. File systems without hard links fall back to creating the target with ``O_EXCL`` and renaming over that
    placeholder, which is as exclusive but briefly shows an empty file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(target)
    try:
        img.save(tmp, format=fmt, **kwargs)
        if overwrite:
            os.replace(tmp, target)
            return
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except OSError as exc:  # EPERM/ENOTSUP/EMLINK: no hard links here
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                raise
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_stdout(data: memoryview) -> None:
    """Write all of ``data`` to stdout, or raise: every write checked, flushed, and synced when stdout is a file.

    Why each step: with ``PYTHONUNBUFFERED=1`` (common in containers) ``sys.stdout.buffer`` is a raw file whose
    ``write`` may write only part (a pipe whose reader left, a disk that filled up) and *returns* the count instead
    of raising, so an unchecked write exits 0 with half a PNG. A short write is retried with the rest; a write that
    makes no progress, EPIPE or ENOSPC raise. When stdout is a regular file, ``fsync`` reports the errors a file
    system defers until the data reaches the disk (full disks on NFS, quotas).
    """
    stream = sys.stdout.buffer
    view = memoryview(data).cast("B")
    while view:
        written = stream.write(view)
        if written is None:  # a non-blocking stdout that is full
            raise OSError(errno.EAGAIN, "stdout would block; output not fully written")
        if written <= 0:
            raise OSError(errno.EIO, f"stdout accepted no more data ({len(view)} bytes not written)")
        view = view[written:]
    stream.flush()
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # not backed by a descriptor (tests, embedding applications)
        return
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.fsync(fd)


# --- finding inputs ------------------------------------------------------------------------------------------------

def find_images(folder: str | os.PathLike) -> list[Path]:
    """All image files below ``folder`` (recursive), sorted for a deterministic order; hidden files skipped."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


@dataclass
class InputItem:
    """One input of ``styler apply``: a file (with the folder it was found under, for ``--out-dir``), stdin, or an
    argument that expanded to nothing (``error`` set)."""

    path: str
    root: Path | None = None  # the directory argument this file was found under
    error: str | None = None

    @property
    def is_stdin(self) -> bool:
        return self.path == STDIO


def expand_inputs(args: Iterable[str], skip: Callable[[Path], bool] | None = None) -> list[InputItem]:
    """Expand files, directories (recursive) and glob patterns into a de-duplicated, ordered list of inputs.

    Arguments that name nothing (missing path, glob without matches, folder without images) become items with an
    ``error`` so the caller can report them and still process the rest. ``skip(path)`` drops files found by folder
    or glob expansion (not files named explicitly), e.g. earlier outputs of the same model.
    """
    items: list[InputItem] = []
    seen: set[str] = set()

    def add(path: Path, root: Path | None, explicit: bool) -> None:
        if not explicit and skip is not None and skip(path):
            return
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            items.append(InputItem(str(path), root))

    for arg in args:
        if arg == STDIO:
            items.append(InputItem(STDIO))
            continue
        path = Path(arg)
        if path.is_dir():
            found = [p for p in find_images(path) if skip is None or not skip(p)]
            if not found:
                items.append(InputItem(arg, error=f"{arg}: directory contains no images "
                                                  f"({', '.join(IMAGE_EXTENSIONS)})"))
            for p in found:
                add(p, path, explicit=False)
        elif path.exists() or path.is_symlink():
            add(path, None, explicit=True)
        elif glob.has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_EXTENSIONS]
            for m in matches:
                if m.is_dir():
                    files.extend(find_images(m))
            files = [f for f in files if skip is None or not skip(f)]
            if not files:
                items.append(InputItem(arg, error=f"{arg}: pattern matches no images"))
            for f in files:
                add(f, None, explicit=False)
        else:
            items.append(InputItem(arg, error=f"{arg}: no such file or directory"))
    return items


# --- compatibility helpers (training code works with PIL images and torch tensors) ---------------------------------

def open_rgb(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file as an 8-bit RGB PIL image with EXIF orientation applied (alpha discarded)."""
    return Image.fromarray(to_uint8(read_image(path, max_pixels=max_pixels).rgb), "RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image → 1×3×H×W float tensor in [0, 1]."""
    import torch

    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """1×3×H×W or 3×H×W float tensor in [0, 1] (clamped) → RGB PIL image."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = x.detach().float().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(to_uint8(arr), "RGB")


def save_image(img: Image.Image | torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write an image, creating parent folders; the format follows the suffix."""
    if not isinstance(img, Image.Image):
        img = tensor_to_pil(img)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0 if img.mode == "RGBA" else None
    write_image(arr, path, alpha=alpha, quality=quality)
    return Path(path)

