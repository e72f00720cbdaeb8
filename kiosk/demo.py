"""The demo's system part: whole journeys on the simulated hardware and the sandbox, with
what they printed kept for a reviewer (A4 PDFs from the IPP peer's spool, receipts decoded
back from the ESC/POS bytes the emulator received) and a one-line report each.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kiosk.config import KioskConfig
from kiosk.headless import journey, report_json
from kiosk.services import open_services

JOURNEYS = (
    ("ssc_participation_cert", "c01", "code"),  # print, 免证办 via 苏服码
    ("flexible_employment_enrol", "c03", "ssc"),  # submit with a commitment, 社保卡
    ("ssc_payment_records", "c04", "idcard"),  # query, ID card
    ("real_estate_info", "c02", "idcard"),  # print, ID card
)


async def run_journeys(config: KioskConfig, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    reports = []
    async with open_services(config) as services:
        a4 = services.devices.devices.get("a4_printer")
        receipt = services.devices.devices.get("receipt_printer")
        for number, (item_id, citizen_id, via) in enumerate(JOURNEYS, start=1):
            spooled = set(a4.simulator.spooled_documents()) if a4 else set()
            jobs = len(receipt.simulator.printed_jobs()) if receipt else 0
            report = await journey(services, item_id, citizen_id, via)
            reports.append(report_json(report) | {"via": via})
            stem = f"journey-{number}-{item_id}-{via}"
            if a4:
                for index, pdf in enumerate(sorted(set(a4.simulator.spooled_documents()) - spooled)):
                    target = out_dir / f"{stem}-a4-{index + 1}.pdf"
                    shutil.copyfile(pdf, target)
                    written.append(target)
            if receipt:
                for index, job in enumerate(receipt.simulator.printed_jobs()[jobs:]):
                    image = job.image()
                    if image is not None:
                        target = out_dir / f"{stem}-receipt-{index + 1}.png"
                        image.save(target)
                        written.append(target)
    summary = out_dir / "journeys.json"
    summary.write_text(json.dumps(reports, ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(summary)
    for r in reports:
        detail = f" (case {r['case_number']})" if r["case_number"] else (
            f" (queued as {r['local_ref']})" if r["local_ref"] else "")
        print(f"  journey {r['item']} via {r['via']}: {r['outcome']}{detail}, "
              f"{sum(s['ms'] for s in r['steps']):.0f} ms")
    return written
