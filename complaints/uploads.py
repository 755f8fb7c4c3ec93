"""How the two intake forms read a posted body with files, so that nothing typed is lost to a size limit.

Browsers send every chosen file whatever its size, and Werkzeug refuses a body over
``max_content_length`` before reading a byte of it: a bare 413 that throws away what the person
typed (and, with the body unread, phones often show a reset connection instead). The intake forms
read their bodies themselves (``read_intake_body``, called before any hook reads the form):

1. a body of up to ``BODY_LIMIT`` (five files of 20 MB and the text) is read in full; each file is
   written to a spooled temporary file at most ``MAX_UPLOAD_BYTES`` + 1 bytes long and the rest of it
   counted and dropped, so the form can name the file that was too large and keep the others;
2. a larger body, up to ``READ_LIMIT``, is read for its text only: every file is dropped (its name
   kept), and the form comes back with a 413, everything typed, and the names of the files that did
   not come through (``g.intake_files_dropped``);
3. anything larger, or a body without a length, is refused with the 413 notice, whose link goes back
   to the form.
"""
from __future__ import annotations

from tempfile import SpooledTemporaryFile
from typing import IO, Any

from flask import g, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from complaints.attachments import MAX_ATTACHMENTS, MAX_UPLOAD_BYTES, Upload
from core.inputs import FormParser

BODY_LIMIT = MAX_ATTACHMENTS * MAX_UPLOAD_BYTES + 1024 * 1024
READ_LIMIT = 4 * BODY_LIMIT
SPOOL_BYTES = 512 * 1024  # files up to this size stay in memory, as Werkzeug's own


class CappedFile:
    """A writable temporary file that keeps at most ``cap`` bytes and counts all that was written."""

    def __init__(self, cap: int):
        self._file: IO[bytes] = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed with the request
        self._cap = cap
        self.written = 0

    def write(self, data: bytes) -> int:
        room = self._cap - self.written
        if room > 0:
            self._file.write(data[:room])
        self.written += len(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:  # read, seek, tell, close … of the file kept
        return getattr(self._file, name)


def read_intake_body() -> None:
    """Parse a POSTed intake form as the module says; sets ``g.intake_files_dropped`` to the dropped files' names.

    Raises RequestEntityTooLarge (the 413 notice) for a body beyond READ_LIMIT or without a length.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]  # the request behind the proxy
    g.intake_files_dropped = []
    if req.method != "POST" or not req.want_form_data_parsed or "form" in req.__dict__:
        return
    length = req.content_length
    if length is None or length > READ_LIMIT:
        raise RequestEntityTooLarge()
    text_only = length > BODY_LIMIT
    cap = 0 if text_only else MAX_UPLOAD_BYTES + 1

    def stream_factory(total_content_length: Any, content_type: Any, filename: Any = None,
                       content_length: Any = None) -> Any:
        return CappedFile(cap)

    parser = FormParser(stream_factory=stream_factory, max_form_memory_size=req.max_form_memory_size,
                            max_content_length=READ_LIMIT, max_form_parts=req.max_form_parts,
                            cls=req.parameter_storage_class)
    stream, form, files = parser.parse(get_input_stream(req.environ, max_content_length=READ_LIMIT),
                                       req.mimetype, length, req.mimetype_params)
    if text_only:
        g.intake_files_dropped = [f.filename for f in files.values() if f.filename]
        files = req.parameter_storage_class()
    # As Werkzeug's own Request._load_form_data does: the parsed values bypass its cached properties.
    req.__dict__.update(stream=stream, form=form, files=files)


def uploads_of(field: Any) -> list[Upload]:
    """The files of a form's file field as complaints.attachments takes them (a file over the limit keeps
    MAX_UPLOAD_BYTES + 1 bytes: enough to be refused by its size, with its name)."""
    found = []
    for storage in field.data or []:
        if not isinstance(storage, FileStorage) or not storage.filename:
            continue
        found.append(Upload(filename=storage.filename, declared_type=storage.mimetype or "",
                            data=storage.stream.read(MAX_UPLOAD_BYTES + 1)))
    return found
