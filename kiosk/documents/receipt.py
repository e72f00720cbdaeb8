"""A receipt (凭条) as a 1-bit image for an 80 mm thermal printer: title, label/value lines,
the case number or local reference, a QR code, the issuing kiosk and time, and a footer.

The printer gets pixels, not text: ESC/POS text needs the printer switched into its Chinese
mode (and a font in it), which python-escpos does not do, so Chinese is drawn here with
WenQuanYi Micro Hei. Drawing straight into a mode "1" image keeps glyphs crisp (FreeType's
monochrome rendering) and skips any dithering. The renderer holds no wording of its own:
every label comes in the `Receipt`, already translated by the caller.

Receipts carry masked values only (`kiosk.privacy.mask_name`, `mask_id_number`); a
`Receipt` holding something shaped like a full ID or mobile number is refused.
"""

from __future__ import annotations

import datetime as _dt
import functools
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import segno
from PIL import Image, ImageDraw, ImageFont

from kiosk.privacy import Redactor

FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
RECEIPT_WIDTH = 576  # dots across an 80 mm roll at 203 dpi (72 mm printable)
MARGIN = 16
# A QR module of at least 4 dots (0.5 mm at 203 dpi) scans reliably from thermal paper;
# aim for a symbol about 33 mm wide, as wide as the payload allows.
QR_MIN_MODULE = 4
QR_MAX_MODULE = 10
QR_TARGET_WIDTH = 264
QR_QUIET_MODULES = 4
MAX_QR_PAYLOAD = 512

TITLE_SIZE = 36
BODY_SIZE = 24
REFERENCE_SIZE = 36
SMALL_SIZE = 20
LINE_SPACING = 1.3  # DESIGN §10 asks ≥ 1.3 on screen; the same reads well on paper

# Never start a line with these (they hang at the end of the previous one instead).
_NO_LINE_START = set("，。、；：？！）》」』】’”,.;:?!)]}%")


@dataclass(frozen=True)
class ReceiptLine:
    label: str
    value: str


@dataclass(frozen=True)
class Receipt:
    title: str
    reference_label: str  # "办件编号 Case No." or "本地受理号（待提交）Local ref. (queued)"
    reference: str
    kiosk_id: str
    issued_at: _dt.datetime
    lines: Sequence[ReceiptLine] = ()
    qr_payload: str = ""  # empty: no QR code
    qr_caption: str = ""
    footer: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "footer", tuple(self.footer))
        if len(self.qr_payload) > MAX_QR_PAYLOAD:
            raise ValueError(f"QR payload longer than {MAX_QR_PAYLOAD} characters")
        for name, text in self._texts():
            if _redactor().redact(text) != text:
                # The value itself stays out of the message: it is personal data.
                raise ValueError(f"receipt {name} holds an unmasked ID or mobile number")

    def _texts(self) -> Iterator[tuple[str, str]]:
        yield "title", self.title
        yield "reference", self.reference
        yield "reference_label", self.reference_label
        yield "qr_payload", self.qr_payload
        yield "qr_caption", self.qr_caption
        for i, line in enumerate(self.lines):
            yield f"line {i} label", line.label
            yield f"line {i} value", line.value
        for i, text in enumerate(self.footer):
            yield f"footer {i}", text


@functools.cache
def _redactor() -> Redactor:
    return Redactor()


@functools.lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Loading a face from the .ttc costs ~5 ms; a receipt uses four sizes, so keep them.
    The basic layout engine is enough for Chinese and Latin and faster than raqm."""
    return ImageFont.truetype(FONT_PATH, size, layout_engine=ImageFont.Layout.BASIC)


# -- text wrapping -------------------------------------------------------------------------
def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _tokens(text: str) -> Iterator[str]:
    """Break opportunities: each CJK character alone, Latin words with their trailing space."""
    word = ""
    for ch in text:
        if _is_wide(ch) or ch in _NO_LINE_START:
            if word:
                yield word
                word = ""
            yield ch
        elif ch == " ":
            yield word + " "
            word = ""
        else:
            word += ch
    if word:
        yield word


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy wrap to `width` pixels; explicit newlines are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, line_width = "", 0.0
        for token in _tokens(paragraph):
            token_width = face.getlength(token)
            if line and line_width + token_width > width and token not in _NO_LINE_START:
                lines.append(line.rstrip())
                line, line_width = "", 0.0
                token = token.lstrip()
                token_width = face.getlength(token)
            if token_width > width:  # a word longer than the line: cut it by characters
                for ch in token:
                    ch_width = face.getlength(ch)
                    if line and line_width + ch_width > width:
                        lines.append(line.rstrip())
                        line, line_width = "", 0.0
                    line += ch
                    line_width += ch_width
                continue
            line += token
            line_width += token_width
        lines.append(line.rstrip())
    return lines


def _line_height(size: int) -> int:
    return int(size * LINE_SPACING + 0.5)


# -- layout ----------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Draw operations with their positions; measured first so the canvas is cut to size."""

    width: int
    y: int = MARGIN
    # x, y, text, font size, stroke width
    texts: list[tuple[int, int, str, int, int]] = field(default_factory=list)
    rules: list[tuple[int, int]] = field(default_factory=list)  # y, thickness
    pastes: list[tuple[int, int, Image.Image]] = field(default_factory=list)

    @property
    def content(self) -> int:
        return self.width - 2 * MARGIN

    def centered(self, text: str, size: int, *, stroke: int = 0) -> None:
        face = font(size)
        for line in wrap(text, face, self.content - 2 * stroke):
            x = (self.width - int(face.getlength(line))) // 2
            self.texts.append((x, self.y, line, size, stroke))
            self.y += _line_height(size)

    def rule(self, thickness: int = 2) -> None:
        self.y += 8
        self.rules.append((self.y, thickness))
        self.y += thickness + 12

    def gap(self, pixels: int) -> None:
        self.y += pixels

    def pairs(self, lines: Sequence[ReceiptLine], size: int) -> None:
        face = font(size)
        gutter = size // 2
        widest = max((face.getlength(line.label) for line in lines), default=0)
        label_width = int(min(widest, self.content * 0.4))  # long labels wrap, values get room
        value_x = MARGIN + label_width + gutter
        value_width = self.width - MARGIN - value_x
        step = _line_height(size)
        for line in lines:
            labels = wrap(line.label, face, label_width)
            values = wrap(line.value, face, value_width)
            for i, text in enumerate(labels):
                self.texts.append((MARGIN, self.y + i * step, text, size, 0))
            for i, text in enumerate(values):
                self.texts.append((value_x, self.y + i * step, text, size, 0))
            self.y += step * max(len(labels), len(values)) + size // 4

    def qr(self, payload: str) -> None:
        symbol = qr_image(payload, self.content)
        quiet = symbol.info["module"] * QR_QUIET_MODULES
        self.y += quiet
        self.pastes.append(((self.width - symbol.width) // 2, self.y, symbol))
        self.y += symbol.height + quiet

    def draw(self) -> Image.Image:
        canvas = Image.new("1", (self.width, self.y + MARGIN), 1)
        pen = ImageDraw.Draw(canvas)
        for x, y, text, size, stroke in self.texts:
            pen.text((x, y), text, font=font(size), fill=0, stroke_width=stroke, stroke_fill=0)
        for y, thickness in self.rules:
            pen.rectangle((MARGIN, y, self.width - MARGIN - 1, y + thickness - 1), fill=0)
        for x, y, image in self.pastes:
            canvas.paste(image, (x, y))
        return canvas


_DARK_TO_BLACK = bytes([255, 0] + [0] * 254)  # segno's matrix: 1 = dark module


def qr_image(payload: str, max_width: int = RECEIPT_WIDTH - 2 * MARGIN) -> Image.Image:
    """The QR symbol (no quiet zone) as a mode "1" image; `info["module"]` is the module
    size in dots. Always a full QR code: Micro QR is not read by common scanners."""
    symbol = segno.make(payload, micro=False, error="m")
    modules = symbol.symbol_size(scale=1, border=0)[0]
    module = max(QR_MIN_MODULE, min(QR_MAX_MODULE, QR_TARGET_WIDTH // modules))
    if (modules + 2 * QR_QUIET_MODULES) * module > max_width:
        raise ValueError("QR payload too long to print legibly on this roll")
    raw = b"".join(bytes(row).translate(_DARK_TO_BLACK) for row in symbol.matrix)
    small = Image.frombytes("L", (modules, modules), raw)
    image = small.resize((modules * module,) * 2, Image.Resampling.NEAREST).convert(
        "1", dither=Image.Dither.NONE
    )
    image.info["module"] = module
    return image


def render_receipt(receipt: Receipt, *, width: int = RECEIPT_WIDTH) -> Image.Image:
    """The receipt as a mode "1" image `width` dots wide (576 for 80 mm, 384 for 58 mm)."""
    layout = _Layout(width)
    layout.centered(receipt.title, TITLE_SIZE, stroke=1)
    layout.rule()
    if receipt.lines:
        layout.pairs(receipt.lines, BODY_SIZE)
        layout.rule(1)
    layout.centered(receipt.reference_label, BODY_SIZE)
    layout.centered(receipt.reference, REFERENCE_SIZE, stroke=1)
    if receipt.qr_payload:
        layout.qr(receipt.qr_payload)
        if receipt.qr_caption:
            layout.centered(receipt.qr_caption, SMALL_SIZE)
    else:
        layout.gap(12)
    layout.rule(1)
    issued = receipt.issued_at.strftime("%Y-%m-%d %H:%M:%S")
    layout.centered(f"{receipt.kiosk_id}  {issued}", SMALL_SIZE)
    for text in receipt.footer:
        layout.centered(text, SMALL_SIZE)
    return layout.draw()
