"""Every public form, fed what a person never types: 0 server errors, and markup never reflected unescaped.

The forms: the patient's QR survey (/q/<token>), the complaint form (/c/<id>/new), the progress lookup
(/c/lookup), the complainant's feedback page (/c/feedback/<token>), the discharge follow-up link
(/d/<token>), the staff survey link (/s/<token>) and the staff login (with CSRF on, as in production).

Each form's fields are read from its own page (hidden tokens, radios, checkboxes, selects, text), so a field
added later is fuzzed too. From a valid submission (a control: it must succeed) a deterministic generator
with a fixed seed derives the cases: missing, repeated and oversized (1 MB) fields, latin-1, GBK and
invalid UTF-8 bytes, NUL bytes, emoji, markup, wrong types, files where text belongs, malformed multipart
bodies, wrong content types, garbled tokens in the URL, hostile uploads (a decompression bomb, a file that
lies about its type, a path in its name), and seeded random combinations of these.

Every answer must be below 500, carry no traceback, say what went wrong in Chinese when it is a 4xx page,
and never contain a markup payload as it was sent. Each case runs in a savepoint that is rolled back, with
the rate-limit and lookup counters cleared, so that every case reaches as deep as the one before.
"""
from __future__ import annotations

import io
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote_from_bytes, urlsplit

import pytest

from core import ratelimit
from core.extensions import db
from tests.access_world import build_world
from tests.conftest import make_client

SEED = 2026
MEGABYTE = 1024 * 1024
CJK = re.compile(r"[\u4e00-\u9fff]")
Value = str | bytes
Pair = tuple[Value, Value]


# Reading a form from its page ----------------------------------------------------------------

@dataclass
class FormPage:
    """What a browser would post: the fields in page order with a plausible value each."""

    name: str
    path: str
    fields: list[Pair] = field(default_factory=list)
    text: list[str] = field(default_factory=list)      # free text, typed by a person
    prose: list[str] = field(default_factory=list)     # of which words (not a phone number or a password)
    choices: list[str] = field(default_factory=list)   # radios, checkboxes, selects: values the page offers
    hidden: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    multipart: bool = False


class _FormReader(HTMLParser):
    PLAUSIBLE = {"tel": "13912345678", "password": "Demo2026tingjian"}

    def __init__(self, page: FormPage, typed: dict[str, str]):
        super().__init__(convert_charrefs=True)
        self.page, self.typed = page, typed
        self.select: str | None = None
        self.taken: set[str] = set()

    def _add(self, name: str, value: str, kind: str) -> None:
        if name in self.taken and kind != "checkbox":
            return
        self.taken.add(name)
        self.page.fields.append((name, self.typed.get(name, value)))
        getattr(self.page, kind if kind in ("text", "hidden", "files") else "choices").append(name)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "form" and "multipart" in a.get("enctype", ""):
            self.page.multipart = True
        if not name:
            if tag == "option" and self.select and self.select not in self.taken and a.get("value"):
                self._add(self.select, a["value"], "choices")
            return
        if tag == "textarea":
            self._add(name, "候诊时间太长，希望改进。", "text")
            self.page.prose.append(name)
        elif tag == "select":
            self.select = name
        elif tag == "input":
            kind = a.get("type", "text")
            if kind == "hidden":
                self._add(name, a.get("value", ""), "hidden")
            elif kind in ("radio", "checkbox"):
                self._add(name, a.get("value", "on"), "checkbox" if kind == "checkbox" else "radio")
            elif kind == "file":
                self.page.files.append(name)
            elif kind not in ("submit", "button"):
                self._add(name, self.PLAUSIBLE.get(kind, "张三"), "text")
                if kind == "text":
                    self.page.prose.append(name)

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None


def read_form(client, name: str, path: str, typed: dict[str, str]) -> FormPage:
    response = client.get(path)
    assert response.status_code == 200, (name, path, response.status_code)
    page = FormPage(name, path)
    _FormReader(page, typed).feed(response.get_data(as_text=True))
    assert page.fields, f"{name}: no fields read from {path}"
    return page


# Writing bodies ------------------------------------------------------------------------------

def _bytes(value: Value, encoding: str = "utf-8") -> bytes:
    return value if isinstance(value, bytes) else value.encode(encoding)


def urlencoded(pairs: Iterable[Pair], encoding: str = "utf-8") -> bytes:
    return b"&".join(quote_from_bytes(_bytes(k, encoding)).encode() + b"=" + quote_from_bytes(_bytes(v, encoding))
                     .encode() for k, v in pairs)


@dataclass
class Part:
    name: Value
    value: bytes
    filename: str | None = None
    content_type: str | None = None
    extra: bytes = b""


def multipart(parts: Iterable[Part], boundary: bytes = b"tjfuzzboundary", close: bool = True) -> bytes:
    out = io.BytesIO()
    for part in parts:
        out.write(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + _bytes(part.name) + b"\"")
        if part.filename is not None:
            out.write(b"; filename=\"" + part.filename.encode() + b"\"")
        out.write(b"\r\n")
        if part.content_type:
            out.write(b"Content-Type: " + part.content_type.encode() + b"\r\n")
        out.write(part.extra + b"\r\n" + part.value + b"\r\n")
    if close:
        out.write(b"--" + boundary + b"--\r\n")
    return out.getvalue()


def parts_of(pairs: Iterable[Pair]) -> list[Part]:
    return [Part(k, _bytes(v)) for k, v in pairs]


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=tjfuzzboundary"


@dataclass
class Case:
    label: str
    body: bytes
    content_type: str | None
    path_suffix: str = ""        # appended to the form's path (a query string)
    path: str | None = None      # instead of the form's path (a garbled token)
    payloads: tuple[str, ...] = ()
    expect_ok: bool = False      # the control: a valid submission must go through


# Hostile values ------------------------------------------------------------------------------

def markup(marker: str) -> list[str]:
    """Payloads that would run if reflected as they are (each carries ``marker``, to be found again)."""
    return [f'<script>alert("{marker}")</script>', f'"><img src=x onerror=alert("{marker}")>',
            f"'><svg/onload=alert('{marker}')>", f'</textarea><b id="{marker}">']


EMOJI = "😀🏥👩‍⚕️🇨🇳"
WRONG_TYPES = ["abc", "-1", "0", "9" * 400, "1e309", "NaN", "Infinity", "[]", "{}", "true", "3.5", " ", "２"]


def png_bomb() -> bytes:
    """A small PNG whose header claims 60000 x 60000 pixels (Pillow refuses it as a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + \
        chunk(b"IEND", b"")


def replace(pairs: list[Pair], names: Iterable[str], value: Callable[[str], Value]) -> list[Pair]:
    chosen = set(names)
    return [(k, value(str(k)) if k in chosen else v) for k, v in pairs]


# The generator -------------------------------------------------------------------------------

def generate(page: FormPage, rng: random.Random, tokens: dict[str, str]) -> list[Case]:
    """Every case for one form, in a fixed order (``rng`` seeded: the same cases on every run)."""
    base = list(page.fields)
    typed = page.text + page.choices
    enc, ct = (lambda p: multipart(parts_of(p)), MULTIPART) if page.multipart else (urlencoded, FORM)
    cases = [Case("valid", enc(base), ct, expect_ok=True),
             Case("valid, the other encoding", urlencoded(base) if page.multipart else multipart(parts_of(base)),
                  FORM if page.multipart else MULTIPART),
             Case("empty body", b"", ct),
             Case("only the hidden fields", enc([p for p in base if p[0] in page.hidden]), ct)]
    names = list(dict.fromkeys(str(k) for k, _v in base))
    for name in names if len(names) <= 8 else rng.sample(names, 8):
        cases.append(Case(f"without {name}", enc([p for p in base if p[0] != name]), ct))
    # Oversized: 1 MB in one field (over the form-memory limit), and 400 KB in every text field (under it).
    for name in page.text + page.hidden[:1]:
        cases.append(Case(f"1 MB in {name}", enc(replace(base, [name], lambda _n: "长" * (MEGABYTE // 3))), ct))
    cases.append(Case("400 KB in every text field", multipart(parts_of(replace(base, page.text,
                                                                                 lambda _n: "a" * 400_000))),
                      MULTIPART))
    # Encodings.
    latin = replace(base, typed + page.hidden, lambda _n: "Café naïve ü".encode("latin-1"))
    cases += [Case("latin-1 bytes", urlencoded(latin), FORM),
              Case("latin-1 declared", urlencoded(latin), FORM + "; charset=latin-1"),
              Case("latin-1 bytes, multipart", multipart(parts_of(latin)), MULTIPART),
              Case("GBK declared", urlencoded(replace(base, page.text, lambda _n: "投诉".encode("gbk"))),
                   FORM + "; charset=gbk"),
              Case("unknown charset", urlencoded(base), FORM + "; charset=x-no-such-charset")]
    invalid = b"\xff\xfe\xc3\x28\xa0\xa1\xed\xa0\x80"
    cases += [Case("invalid UTF-8 values", enc(replace(base, typed + page.hidden, lambda _n: invalid)), ct),
              Case("invalid UTF-8 field name", enc([*base, (invalid, "x")]), ct),
              Case("invalid UTF-8, raw in the body", b"&".join(_bytes(k) + b"=" + invalid for k, _v in base), FORM)]
    # NUL bytes, emoji, markup.
    cases += [Case("NUL in values", enc(replace(base, typed + page.hidden, lambda n: f"a\x00{n}")), ct),
              Case("NUL in a field name", enc([*base, ("na\x00me", "x")]), ct),
              Case("emoji everywhere", enc(replace(base, typed, lambda _n: EMOJI * 3)), ct)]
    marked = {name: markup(f"tj{page.name}{i}") for i, name in enumerate(names)}
    hostile = replace(base, names, lambda n: marked[n][names.index(n) % 4])
    cases.append(Case("markup in every field", enc(hostile), ct,
                      payloads=tuple(marked[n][names.index(n) % 4] for n in names)))
    in_text = {name: markup(f"tj{page.name}x{i}")[i % 4] for i, name in enumerate(page.prose)}
    cases.append(Case("markup in the words of a valid submission", enc(replace(base, page.prose, lambda n: in_text[n])),
                      ct, payloads=tuple(in_text.values())))
    query = [quote_from_bytes(p.encode()) for p in markup(f"tj{page.name}q")]
    cases.append(Case("markup in the query string", enc(base), ct, payloads=tuple(markup(f"tj{page.name}q")[:3]),
                      path_suffix=f"?next={query[1]}&i={query[0]}&n={query[2]}"))
    # Repeated fields and wrong types.
    cases += [Case("every field twice, differently", enc(base + [(k, EMOJI) for k, _v in base]), ct),
              Case("one field 1500 times", multipart(parts_of(base + [(names[0], str(i)) for i in range(1500)])),
                   MULTIPART)]
    for wrong in WRONG_TYPES:
        cases.append(Case(f"wrong type {wrong[:12]!r}", enc(replace(base, page.choices + page.hidden,
                                                                     lambda _n, w=wrong: w)), ct))
    # Files where text belongs; text where a file belongs.
    file_parts = [Part(k, _bytes(v), filename="x.txt", content_type="text/plain") if k in typed else Part(k, _bytes(v))
                  for k, v in base]
    cases.append(Case("files in the text fields", multipart(file_parts), MULTIPART))
    if page.files:
        cases.append(Case("text in the file field", multipart(parts_of(base + [(page.files[0], "not a file")])),
                          MULTIPART))
    # Malformed multipart and wrong content types.
    good_parts = parts_of(base)
    cases += [Case("multipart, wrong boundary", multipart(good_parts, boundary=b"other"), MULTIPART),
              Case("multipart, no boundary", multipart(good_parts), "multipart/form-data"),
              Case("multipart, never closed", multipart(good_parts, close=False)[:-7], MULTIPART),
              Case("multipart, garbage headers", multipart([Part(p.name, p.value, extra=b"X-\xff: \x00\x01\r\n:::\r\n")
                                                            for p in good_parts]), MULTIPART),
              Case("multipart, part without a name", b"--tjfuzzboundary\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
                                                     b"--tjfuzzboundary--\r\n", MULTIPART),
              Case("multipart, only garbage", bytes(rng.randrange(256) for _ in range(2048)), MULTIPART),
              Case("multipart, base64 transfer encoding",
                   multipart([Part(p.name, p.value, extra=b"Content-Transfer-Encoding: base64\r\n")
                              for p in good_parts]), MULTIPART),
              Case("JSON body", b'{"' + names[0].encode() + b'": [1, {"a": null}]}', "application/json"),
              Case("plain text body", urlencoded(base), "text/plain"),
              Case("no content type", urlencoded(base), None),
              Case("XML body", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
                   "application/xml")]
    # Garbled tokens in the URL (the pages whose path carries one).
    if page.name in tokens:
        stem = page.path.rsplit("/", 1)[0]
        token_payload = markup(f"tj{page.name}t")[0]
        for label, token in (("markup token", quote_from_bytes(token_payload.encode())),
                             ("emoji token", quote_from_bytes(EMOJI.encode())), ("10 KB token", "A" * 10_000),
                             ("NUL in the token", "ab%00cd"), ("another form's token", tokens[page.name]),
                             ("token with a huge id", "99999999999999999999-abc")):
            cases.append(Case(label, enc(base), ct, path=f"{stem}/{token}",
                              payloads=(token_payload,) if label == "markup token" else ()))
    # Hostile uploads (the complaint form takes photos and PDFs).
    for name in page.files:
        uploads = {
            "a decompression bomb": Part(name, png_bomb(), filename="bomb.png", content_type="image/png"),
            "a JPEG that is not one": Part(name, b"\xff\xd8\xff\xe0" + bytes(rng.randrange(256) for _ in range(4096)),
                                           filename="photo.jpg", content_type="image/jpeg"),
            "a HEIC that is not one": Part(name, b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, filename="p.heic",
                                           content_type="image/heic"),
            "an empty file": Part(name, b"", filename="empty.jpg", content_type="image/jpeg"),
            "a path and markup as file name": Part(name, b"%PDF-1.4\n%%EOF", content_type="application/pdf",
                                                   filename='../../etc/<img src=x onerror=alert("tjfile")>.pdf'),
            "a 1000-character emoji file name": Part(name, b"%PDF-1.4\n%%EOF", filename=EMOJI * 200 + ".pdf",
                                                     content_type="application/pdf"),
            "an executable named as a PDF": Part(name, b"MZ\x90\x00" + b"\x00" * 512, filename="a.pdf",
                                                 content_type="application/pdf"),
        }
        for label, upload in uploads.items():
            payloads = ('<img src=x onerror=alert("tjfile")>',) if "markup" in label else ()
            cases.append(Case(f"upload: {label}", multipart([*good_parts, upload]), MULTIPART, payloads=payloads))
        cases.append(Case("upload: six files", multipart(good_parts + [
            Part(name, b"%PDF-1.4\n%%EOF", filename=f"{i}.pdf", content_type="application/pdf") for i in range(6)]),
            MULTIPART))
    # Seeded random combinations of the values above.
    values: list[Value] = [EMOJI, invalid, "a\x00b", "长" * 5000, "", *WRONG_TYPES, *markup(f"tj{page.name}r")]
    for i in range(12):
        pairs = list(base)
        for _ in range(rng.randint(1, 4)):
            pairs = replace(pairs, [rng.choice(names)], lambda _n: rng.choice(values))
        if rng.random() < 0.3:
            pairs.append((rng.choice(names), rng.choice(values)))
        if rng.random() < 0.3 and pairs:
            pairs.pop(rng.randrange(len(pairs)))
        payloads = tuple(str(v) for _k, v in pairs if isinstance(v, str) and v.startswith(("<", '"', "'")))
        use_multipart = rng.random() < 0.5
        body = multipart(parts_of(pairs)) if use_multipart else urlencoded(pairs)
        cases.append(Case(f"random combination {i}", body, MULTIPART if use_multipart else FORM, payloads=payloads))
    return cases


# The run -------------------------------------------------------------------------------------

@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    count: int = 0


def _clear_counters(app) -> None:
    conn = app.extensions["redis"]
    keys = [*conn.scan_iter("tj:rl:*", count=1000), *conn.scan_iter("tj:lookup:*", count=1000)]
    if keys:
        conn.delete(*keys)
    ratelimit.reset_local()


def _logged_error(caplog) -> str:
    """The exception the app logged for a 500, as type, message and the innermost frame of our code."""
    import traceback

    for record in reversed(caplog.records):
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            frames = [f for f in traceback.extract_tb(error.__traceback__) if "site-packages" not in f.filename]
            where = f" at {frames[-1].filename.rsplit('/', 2)[-2:]}:{frames[-1].lineno}" if frames else ""
            return f" ({type(error).__name__}: {str(error)[:160]}{where})"
    return ""


def run_case(app, client, conn, page: FormPage, case: Case, findings: Findings, caplog) -> None:
    _clear_counters(app)
    caplog.clear()
    db.session.commit()
    savepoint = conn.begin_nested()
    path = (case.path or page.path) + case.path_suffix
    headers = {} if case.content_type is None else {"Content-Type": case.content_type}
    where = f"{page.name} [{case.label}] POST {path[:120]}"
    try:
        response = client.open(path, method="POST", data=case.body, headers=headers)
        findings.count += 1
        findings.statuses[response.status_code] = findings.statuses.get(response.status_code, 0) + 1
        check_answer(response, case, where, findings, caplog)
        if case.expect_ok and response.status_code not in (200, 302, 303):
            findings.problems.append(f"{where}: the valid submission was refused ({response.status_code}); the "
                                     f"fuzz would not reach past the form")
        location = urlsplit(response.headers.get("Location", ""))
        if response.status_code in (302, 303) and not location.netloc:  # the page it leads to shows what was sent
            caplog.clear()
            check_answer(client.get(location.path + (f"?{location.query}" if location.query else "")), case,
                         f"{where} -> GET {location.path}", findings, caplog)
    except Exception as exc:  # the testing app propagates what production would answer with a 500
        findings.problems.append(f"{where}: exception {type(exc).__name__}: {str(exc)[:300]}")
    finally:
        db.session.rollback()
        savepoint.rollback()
        db.session.expire_all()


def check_answer(response, case: Case, where: str, findings: Findings, caplog) -> None:
    body = response.get_data(as_text=True)
    status = response.status_code
    if status >= 500:
        findings.problems.append(f"{where}: {status}{_logged_error(caplog)}")
    if "Traceback (most recent call last)" in body:
        findings.problems.append(f"{where}: a traceback in the page")
    if 400 <= status < 500 and response.mimetype == "text/html" and not CJK.search(body):
        findings.problems.append(f"{where}: {status} without a message in Chinese")
    for payload in case.payloads:
        if payload in body or payload in response.headers.get("Location", ""):
            findings.problems.append(f"{where}: {payload!r} reflected unescaped")


FORMS = ["touchpoint_survey", "complaint", "lookup", "feedback", "discharge_survey", "staff_survey", "login"]


@pytest.fixture
def world(ctx):
    world = build_world("rmyy")
    db.session.commit()
    return world


def form_path(world, name: str) -> tuple[str, dict[str, str]]:
    """The form's path, and what a person would type in it where a made-up value would not do."""
    public = world.public
    paths = {"touchpoint_survey": f"/q/{public['touchpoint_survey']}",
             "complaint": f"/c/{world.args['institution_id']}/new",
             "lookup": "/c/lookup", "feedback": f"/c/feedback/{public['feedback']}",
             "discharge_survey": f"/d/{public['discharge_survey']}", "staff_survey": f"/s/{public['staff_survey']}",
             "login": "/login"}
    typed = {"lookup": {"institution": str(world.args["institution_id"]), "case_number": public["case_number"],
                        "code": public["lookup_code"]},
             "login": {"username": "rmyy-nurse"}}.get(name, {})
    return paths[name], typed


@pytest.mark.parametrize("name", FORMS)
def test_a_public_form_survives_hostile_input(app, _transaction, world, monkeypatch, caplog, name):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)  # as in production (the login form has a token)
    client = make_client(app)
    path, typed = form_path(world, name)
    page = read_form(client, name, path, typed)
    # Another form's token for the token pages: signed for another purpose, it must be refused as garbled.
    others = {"touchpoint_survey": world.public["staff_survey"], "discharge_survey": world.public["feedback"],
              "staff_survey": world.public["discharge_survey"], "feedback": world.public["touchpoint_survey"]}
    cases = generate(page, random.Random(f"{SEED}:{name}"), others)
    findings = Findings()
    for case in cases:
        run_case(app, client, _transaction, page, case, findings, caplog)
    print(f"\n{name}: {len(cases)} cases, statuses {dict(sorted(findings.statuses.items()))}")
    assert len(cases) >= 50, len(cases)
    assert not findings.problems, f"{len(findings.problems)} of {len(cases)} cases:\n" + "\n".join(findings.problems)
