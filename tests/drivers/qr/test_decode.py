import random

import pytest
import zxingcpp
from PIL import Image, ImageOps
from pyzbar.pyzbar import decode as zbar_decode

from drivers.qr.decode import PyzbarDecoder, QrDecoder, ZxingDecoder
from drivers.qr.payload import Charset, b45decode, b45encode, validate
from drivers.sim.camera import DIFFICULTIES, frame_set, qr_image, render_frame


@pytest.fixture(scope="module")
def decoder():
    return QrDecoder()


@pytest.mark.parametrize("size", ["640x480", "1280x720"])
def test_easy_frames_all_decode(decoder, size):
    for frame in frame_set("easy", size, n=8, seed=1):
        decoded = decoder.decode(frame.image)
        assert decoded is not None and decoded.text == frame.expected
        assert decoded.stage == "fast"


def test_pipeline_reads_at_least_what_zxing_reads_on_hard_frames(decoder):
    frames = frame_set("hard", "640x480", n=16, seed=3)
    zxing = ZxingDecoder()

    def reads(dec):
        decoded = [dec.decode(f.image) for f in frames]
        return {i for i, (d, f) in enumerate(zip(decoded, frames)) if d and d.text == f.expected}

    ours, theirs = reads(decoder), reads(zxing)
    assert theirs <= ours
    assert len(ours) > len(theirs), "the fallbacks rescue nothing on these fixed frames"


def test_the_fallback_stages_are_exercised(decoder):
    stages = set()
    for frame in frame_set("hard", "1280x720", n=20, seed=0):
        decoded = decoder.decode(frame.image)
        if decoded is not None:
            assert decoded.text == frame.expected
            stages.add(decoded.stage)
    assert {"fast", "crop_denoise"} <= stages


def test_empty_scan_window_reads_nothing(decoder):
    rng = random.Random(5)
    for level in ("easy", "hard"):
        assert decoder.decode(render_frame(None, (640, 480), DIFFICULTIES[level], rng)) is None


def test_binary_content_travels_as_base45(decoder):
    data = random.Random(7).randbytes(64)
    text = b45encode(data)
    frame = render_frame(text, (1280, 720), DIFFICULTIES["easy"], random.Random(11))
    decoded = decoder.decode(frame)
    assert decoded is not None
    assert b45decode(validate(decoded.text, charset=Charset.BASE45)) == data
    # zbar reads base45 text unchanged too: it is plain alphanumeric-mode QR.
    assert b45decode(PyzbarDecoder().decode(frame).text) == data


def test_raw_binary_survives_zxing_but_not_zbar(decoder):
    """Why payloads stay text: zbar re-encodes binary bytes by guessing a charset."""
    data = bytes(range(255, 135, -1))
    image = qr_image(data, module_px=4)
    assert decoder.decode(image).raw == data
    assert PyzbarDecoder().decode(image).raw != data


def test_pyzbar_is_restricted_to_qr():
    barcode = zxingcpp.create_barcode("5901234123457", zxingcpp.BarcodeFormat.EAN13)
    pixels = memoryview(barcode.to_image(scale=3))
    image = ImageOps.expand(
        Image.frombytes("L", (pixels.shape[1], pixels.shape[0]), pixels.tobytes()), 40, 255
    )
    assert zbar_decode(image), "zbar unrestricted reads the EAN-13"
    assert PyzbarDecoder().decode(image) is None
    assert QrDecoder().decode(image) is None


def test_inverted_codes_need_try_invert():
    image = ImageOps.invert(qr_image("SFM1INVERTED0123456789ABCDEFGH", module_px=5))
    assert QrDecoder(try_invert=True).decode(image).text == "SFM1INVERTED0123456789ABCDEFGH"


def test_decoded_repr_hides_the_code(decoder):
    frame = frame_set("easy", "640x480", n=1, seed=9)[0]
    decoded = decoder.decode(frame.image)
    assert frame.expected not in repr(decoded)


def test_frame_sets_are_reproducible():
    a = frame_set("medium", "640x480", n=2, seed=4)
    b = frame_set("medium", "640x480", n=2, seed=4)
    assert [f.expected for f in a] == [f.expected for f in b]
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert a[0].image.size == (640, 480) and a[0].image.mode == "RGB"
