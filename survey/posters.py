"""Print-ready PDFs: touchpoint posters, table tents and staff survey token slips.

Chinese text uses the CID font STSong-Light, which every PDF viewer and
printer driver substitutes with a local Song face, so no font file ships
with the product. QR codes are drawn as vectors (reportlab's QR widget) so
they stay sharp at any print size.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask_babel import gettext
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

FONT = "STSong-Light"
BRAND = colors.HexColor("#0b6e4f")
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#5b6670")
LINE = colors.HexColor("#9aa5b1")


@dataclass(frozen=True)
class PosterItem:
    """What one poster or tent shows: where, and the URL its QR code opens."""

    institution_name: str
    touchpoint_name: str
    url: str
    location: str = ""


@dataclass(frozen=True)
class Slip:
    """One staff survey token slip."""

    url: str


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _canvas(buffer: io.BytesIO, pagesize, title: str) -> Canvas:
    canvas = Canvas(buffer, pagesize=pagesize, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor(gettext("听见"))
    canvas.setCreator(gettext("听见"))
    return canvas


OPENING = "（([《“‘「【"
CLOSING = "）)]》”’」】，。、；：！？,.;:!?"


@dataclass(frozen=True)
class Block:
    """A paragraph to lay out: shrunk to fit down to ``min_size``, then wrapped."""

    text: str
    size: float
    min_size: float | None = None
    color: object = INK
    bold: bool = False
    max_lines: int = 2
    gap_before: float = 0.0
    leading: float = 1.25


def _width(text: str, size: float) -> float:
    return pdfmetrics.stringWidth(text, _font(), size)


def _wrap(text: str, max_width: float, size: float, max_lines: int) -> list[str]:
    """Break text (CJK: a line may end after any character) into at most ``max_lines`` lines.

    Closing punctuation stays on the line it closes and an opening bracket
    moves to the line it opens, as Chinese typesetting expects.
    """
    lines: list[str] = []
    current = ""
    for ch in text:
        if current and ch not in CLOSING and _width(current + ch, size) > max_width:
            carry = ""
            while current and current[-1] in OPENING:
                carry, current = current[-1] + carry, current[:-1]
            lines.append(current)
            current = (carry + ch).lstrip()
        else:
            current += ch
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        while last and _width(last + "…", size) > max_width:
            last = last[:-1]
        lines[-1] = last + "…"
    return lines


def _layout(block: Block, max_width: float) -> tuple[list[str], float]:
    """The lines and font size of ``block`` in a column ``max_width`` wide."""
    size = block.size
    min_size = block.size if block.min_size is None else block.min_size
    width = _width(block.text, size)
    if width > max_width:
        size = max(min_size, size * max_width / width * 0.995)  # a hair under, against rounding
    if _width(block.text, size) <= max_width:
        return [block.text], size
    return _wrap(block.text, max_width, size, block.max_lines), size


def _height(blocks: Sequence[Block], max_width: float) -> float:
    total = 0.0
    for block in blocks:
        lines, size = _layout(block, max_width)
        total += block.gap_before + size * (1 + block.leading * (len(lines) - 1))
    return total


def _draw(canvas: Canvas, blocks: Sequence[Block], *, x: float, top: float, max_width: float,
          align: str = "center") -> float:
    """Draw ``blocks`` downwards from ``top`` (the top of the first line); returns the bottom.

    ``x`` is the column's centre (align="center") or left edge. Bold strokes
    the glyph outlines: the CID font has no bold face.
    """
    y = top
    for block in blocks:
        lines, size = _layout(block, max_width)
        y -= block.gap_before
        canvas.saveState()
        canvas.setFillColor(block.color)
        canvas.setStrokeColor(block.color)
        canvas.setLineWidth(size / 40)
        for index, line in enumerate(lines):
            baseline = y - size * 0.88 - index * size * block.leading
            t = canvas.beginText()
            t.setFont(_font(), size)
            if block.bold:
                t.setTextRenderMode(2)
            left = x - _width(line, size) / 2 if align == "center" else x
            t.setTextOrigin(left, baseline)
            t.textLine(line)
            canvas.drawText(t)
        canvas.restoreState()
        y -= size * (1 + block.leading * (len(lines) - 1))
    return y


def _qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    """A vector QR code (error correction M, 4-module quiet zone) filling a ``size`` square at (x, y)."""
    widget = QrCodeWidget(url, barLevel="M", barBorder=4)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, canvas, x, y)


# Posters -----------------------------------------------------------------

def _poster_page(canvas: Canvas, item: PosterItem) -> None:
    width, height = A4
    margin = 18 * mm
    inner = width - 2 * margin
    # Header band with the hospital's name.
    band = 34 * mm
    canvas.setFillColor(BRAND)
    canvas.rect(0, height - band, width, band, stroke=0, fill=1)
    header = [Block(item.institution_name, 26, 14, color=colors.white, bold=True, max_lines=2, leading=1.15)]
    _draw(canvas, header, x=width / 2, top=height - band / 2 + _height(header, inner) / 2, max_width=inner)
    # The touchpoint: what the patient is about to rate, centred between band and code.
    qr_size = 112 * mm
    qr_y = 96 * mm
    frame = 4 * mm
    place = [Block(item.touchpoint_name, 36, 20, bold=True, max_lines=2, leading=1.2)]
    if item.location:
        place.append(Block(item.location, 16, 10, color=MUTED, max_lines=1, gap_before=3 * mm))
    slot_top, slot_bottom = height - band, qr_y + qr_size + frame
    _draw(canvas, place, x=width / 2, top=(slot_top + slot_bottom + _height(place, inner)) / 2, max_width=inner)
    # The code, framed, in the middle of the page.
    canvas.setStrokeColor(BRAND)
    canvas.setLineWidth(2)
    canvas.roundRect((width - qr_size) / 2 - frame, qr_y - frame, qr_size + 2 * frame, qr_size + 2 * frame,
                     6 * mm, stroke=1, fill=0)
    _qr(canvas, item.url, (width - qr_size) / 2, qr_y, qr_size)
    # The call to action.
    _draw(canvas, [
        Block(gettext("扫码评价"), 54, 30, color=BRAND, bold=True, max_lines=1),
        Block(gettext("您的评价匿名提交，帮助我们改进服务"), 20, 12, gap_before=6 * mm),
    ], x=width / 2, top=qr_y - frame - 9 * mm, max_width=inner)
    # The address, for anyone whose camera will not read the code.
    canvas.setStrokeColor(LINE)
    canvas.setLineWidth(0.5)
    canvas.line(margin, 22 * mm, width - margin, 22 * mm)
    _draw(canvas, [Block(item.url, 10, 6, color=MUTED, max_lines=1)], x=width / 2, top=18 * mm, max_width=inner)


def poster_pdf(items: Sequence[PosterItem], *, title: str = "") -> bytes:
    """A4 portrait posters, one page per touchpoint."""
    buffer = io.BytesIO()
    canvas = _canvas(buffer, A4, title or gettext("扫码评价海报"))
    for item in items:
        _poster_page(canvas, item)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# Table tents -------------------------------------------------------------

def _tent_face(canvas: Canvas, item: PosterItem, width: float, height: float) -> None:
    """One face of the tent, drawn upright in a ``width`` x ``height`` box at the origin."""
    pad = 14 * mm
    qr_size = height - 2 * pad
    _qr(canvas, item.url, pad, pad, qr_size)
    left = pad + qr_size + 10 * mm
    text_width = width - left - pad
    blocks = [
        Block(item.institution_name, 18, 10, color=MUTED, max_lines=1),
        Block(item.touchpoint_name, 30, 16, bold=True, max_lines=2, leading=1.15, gap_before=4 * mm),
        Block(gettext("扫码评价"), 44, 24, color=BRAND, bold=True, max_lines=1, gap_before=7 * mm),
        Block(gettext("您的评价匿名提交，帮助我们改进服务"), 15, 9, max_lines=2, gap_before=4 * mm),
    ]
    _draw(canvas, blocks, x=left + text_width / 2, top=(height + _height(blocks, text_width)) / 2,
          max_width=text_width)


def _tent_page(canvas: Canvas, item: PosterItem) -> None:
    width, height = landscape(A4)
    half = height / 2
    # Front face: the lower half, upright.
    _tent_face(canvas, item, width, half)
    # Back face: the upper half, turned 180 degrees so it reads upright once folded.
    canvas.saveState()
    canvas.translate(width, height)
    canvas.rotate(180)
    _tent_face(canvas, item, width, half)
    canvas.restoreState()
    # Fold line.
    canvas.saveState()
    canvas.setStrokeColor(LINE)
    canvas.setLineWidth(0.6)
    canvas.setDash(4, 3)
    canvas.line(0, half, width, half)
    canvas.setFillColor(LINE)
    canvas.setFont(_font(), 8)
    canvas.drawRightString(width - 6 * mm, half + 1.5 * mm, gettext("沿虚线对折"))
    canvas.restoreState()


def tent_pdf(items: Sequence[PosterItem], *, title: str = "") -> bytes:
    """A4 landscape table tents folded in two, one page per touchpoint, the same face on both sides."""
    buffer = io.BytesIO()
    canvas = _canvas(buffer, landscape(A4), title or gettext("扫码评价桌牌"))
    for item in items:
        _tent_page(canvas, item)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# Staff survey slips ------------------------------------------------------

SLIP_COLUMNS = 2
SLIP_ROWS = 4
SLIPS_PER_PAGE = SLIP_COLUMNS * SLIP_ROWS


def _chunks(seq: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def _slip(canvas: Canvas, slip: Slip, x: float, y: float, w: float, h: float, *, blocks: list[Block]) -> None:
    pad = 6 * mm
    url_band = 9 * mm
    qr_size = h - 2 * pad - url_band
    _qr(canvas, slip.url, x + pad - 2 * mm, y + pad + url_band, qr_size)
    left = x + pad + qr_size + 1 * mm
    text_width = x + w - pad - left
    area_top, area_bottom = y + h - pad, y + pad + url_band
    _draw(canvas, blocks, x=left, top=(area_top + area_bottom + _height(blocks, text_width)) / 2,
          max_width=text_width, align="left")
    _draw(canvas, [Block(slip.url, 8, 5, color=MUTED, max_lines=1)], x=x + w / 2, top=y + pad + 4 * mm,
          max_width=w - 2 * pad)


def slips_pdf(slips: Sequence[Slip], *, institution_name: str, department_name: str, heading: str,
              expires: str, title: str = "") -> bytes:
    """Token slips, eight to an A4 page, with dashed cut lines between them."""
    width, height = A4
    margin = 10 * mm
    cell_w = (width - 2 * margin) / SLIP_COLUMNS
    cell_h = (height - 2 * margin) / SLIP_ROWS
    blocks = [
        Block(heading, 13, 9, bold=True, max_lines=2, leading=1.2),
        Block(institution_name, 8.5, 8.5, color=MUTED, max_lines=2, gap_before=1.5 * mm),
        Block(department_name, 8.5, 8.5, color=MUTED, max_lines=1, gap_before=0.8 * mm),
        Block(gettext("请用手机扫码填写。"), 9, 9, max_lines=2, gap_before=3 * mm),
        Block(gettext("本问卷匿名，每个链接只能提交一次。"), 9, 9, max_lines=3, gap_before=1 * mm),
        Block(gettext("有效期至 %(date)s", date=expires), 9, 9, max_lines=2, gap_before=1 * mm),
    ]
    buffer = io.BytesIO()
    canvas = _canvas(buffer, A4, title or heading)
    for page in _chunks(list(slips), SLIPS_PER_PAGE):
        for index, slip in enumerate(page):
            col, row = index % SLIP_COLUMNS, index // SLIP_COLUMNS
            x = margin + col * cell_w
            y = height - margin - (row + 1) * cell_h
            _slip(canvas, slip, x, y, cell_w, cell_h, blocks=blocks)
        canvas.saveState()
        canvas.setStrokeColor(LINE)
        canvas.setLineWidth(0.5)
        canvas.setDash(3, 3)
        # Cut lines around the rows this page uses (the last page may be part-filled).
        rows = -(-len(page) // SLIP_COLUMNS)
        bottom = height - margin - rows * cell_h
        for col in range(SLIP_COLUMNS + 1):
            canvas.line(margin + col * cell_w, bottom, margin + col * cell_w, height - margin)
        for row in range(rows + 1):
            y = height - margin - row * cell_h
            canvas.line(margin, y, width - margin, y)
        canvas.restoreState()
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()
