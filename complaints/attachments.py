"""Evidence attached to a complaint: what is accepted, how a phone photo is stored, and the files kept for a
form that came back with a mistake.

- **Accepted**: JPG, PNG and HEIC/HEIF photos and PDF files, recognised by their first bytes (never by the
  browser's word), up to ``MAX_UPLOAD_BYTES`` (20 MB) each as chosen, at most ``MAX_ATTACHMENTS`` (5) per
  complaint: phone photos are taken as people take them.
- **Photos are downscaled before they are stored** (Pillow; HEIC through pillow-heif): the longest side at
  most ``MAX_SIDE`` (2048 px, enough to read a receipt), the EXIF orientation applied, and every piece of
  metadata dropped but the time the photo was taken — no GPS position, no device. Photos become JPEG
  (quality 85), which every staff PC opens (HEIC is not); a PNG stays PNG when it has transparency or
  stays small (a screenshot), else it is a photo saved as PNG and becomes JPEG too. A 12-megapixel phone
  photo of 3–8 MB is stored in 0.5–1.5 MB. PDF files are stored as they are.
- **Pending files.** When an intake form comes back with a mistake, the files it carried are kept, already
  checked and downscaled, for that form's submission id (``PendingFile``, keyed by a keyed hash of the
  institution and the id) and shown as already attached; sending the form moves them to the case. They
  expire after ``PENDING_SECONDS`` (24 hours, the form token's own life) and the periodic
  ``complaints-intake-cleanup`` job deletes them.
"""
from __future__ import annotations

import io
import logging
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener
from sqlalchemy import delete, select
from sqlalchemy.orm import defer

from complaints.models import PendingFile
from core.db import utcnow
from core.extensions import db
from core.services import ServiceError
from core.signing import hash_value

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 5
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_SIDE = 2048
JPEG_QUALITY = 85
# A PNG without transparency that is still larger than this once downscaled is a photo: stored as JPEG.
PNG_KEEP_BYTES = 2 * 1024 * 1024
# Decoding needs about 3 bytes a pixel: 120 megapixels (about 360 MB while decoding) is where we stop. Phones
# store 12–50 megapixels unless a "high resolution" mode is chosen.
MAX_PIXELS = 120_000_000
PENDING_SECONDS = 24 * 3600

KINDS = {  # sniffed kind → extensions that name it
    "jpg": (".jpg", ".jpeg", ".jfif"),
    "png": (".png",),
    "pdf": (".pdf",),
    "heic": (".heic", ".heif"),
}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "pdf": "application/pdf"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
PILLOW_FORMATS = {"jpg": "JPEG", "png": "PNG", "heic": "HEIF"}
EXIF_DATETIME, EXIF_IFD, EXIF_DATETIME_ORIGINAL = 0x0132, 0x8769, 0x9003


class AttachmentError(ServiceError):
    """A file cannot be attached as given; the message names it, the field is the form's attachments."""

    def __init__(self, message: str):
        super().__init__(message, "attachments")


@dataclass
class Upload:
    """A file as received, before it is checked."""

    filename: str
    data: bytes
    declared_type: str = ""


@dataclass(frozen=True)
class Prepared:
    """A file checked and ready to store: a photo already downscaled, a PDF as it came."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


def sniff(data: bytes) -> str | None:
    """The file's real kind from its first bytes (the browser's content type is not trusted)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "heic"
    return None


def safe_filename(name: str, extension: str) -> str:
    """A file name fit to store and to offer as a download, ending in ``extension`` (e.g. "jpg").

    A name already ending in a spelling of that extension keeps it ("收据.JPG"); a photo extension of
    another kind is replaced ("IMG_0001.HEIC" stored as JPEG is "IMG_0001.jpg").
    """
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?').strip(" .")
    stem, dot, ext = name.rpartition(".")
    known = {e for spellings in KINDS.values() for e in spellings}
    if dot and stem and f".{ext.lower()}" in KINDS.get(extension, (f".{extension}",)):
        stem, extension = stem, ext
    elif not (dot and stem and f".{ext.lower()}" in known):
        stem = name
    stem = stem[: 120 - len(extension) - 1].strip(" .") or "file"
    return f"{stem}.{extension}"


def _label(upload: Upload) -> str:
    return upload.filename or gettext("未命名文件")


_heif_ready: list[bool] = []


def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (iPhone photos), once per process; not at import time."""
    if not _heif_ready:
        register_heif_opener()
        _heif_ready.append(True)


def _taken_at(image: Image.Image) -> str | None:
    """The EXIF time the photo was taken (or last changed), the one piece of metadata kept."""
    try:
        exif = image.getexif()
        value = exif.get_ifd(EXIF_IFD).get(EXIF_DATETIME_ORIGINAL) or exif.get(EXIF_DATETIME)
    except Exception:  # unreadable EXIF is no reason to refuse a photo
        return None
    return value if isinstance(value, str) and len(value) < 40 else None


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency laid on white, other modes converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _downscale(upload: Upload, kind: str) -> Prepared:
    """Open a photo, turn it upright, shrink it to MAX_SIDE and store it without its metadata."""
    refused = AttachmentError(gettext("照片“%(name)s”无法读取，可能已损坏。请重新拍摄，或截图后上传。",
                                      name=_label(upload)))
    too_many_pixels = AttachmentError(gettext("照片“%(name)s”像素太高（超过 1.2 亿像素），请用手机的普通拍照模式"
                                              "重新拍摄，或截图后上传。", name=_label(upload)))
    if kind == "heic":
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own pixel limit is below
            opened = Image.open(io.BytesIO(upload.data))
            if opened.format != PILLOW_FORMATS[kind]:
                raise refused
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise too_many_pixels
            ratio = min(1.0, MAX_SIDE / max(width, height))
            target = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            if opened.format == "JPEG":
                opened.draft("RGB", target)  # decode at 1/2, 1/4 or 1/8 size where that is still large enough
            taken, icc = _taken_at(opened), opened.info.get("icc_profile")
            image: Image.Image = ImageOps.exif_transpose(opened)
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            if kind == "png":
                buffer = io.BytesIO()
                image.save(buffer, "PNG")
                if transparent or buffer.tell() <= PNG_KEEP_BYTES:
                    return Prepared(safe_filename(upload.filename, "png"), CONTENT_TYPES["png"], buffer.getvalue())
            exif = Image.Exif()
            if taken:
                exif[EXIF_DATETIME] = taken
            buffer = io.BytesIO()
            options: dict[str, Any] = {"quality": JPEG_QUALITY, "optimize": True, "exif": exif.tobytes()}
            if icc:
                options["icc_profile"] = icc
            _flatten(image).save(buffer, "JPEG", **options)
    except AttachmentError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit, above ours: stopped before decoding
        raise too_many_pixels from None
    except Exception as exc:  # whatever a damaged or hostile file makes Pillow raise: refused, never a 500
        log.info("attachment refused: a %s photo of %d bytes could not be decoded (%s)", kind, len(upload.data),
                 type(exc).__name__)
        raise refused from None
    return Prepared(safe_filename(upload.filename, "jpg"), CONTENT_TYPES["jpg"], buffer.getvalue())


def prepare(upload: Upload | Prepared) -> Prepared:
    """Check one file and make it ready to store (photos downscaled); raises AttachmentError with a clear message."""
    if isinstance(upload, Prepared):
        return upload
    if not upload.data:
        raise AttachmentError(gettext("文件“%(name)s”是空的，请重新选择。", name=_label(upload)))
    if len(upload.data) > MAX_UPLOAD_BYTES:
        raise AttachmentError(gettext("文件“%(name)s”超过 20 MB，请压缩或重新拍摄后再上传。", name=_label(upload)))
    kind = sniff(upload.data)
    if kind is None:
        raise AttachmentError(gettext("文件“%(name)s”格式不支持，只能上传 JPG、PNG、HEIC 照片或 PDF 文件。",
                                      name=_label(upload)))
    if kind == "pdf":
        return Prepared(safe_filename(upload.filename, "pdf"), CONTENT_TYPES["pdf"], upload.data)
    return _downscale(upload, kind)


def prepare_all(uploads: Sequence[Upload | Prepared]) -> tuple[list[Prepared], list[AttachmentError]]:
    """Every file that can be stored, prepared, and the refusal of each one that cannot."""
    ready, refused = [], []
    for upload in uploads:
        if isinstance(upload, Upload) and not upload.filename and not upload.data:
            continue  # an empty file input
        try:
            ready.append(prepare(upload))
        except AttachmentError as exc:
            refused.append(exc)
    return ready, refused


def too_many(count: int) -> AttachmentError:
    return AttachmentError(gettext("最多上传 %(n)d 个文件，您选择了 %(m)d 个。", n=MAX_ATTACHMENTS, m=count))


# Pending files ------------------------------------------------------------------------------------

def _pending_hash(institution_id: int, submission_id: str) -> str:
    return hash_value("complaint-pending-file", f"{institution_id}:{submission_id}")


def _pending_query(institution_id: int, submission_id: str, now: datetime | None = None):
    return (select(PendingFile)
            .where(PendingFile.institution_id == institution_id,
                   PendingFile.submission_hash == _pending_hash(institution_id, submission_id),
                   PendingFile.created_at > (now or utcnow()) - timedelta(seconds=PENDING_SECONDS))
            .order_by(PendingFile.id))


def pending_files(institution_id: int, submission_id: str) -> list[PendingFile]:
    """The files kept for a form's submission (names and sizes only, not their bytes), oldest first."""
    if not submission_id:
        return []
    return list(db.session.scalars(_pending_query(institution_id, submission_id).options(defer(PendingFile.data))))


def keep_pending(institution_id: int, submission_id: str, files: Sequence[Prepared]) -> int:
    """Keep prepared files for a form that came back, up to MAX_ATTACHMENTS in all; returns how many were kept."""
    room = MAX_ATTACHMENTS - len(pending_files(institution_id, submission_id))
    kept = list(files)[:max(room, 0)]
    for item in kept:
        db.session.add(PendingFile(institution_id=institution_id,
                                   submission_hash=_pending_hash(institution_id, submission_id),
                                   filename=item.filename, content_type=item.content_type, size=item.size,
                                   data=item.data))
    db.session.flush()
    return len(kept)


def remove_pending(institution_id: int, submission_id: str, file_id: int) -> bool:
    """Remove one kept file of this form (the form's "删除"); False if it is not this form's."""
    row = db.session.scalar(_pending_query(institution_id, submission_id).where(PendingFile.id == file_id))
    if row is None:
        return False
    db.session.delete(row)
    db.session.flush()
    return True


def take_pending(institution_id: int, submission_id: str) -> list[Prepared]:
    """The files kept for this form, removed from the pending store (the caller stores them with the case)."""
    rows = list(db.session.scalars(_pending_query(institution_id, submission_id)))
    taken = [Prepared(r.filename, r.content_type, r.data) for r in rows]
    for row in rows:
        db.session.delete(row)
    return taken


def purge_pending(now: datetime | None = None) -> int:
    """Delete pending files past their life (periodic, idempotent); returns how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=PENDING_SECONDS)
    result = db.session.execute(delete(PendingFile).where(PendingFile.created_at <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
