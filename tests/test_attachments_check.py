"""What files a prompt can carry: type by content, size by the API's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from foundry_tui.core import attachments
from foundry_tui.core.attachments import AttachmentRejected, check_file, check_together, describe

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
HEADS = {
    "image/png": PNG,
    "image/jpeg": b"\xff\xd8\xff\xe0" + b"\0" * 32,
    "image/gif": b"GIF89a" + b"\0" * 32,
    "image/webp": b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 32,
    "application/pdf": b"%PDF-1.7\n" + b"\0" * 32,
}


@pytest.mark.parametrize("media_type", sorted(HEADS))
def test_the_type_is_read_from_the_content_not_the_name(tmp_path: Path, media_type: str) -> None:
    path = tmp_path / "misnamed.txt"
    path.write_bytes(HEADS[media_type])
    checked = check_file(path)
    assert (checked.media_type, checked.size, checked.name) == (
        media_type,
        len(HEADS[media_type]),
        "misnamed.txt",
    )


def test_other_files_are_refused_naming_what_is_taken(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("plain text")
    with pytest.raises(AttachmentRejected, match="not a PNG, JPEG, WebP or GIF image or a PDF"):
        check_file(path)


def test_missing_empty_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AttachmentRejected, match="no such file"):
        check_file(tmp_path / "gone.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(AttachmentRejected, match="is empty"):
        check_file(tmp_path / "empty.png")
    with pytest.raises(AttachmentRejected, match="is a folder"):
        check_file(tmp_path)


def test_a_file_over_the_limit_names_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attachments, "MAX_FILE_BYTES", 20)
    path = tmp_path / "big.png"
    path.write_bytes(PNG)
    with pytest.raises(
        AttachmentRejected, match=r"big.png is 40 B; the API takes files up to 20 B"
    ):
        check_file(path)


def test_files_together_over_the_request_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    one = check_file(path)
    monkeypatch.setattr(attachments, "MAX_REQUEST_BYTES", 60)
    check_together([one])
    with pytest.raises(
        AttachmentRejected, match=r"add up to 80 B; one request may carry up to 60 B"
    ):
        check_together([one, one])


def test_chip_words() -> None:
    assert describe("image/png", 1_234_567) == "PNG image, 1.2 MB"
    assert describe("application/pdf", 999) == "PDF document, 999 B"
    assert describe("image/gif", 2_500) == "GIF image, 2.5 kB"


def test_an_image_over_the_documented_20_mb_is_refused_a_pdf_of_that_size_is_not(
    tmp_path: Path,
) -> None:
    # OpenAI: "Up to 20MB per image"; Azure refuses past 20,971,520 bytes. PDFs: 50 MB.
    size = 20_000_001
    image = tmp_path / "big.png"
    with image.open("wb") as out:
        out.write(PNG)
        out.truncate(size)
    with pytest.raises(
        AttachmentRejected, match=r"big.png is 20.0 MB; the API takes images up to 20.0 MB"
    ):
        check_file(image)
    pdf = tmp_path / "big.pdf"
    with pdf.open("wb") as out:
        out.write(HEADS["application/pdf"])
        out.truncate(size)
    assert check_file(pdf).size == size


def test_too_many_images_in_one_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(PNG)
    one = check_file(path)
    monkeypatch.setattr(attachments, "MAX_IMAGES_PER_REQUEST", 2)
    check_together([one, one])
    with pytest.raises(AttachmentRejected, match="3 images; one request may carry up to 2"):
        check_together([one, one, one])
