"""Receipt rendering plus ESC/POS encoding: the work the kiosk does before bytes go out.

Each run renders a typical receipt (title, five label/value lines, case number, QR code,
kiosk and time, footer) to a 576-dot 1-bit image with `kiosk.documents.render_receipt`, then
encodes it with python-escpos exactly as the driver does (`encode_job`: initialise, raster
image `GS v 0`, feed and cut, into a Dummy printer). Fonts load once, as on a running kiosk
(one warm-up run first). Median of N runs (default 100); the last line printed is JSON:
{"receipt_median_ms": ..., "receipt_bytes": ..., "render_median_ms": ...,
 "encode_median_ms": ..., "runs": N, "image_px": [w, h]}
Goal: receipt_median_ms <= 30 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

from drivers.receipt.printer import encode_job
from kiosk.documents import Receipt, ReceiptLine, render_receipt
from kiosk.privacy import mask_id_number, mask_name

SAMPLE = Receipt(
    title="个人住房公积金缴存证明 Housing fund certificate",
    reference_label="办件编号 Case No.",
    reference="SQ3202002025000123",
    kiosk_id="WX-BH-0012",
    issued_at=dt.datetime(2025, 3, 1, 10, 11, 12),
    lines=[
        ReceiptLine("申请人 Applicant", mask_name("张三丰")),
        ReceiptLine("证件号码 ID No.", mask_id_number("320102199003071234")),
        ReceiptLine("事项 Item", "个人住房公积金缴存证明打印（无锡市住房公积金管理中心）"),
        ReceiptLine("办理方式 Channel", "成全e站自助终端 Self-service kiosk"),
        ReceiptLine("状态 Status", "已受理 Accepted"),
    ],
    qr_payload="https://zwfw.jiangsu.gov.cn/q?c=SQ3202002025000123",
    qr_caption="扫码查询办理进度 Scan to track progress",
    footer=["请妥善保管本凭条。Please keep this receipt.", "无锡市政务服务管理办公室"],
)


def one_run() -> tuple[float, float, int, tuple[int, int]]:
    started = time.perf_counter()
    image = render_receipt(SAMPLE)
    rendered = time.perf_counter()
    data = encode_job(image)
    done = time.perf_counter()
    return (rendered - started) * 1000, (done - rendered) * 1000, len(data), image.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")
    one_run()  # warm-up: fonts loaded and cached, as on a running kiosk
    results = [one_run() for _ in range(args.runs)]
    render = [r for r, _, _, _ in results]
    encode = [e for _, e, _, _ in results]
    total = [r + e for r, e, _, _ in results]
    print(
        json.dumps(
            {
                "receipt_median_ms": round(statistics.median(total), 2),
                "receipt_bytes": results[-1][2],
                "render_median_ms": round(statistics.median(render), 2),
                "encode_median_ms": round(statistics.median(encode), 2),
                "runs": args.runs,
                "image_px": list(results[-1][3]),
            }
        )
    )


if __name__ == "__main__":
    main()
