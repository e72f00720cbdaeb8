"""The project's QR decoding pipeline over a PIL image, and the two raw decoders it is
measured against (`bench/qr.py`, docs/devices/qr.md).

Pipeline (chosen by measurement; figures in docs/devices/qr.md):

1. **fast**: zxing-cpp on the luminance image, QR only, `try_invert=False`, asking for
   failed reads too (`return_errors=True`). Phones show the 苏服码 dark on light, so the
   inverted pass zxing-cpp does by default is dropped here: it costs ~40% of each call.
2. If zxing-cpp *located* a QR symbol but could not decode it (noise, blur, skew), retry on
   a crop around that symbol only: denoised (3×3 box blur), then denoised and upscaled 2×.
   A crop is ~5% of the frame, so these retries cost less than one more full-frame pass.
3. If nothing was located at all, one denoised full-frame pass, at half resolution for large
   frames (noise, not resolution, is what hides the finder patterns there).

The result is text plus the raw bytes: payloads are text (binary content travels as base45,
see `drivers.qr.payload`); pyzbar is never used for decoding in production because zbar
re-encodes binary payloads by guessing charsets, and is 3–6× slower (DESIGN §4). When it is
used (bench, comparison tests) it is restricted to QR symbols.

Nothing here logs or raises with the decoded text: a 苏服码 is a secret (kiosk/privacy.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import zxingcpp
from PIL import Image, ImageFilter
from pyzbar.pyzbar import ZBarSymbol
from pyzbar.pyzbar import decode as zbar_decode

_QR = zxingcpp.BarcodeFormat.QRCode
_DENOISE = ImageFilter.BoxBlur(1)  # 3×3 mean: averages sensor noise, keeps 3-px modules
_CROP_MARGIN = 0.3  # of the symbol's size, so the quiet zone and finder edges survive
_LARGE_FRAME_PX = 600  # frames at least this tall get the half-resolution fallback


@dataclass(frozen=True)
class Decoded:
    """One decoded QR symbol. `text` is secret: repr hides it."""

    text: str = field(repr=False)
    raw: bytes = field(repr=False)
    decoder: str  # "pipeline" | "zxing" | "pyzbar"
    stage: str  # which step of the pipeline read it
    elapsed_ms: float


def _luminance(image: Image.Image) -> Image.Image:
    # zxing-cpp converts RGB itself, but doing it once here means every retry reuses it.
    return image if image.mode == "L" else image.convert("L")


def _zxing(image: Image.Image, **options: object) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(image, formats=_QR, **options)


def _crop_around(image: Image.Image, position: zxingcpp.Position) -> Image.Image:
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    xs, ys = [p.x for p in points], [p.y for p in points]
    margin = int(max(max(xs) - min(xs), max(ys) - min(ys)) * _CROP_MARGIN) + 8
    return image.crop((
        max(0, min(xs) - margin),
        max(0, min(ys) - margin),
        min(image.width, max(xs) + margin),
        min(image.height, max(ys) + margin),
    ))


def _first_valid(barcodes: list[zxingcpp.Barcode]) -> zxingcpp.Barcode | None:
    return next((b for b in barcodes if b.valid), None)


class QrDecoder:
    """The pipeline. Thread-safe (no state between calls); call it from an executor."""

    name = "pipeline"

    def __init__(self, *, try_invert: bool = False) -> None:
        # `try_invert=True` adds light-on-dark codes (a phone in dark mode showing an
        # inverted code) to the fast pass, at ~40% more time per frame.
        self.try_invert = try_invert

    def decode(self, image: Image.Image) -> Decoded | None:
        started = time.perf_counter()
        gray = _luminance(image)
        found = _zxing(gray, try_invert=self.try_invert, return_errors=True)
        hit, stage = _first_valid(found), "fast"
        if hit is None and found:
            crop = _crop_around(gray, found[0].position).filter(_DENOISE)
            hit, stage = _first_valid(_zxing(crop, try_invert=False)), "crop_denoise"
            if hit is None:
                big = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.BICUBIC)
                hit, stage = _first_valid(_zxing(big, try_invert=False)), "crop_upscale"
        elif hit is None:
            smooth = gray.filter(_DENOISE)
            if gray.height >= _LARGE_FRAME_PX:
                smooth = smooth.reduce(2)
            hit, stage = _first_valid(_zxing(smooth, try_invert=False)), "frame_denoise"
        if hit is None:
            return None
        return Decoded(hit.text, hit.bytes, self.name, stage,
                       (time.perf_counter() - started) * 1000)


class ZxingDecoder:
    """zxing-cpp as it comes (QR only, default options): the baseline the pipeline beats."""

    name = "zxing"

    def decode(self, image: Image.Image) -> Decoded | None:
        started = time.perf_counter()
        hit = _first_valid(_zxing(image))
        if hit is None:
            return None
        return Decoded(hit.text, hit.bytes, self.name, "zxing",
                       (time.perf_counter() - started) * 1000)


class PyzbarDecoder:
    """zbar through pyzbar, restricted to QR symbols (3× faster than all symbologies and no
    DataBar warnings). `text` is zbar's reading of the bytes, which re-encodes binary
    payloads: compare `raw` only for text payloads."""

    name = "pyzbar"

    def decode(self, image: Image.Image) -> Decoded | None:
        started = time.perf_counter()
        found = zbar_decode(_luminance(image), symbols=[ZBarSymbol.QRCODE])
        if not found:
            return None
        raw = found[0].data
        return Decoded(raw.decode("utf-8", "replace"), raw, self.name, "pyzbar",
                       (time.perf_counter() - started) * 1000)
