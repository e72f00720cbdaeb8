"""Simulated camera: renders frames of a phone showing a QR code (segno → PIL), as a kiosk's
scan-window camera would see them — rotated, skewed, blurred, noisy, washed out — with fixed
seeds, so the decoder tests and `bench/qr.py` see the same pixels on every run.

`frame_set(name, size, n, seed)` gives a benchmark set (easy / medium / hard);
`LiveFrameSource` is a `FrameSource` for `CameraQrScanner` whose picture (a code, or none)
is set at runtime with `show()`.
"""

from __future__ import annotations

import random
import string
import threading
import time
from dataclasses import dataclass
from math import ceil

import segno
from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter

from drivers.qr.scanner import Frame

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}
CODE_ALPHABET = string.digits + string.ascii_uppercase


@dataclass(frozen=True)
class Difficulty:
    """Ranges each frame's distortions are drawn from. Module sizes are in pixels at 640×480
    and scale with the frame height, as a camera with a wider sensor sees the same phone."""

    module_px: tuple[float, float]
    rotation: float  # max |angle| in degrees; 180 means any orientation
    skew: float  # max corner displacement as a fraction of the phone's size
    blur: tuple[float, float]  # Gaussian radius in px at 640×480
    noise: int  # peak luminance noise amplitude (0–255 scale)
    contrast: tuple[float, float]  # 1.0 = untouched, lower = washed out
    glare: float  # strength of the uneven-lighting gradient, 0–1


DIFFICULTIES = {
    "easy": Difficulty((4.5, 6.5), 12, 0.0, (0.0, 0.6), 10, (0.85, 1.0), 0.0),
    "medium": Difficulty((3.6, 5.2), 180, 0.08, (0.4, 1.0), 20, (0.55, 0.85), 0.25),
    "hard": Difficulty((3.4, 4.6), 180, 0.14, (0.6, 1.1), 26, (0.4, 0.65), 0.4),
}


def sample_code(rng: random.Random) -> str:
    """A code shaped like the sandbox platform's 苏服码 (`SFM1` + 20–120 of [0-9A-Z])."""
    return "SFM1" + "".join(rng.choices(CODE_ALPHABET, k=rng.randint(28, 72)))


def qr_image(payload: str | bytes, module_px: int = 1, border: int = 4) -> Image.Image:
    """The code as a black-on-white "L" image. `micro=False`: zbar cannot read Micro QR."""
    qr = segno.make(payload, micro=False, error="m")
    rows = [bytes(0 if dark else 255 for dark in row) for row in qr.matrix_iter(border=border)]
    side = len(rows)
    img = Image.frombytes("L", (side, side), b"".join(rows))
    if module_px > 1:
        img = img.resize((side * module_px, side * module_px), Image.Resampling.NEAREST)
    return img


def _phone(code: Image.Image, module_px: float) -> Image.Image:
    """A dark phone body with a bright screen, the code centred on it, as "LA" (luminance
    and coverage, so it can be rotated and pasted onto the scene)."""
    side = round(code.width * module_px)
    qr = code.resize((side, side), Image.Resampling.BILINEAR)
    margin = max(6, side // 10)
    w, h = side + 2 * margin, round((side + 2 * margin) * 1.6)
    phone = Image.new("L", (w + 2 * margin, h + 2 * margin), 0)
    alpha = Image.new("L", phone.size, 0)
    ImageDraw.Draw(alpha).rounded_rectangle(
        (0, 0, phone.width - 1, phone.height - 1), radius=margin * 2, fill=255
    )
    draw = ImageDraw.Draw(phone)
    draw.rectangle((0, 0, phone.width, phone.height), fill=28)
    draw.rectangle((margin, margin, margin + w, margin + h), fill=245)
    # A green header band, as the 苏服办 app draws above the code (in luminance: mid-grey).
    draw.rectangle((margin, margin, margin + w, margin + h // 8), fill=110)
    phone.paste(qr, (2 * margin, margin + (h - side) // 2))
    return Image.merge("LA", (phone, alpha))


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (8×8 here; no numpy on the kiosk)."""
    n = len(b)
    m = [row[:] + [v] for row, v in zip(a, b)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def perspective_coefficients(
    src: list[tuple[float, float]], dst: list[tuple[float, float]]
) -> list[float]:
    """PIL's PERSPECTIVE data mapping each output point `dst[i]` back to input `src[i]`."""
    a, b = [], []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        b.append(u)
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.append(v)
    return _solve(a, b)


def _skew(img: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    """A true perspective warp moving each corner by up to `amount` of the size: a phone
    held not quite parallel to the camera. (A bilinear QUAD warp would bend straight lines,
    which no lens does, and which breaks QR grid sampling for the wrong reason.)"""
    if amount <= 0:
        return img
    w, h = img.size
    src = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    dst = [(x + rng.uniform(-amount, amount) * w, y + rng.uniform(-amount, amount) * h)
           for x, y in src]
    left, top = min(x for x, _ in dst), min(y for _, y in dst)
    dst = [(x - left, y - top) for x, y in dst]
    size = (ceil(max(x for x, _ in dst)), ceil(max(y for _, y in dst)))
    return img.transform(size, Image.Transform.PERSPECTIVE, perspective_coefficients(src, dst),
                         Image.Resampling.BILINEAR, fillcolor=(0, 0))


def _background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A dim, uneven scan-window background with a few shapes (the citizen's hand, a sleeve)."""
    base = rng.randint(70, 140)
    bg = Image.linear_gradient("L").resize(size).point(lambda v: base + (v - 128) // 6)
    draw = ImageDraw.Draw(bg)
    for _ in range(3):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randint(size[1] // 10, size[1] // 3)
        draw.ellipse((x - r, y - r // 2, x + r, y + r // 2), fill=rng.randint(50, 190))
    return bg


def _glare(size: tuple[int, int], rng: random.Random, strength: float) -> Image.Image:
    """A bright spot somewhere in view (a ceiling light on the phone's glass)."""
    x, y = rng.uniform(0, 128), rng.uniform(0, 128)
    spot = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR,
                                             box=(x, y, x + 128, y + 128))
    return spot.point(lambda v: round((255 - v) * strength))


def _noise(size: tuple[int, int], rng: random.Random, amplitude: int) -> Image.Image:
    """Luminance noise in 0..2*amplitude (the sum of two uniforms, roughly bell-shaped), to
    combine with ImageChops.add(..., offset=-amplitude) so it is centred on zero."""
    n = size[0] * size[1]
    a = Image.frombytes("L", size, rng.randbytes(n))
    b = Image.frombytes("L", size, rng.randbytes(n))
    return ImageChops.add(a, b, scale=2).point(lambda v: round(v * 2 * amplitude / 255))


def render_frame(
    payload: str | bytes | None,
    size: tuple[int, int],
    difficulty: Difficulty,
    rng: random.Random,
) -> Image.Image:
    """One RGB camera frame; `payload=None` renders the empty scan window. Rendered in
    luminance (3x cheaper to blur and add noise to) and handed out as RGB like a camera."""
    frame = _background(size, rng)
    if payload is not None:
        module_px = rng.uniform(*difficulty.module_px) * size[1] / 480
        phone = _phone(qr_image(payload), module_px)
        phone = _skew(phone, rng, difficulty.skew)
        angle = rng.uniform(-difficulty.rotation, difficulty.rotation)
        phone = phone.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        if phone.width > size[0] or phone.height > size[1]:  # keep the whole phone in view
            fit = min(size[0] / phone.width, size[1] / phone.height) * 0.98
            phone = phone.resize((int(phone.width * fit), int(phone.height * fit)),
                                 Image.Resampling.BILINEAR)
        x = rng.randint(0, size[0] - phone.width)
        y = rng.randint(0, size[1] - phone.height)
        frame.paste(phone.getchannel("L"), (x, y), phone.getchannel("A"))
    radius = rng.uniform(*difficulty.blur) * size[1] / 480
    if radius > 0.05:
        frame = frame.filter(ImageFilter.GaussianBlur(radius))
    frame = ImageEnhance.Contrast(frame).enhance(rng.uniform(*difficulty.contrast))
    if difficulty.glare > 0:
        frame = ImageChops.add(frame, _glare(size, rng, difficulty.glare))
    if difficulty.noise:
        frame = ImageChops.add(frame, _noise(size, rng, difficulty.noise), 1, -difficulty.noise)
    return frame.convert("RGB")


@dataclass(frozen=True)
class RenderedFrame:
    image: Image.Image
    expected: str  # the payload rendered into the frame


def frame_set(
    name: str, size: str | tuple[int, int], n: int = 50, seed: int = 0
) -> list[RenderedFrame]:
    """`n` frames of difficulty `name`, each with its own code; the same (name, size, n,
    seed) always gives the same pixels."""
    if isinstance(size, str):
        size = SIZES[size]
    difficulty = DIFFICULTIES[name]
    rng = random.Random(f"{name}/{size[0]}x{size[1]}/{seed}")
    frames = []
    for _ in range(n):
        code = sample_code(rng)
        frames.append(RenderedFrame(render_frame(code, size, difficulty, rng), code))
    return frames


class LiveFrameSource:
    """A `FrameSource` that plays a few pre-rendered frames of whatever `show()` last set,
    at `fps`, stamping each with its capture time like a camera driver does."""

    def __init__(
        self,
        size: tuple[int, int] = (640, 480),
        *,
        fps: float = 15.0,
        difficulty: str = "easy",
        seed: int = 0,
        variants: int = 3,
    ) -> None:
        self.size = size
        self.fps = fps
        self._difficulty = DIFFICULTIES[difficulty]
        self._rng = random.Random(seed)
        self._variants = variants
        self._lock = threading.Lock()
        self._frames: list[Image.Image] = []
        self._served_of_this = 0  # frames served since the last show(), to cycle variants
        self._next_at = 0.0
        self._open = False
        self.frames_served = 0
        self.show(None)

    def show(self, payload: str | bytes | None, difficulty: str | None = None) -> None:
        """What the camera sees from now on: a code, or (None) the empty scan window."""
        level = DIFFICULTIES[difficulty] if difficulty else self._difficulty
        frames = [render_frame(payload, self.size, level, self._rng) for _ in range(self._variants)]
        with self._lock:
            self._frames = frames
            self._served_of_this = 0

    # -- FrameSource -----------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            self._open = True
            self._next_at = time.monotonic()

    def read(self, timeout: float) -> Frame | None:
        """Block until the next frame is due (at most `timeout`), like a V4L2 dequeue."""
        wait = self._next_at - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            return None
        if wait > 0:
            time.sleep(wait)
        with self._lock:
            if not self._open:
                raise OSError("camera is closed")
            self._next_at = max(self._next_at, time.monotonic() - 1 / self.fps) + 1 / self.fps
            image = self._frames[self._served_of_this % len(self._frames)]
            self._served_of_this += 1
            self.frames_served += 1
        return Frame(image, time.monotonic())

    def close(self) -> None:
        with self._lock:
            self._open = False
