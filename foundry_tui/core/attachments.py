"""Which files can go with a prompt: their type, read from their first bytes, and their
size, against the limits the API documents. Checking reads a few bytes and one ``stat``;
reading, hashing and encoding the whole file is the attachment store's work, off the UI
loop.

A file's name and path are untrusted text wherever they are shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from foundry_tui.core.models import EncodedFile

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_IMAGES_PER_REQUEST",
    "MAX_IMAGE_BYTES",
    "MAX_REQUEST_BYTES",
    "MEDIA_TYPES",
    "AttachmentRejected",
    "FileToAttach",
    "base64_text",
    "check_file",
    "check_together",
    "data_url",
    "decoded_data_url",
    "describe",
    "hashed_data_url",
    "human_size",
]

# The Responses API's documented input limits, checked 2026-12-06:
# - OpenAI "Images and vision" guide, image input requirements: "Up to 20MB per image",
#   "Up to 500 individual images per request", "Up to 50 MB image bytes per request".
# - Azure OpenAI refuses a bigger image with 400 "The image size must be greater than zero
#   and cannot exceed 20971520 bytes" (20 MiB); 20 MB (decimal) is within both.
# - OpenAI "File inputs" guide: files travel inline (base64 `file_data`), each under
#   50 MB, and one request's files together under 50 MB.
# The earlier 50 MB for an image was the request's limit, not an image's: a 30 MB PNG
# passed the check and the server refused it.
MAX_IMAGE_BYTES = 20 * 1000 * 1000
MAX_FILE_BYTES = 50 * 1000 * 1000
MAX_REQUEST_BYTES = 50 * 1000 * 1000
MAX_IMAGES_PER_REQUEST = 500

# The types the API takes, by what the file's first bytes say (an extension can lie).
MEDIA_TYPES: dict[str, str] = {
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/webp": "WebP image",
    "image/gif": "GIF image",
    "application/pdf": "PDF document",
}
_SNIFF_BYTES = 16


class AttachmentRejected(ValueError):
    """The file cannot be sent; ``str()`` says why for the user, naming the limit."""


@dataclass(frozen=True)
class FileToAttach:
    """A file checked and ready to be kept and sent with the next prompt."""

    path: Path
    name: str
    media_type: str
    size: int

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")


def sniff_media_type(head: bytes) -> str | None:
    """The media type the file's first bytes announce, among those the API takes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def human_size(size: int) -> str:
    """1,234,567 bytes → "1.2 MB" (decimal units, as the API's limits are given)."""
    if size < 1000:
        return f"{size} B"
    for unit in ("kB", "MB", "GB"):
        size_in = size / 1000
        if size_in < 1000 or unit == "GB":
            return f"{size_in:.1f} {unit}"
        size = int(size_in)
    raise AssertionError("unreachable")


def describe(media_type: str, size: int) -> str:
    """The chip's words for a file: "PNG image, 1.2 MB"."""
    return f"{MEDIA_TYPES.get(media_type, media_type)}, {human_size(size)}"


def check_file(path: Path | str) -> FileToAttach:
    """The file, checked: it exists, is a regular readable file of a type the API takes,
    and fits the per-file limit. Raises AttachmentRejected saying what is wrong."""
    given = Path(os.path.expanduser(str(path)))
    name = given.name or str(given)
    try:
        stat = given.stat()
    except FileNotFoundError:
        raise AttachmentRejected(f"{name}: no such file.") from None
    except OSError as error:
        raise AttachmentRejected(f"{name}: cannot be read ({error.strerror}).") from None
    if given.is_dir():
        raise AttachmentRejected(f"{name} is a folder, not a file.")
    if not given.is_file():
        raise AttachmentRejected(f"{name} is not a regular file.")
    if stat.st_size == 0:
        raise AttachmentRejected(f"{name} is empty.")
    if stat.st_size > MAX_FILE_BYTES:
        raise AttachmentRejected(
            f"{name} is {human_size(stat.st_size)}; the API takes files up to "
            f"{human_size(MAX_FILE_BYTES)}."
        )
    try:
        with given.open("rb") as file:
            head = file.read(_SNIFF_BYTES)
    except OSError as error:
        raise AttachmentRejected(f"{name}: cannot be read ({error.strerror}).") from None
    media_type = sniff_media_type(head)
    if media_type is None:
        raise AttachmentRejected(
            f"{name} is not a PNG, JPEG, WebP or GIF image or a PDF: "
            "the only files the API takes with a prompt."
        )
    if media_type.startswith("image/") and stat.st_size > MAX_IMAGE_BYTES:
        raise AttachmentRejected(
            f"{name} is {human_size(stat.st_size)}; the API takes images up to "
            f"{human_size(MAX_IMAGE_BYTES)}."
        )
    return FileToAttach(path=given, name=name, media_type=media_type, size=stat.st_size)


def check_together(files: Sequence[FileToAttach]) -> None:
    """Raises AttachmentRejected when the files together pass one request's limit."""
    images = sum(1 for file in files if file.is_image)
    if images > MAX_IMAGES_PER_REQUEST:
        raise AttachmentRejected(
            f"{images} images; one request may carry up to {MAX_IMAGES_PER_REQUEST}."
        )
    total = sum(file.size for file in files)
    if total > MAX_REQUEST_BYTES:
        raise AttachmentRejected(
            f"The attachments add up to {human_size(total)}; one request may carry up to "
            f"{human_size(MAX_REQUEST_BYTES)}."
        )


# Base64 turns 3 bytes into 4 characters: a chunk of a multiple of 3 bytes encodes on its
# own. One C call over 20 MB holds the GIL for ~50 ms (the UI thread with it); chunks of
# 768 kB let the UI thread in between, every ~2 ms.
_ENCODE_CHUNK = 3 * 256 * 1024


def data_url(path: Path, media_type: str) -> EncodedFile:
    """The file as a ``data:<type>;base64,...`` URL, as ``input_image.image_url`` and
    ``input_file.file_data`` take it. Reads and encodes the whole file: call it in a thread."""
    return hashed_data_url(path, media_type)[0]


def hashed_data_url(path: Path, media_type: str) -> tuple[EncodedFile, str]:
    """``data_url`` and the SHA-256 of the bytes it encodes (hashing lets go of the GIL)."""
    import binascii
    import hashlib
    import time

    digest = hashlib.sha256()
    chunks: list[bytes] = []
    with path.open("rb") as file:
        while chunk := file.read(_ENCODE_CHUNK):
            digest.update(chunk)
            chunks.append(binascii.b2a_base64(chunk, newline=False))
            # Hand the GIL over between chunks: this thread took it back after every read
            # and starved the UI thread for the whole encoding (70-115 ms stalls measured
            # while a 20 MB image was sent; the GIL's 5 ms switch interval favours it).
            time.sleep(0)
    return EncodedFile(f"data:{media_type};base64,", tuple(chunks)), digest.hexdigest()


def base64_text(data: bytes) -> str:
    """``data`` as base64 text, encoded a chunk at a time (see _ENCODE_CHUNK)."""
    import binascii

    view = memoryview(data)
    return "".join(
        binascii.b2a_base64(view[start : start + _ENCODE_CHUNK], newline=False).decode("ascii")
        for start in range(0, len(view), _ENCODE_CHUNK)
    )


def decoded_data_url(url: str) -> tuple[str, bytes] | None:
    """The bytes of a base64 ``data:`` URL and the media type their first bytes announce
    (among those the API takes); None for anything else. Decodes the whole URL: call it
    in a thread."""
    import base64
    import binascii

    head, comma, _ = url[:200].partition(",")
    if not comma or not head.startswith("data:") or not head.endswith(";base64"):
        return None
    try:
        data = base64.b64decode(url[len(head) + 1 :], validate=True)
    except (binascii.Error, ValueError):
        return None
    media_type = sniff_media_type(data[:_SNIFF_BYTES])
    return None if media_type is None else (media_type, data)
