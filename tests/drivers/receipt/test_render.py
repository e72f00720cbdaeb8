"""Receipt rendering: a 576-dot 1-bit image with Chinese text and a QR code that scans."""

import datetime as dt
import statistics
import time

import pytest
import zxingcpp
from PIL import Image

from drivers.receipt.printer import encode_job
from kiosk.documents import Receipt, ReceiptLine, render_receipt
from kiosk.documents import receipt as receipt_module
from kiosk.privacy import mask_id_number, mask_name

PAYLOAD = "https://zwfw.jiangsu.gov.cn/q?c=SQ3202002025000123"


def sample(**changes) -> Receipt:
    fields = dict(
        title="个人住房公积金缴存证明 Housing fund certificate",
        reference_label="办件编号 Case No.",
        reference="SQ3202002025000123",
        kiosk_id="WX-BH-0012",
        issued_at=dt.datetime(2025, 3, 1, 10, 11, 12),
        lines=[
            ReceiptLine("申请人 Applicant", mask_name("张三丰")),
            ReceiptLine("证件号码 ID No.", mask_id_number("320102199003071234")),
            ReceiptLine("状态 Status", "已受理 Accepted"),
        ],
        qr_payload=PAYLOAD,
        qr_caption="扫码查询办理进度 Scan to track progress",
        footer=["请妥善保管本凭条。Please keep this receipt."],
    )
    fields.update(changes)
    return Receipt(**fields)


def dark_rows(image: Image.Image) -> int:
    """Rows with at least one black dot."""
    grey = image.convert("L")
    rows = (grey.crop((0, y, grey.width, y + 1)) for y in range(grey.height))
    return sum(1 for row in rows if row.getextrema()[0] == 0)


def test_image_is_576_dots_wide_and_1_bit():
    image = render_receipt(sample())
    assert image.mode == "1" and image.width == 576
    assert 400 < image.height < 2000


def test_the_qr_code_scans_back_to_its_payload():
    image = render_receipt(sample())
    found = zxingcpp.read_barcodes(image.convert("L"))
    assert [(b.format, b.text) for b in found] == [(zxingcpp.BarcodeFormat.QRCode, PAYLOAD)]


def test_qr_modules_are_big_enough_for_paper():
    symbol = receipt_module.qr_image(PAYLOAD)
    assert symbol.info["module"] >= 4  # ≥ 0.5 mm at 203 dpi
    assert symbol.width >= 200


def test_chinese_text_is_drawn_not_tofu():
    # The same title in two different Chinese strings must give different pixels; a missing
    # font would draw identical boxes for both.
    a = render_receipt(sample(title="不动产登记"))
    b = render_receipt(sample(title="公积金提取"))
    assert a.size == b.size
    assert a.crop((0, 0, 576, 60)).tobytes() != b.crop((0, 0, 576, 60)).tobytes()
    assert dark_rows(a.crop((0, 0, 576, 60))) > 20


def test_long_values_wrap_instead_of_running_off_the_paper():
    short = render_receipt(sample(lines=[ReceiptLine("事项", "公积金")]))
    long = render_receipt(sample(lines=[ReceiptLine("事项", "个人住房公积金缴存证明打印" * 6)]))
    assert long.height > short.height + 80


def test_no_qr_when_no_payload():
    image = render_receipt(sample(qr_payload="", qr_caption=""))
    assert zxingcpp.read_barcodes(image.convert("L")) == []


def test_wrap_keeps_punctuation_off_the_start_of_a_line():
    face = receipt_module.font(24)
    lines = receipt_module.wrap("请妥善保管本凭条，" * 8, face, 200)
    assert len(lines) > 1
    assert all(not line.startswith("，") for line in lines)
    assert all(face.getlength(line) <= 200 + face.getlength("，") for line in lines)


def test_fonts_are_loaded_once():
    assert receipt_module.font(24) is receipt_module.font(24)


@pytest.mark.parametrize(
    "field",
    [
        {"reference": "320102199003071234"},
        {"lines": [ReceiptLine("证件号码", "320102199003071234")]},
        {"footer": ["联系电话 13812345678"]},
        {"qr_payload": "https://x.cn/?id=320102199003071234"},
    ],
)
def test_unmasked_personal_data_is_refused(field):
    with pytest.raises(ValueError, match="unmasked") as caught:
        sample(**field)
    assert "320102199003071234" not in str(caught.value)
    assert "13812345678" not in str(caught.value)


def test_payload_too_long_is_refused():
    with pytest.raises(ValueError):
        sample(qr_payload="a" * 600)
    with pytest.raises(ValueError, match="too long"):  # fits the model, not a 58 mm roll
        render_receipt(sample(qr_payload="a" * 500), width=384)


def test_render_and_encode_are_fast():
    receipt = sample()
    render_receipt(receipt)  # fonts warm, as on a running kiosk
    times = []
    for _ in range(15):
        # CPU time of this thread: other engineers' jobs on the same 2 cores do not count.
        started = time.thread_time()
        encode_job(render_receipt(receipt))
        times.append((time.thread_time() - started) * 1000)
    # The goal is 30 ms (bench/print.py measures it); the test leaves room for slow CPUs.
    assert statistics.median(times) < 90
