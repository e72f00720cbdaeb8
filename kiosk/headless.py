"""Headless journeys: an item end to end without the UI, through the simulated devices and
the platform — `kiosk journey ITEM --citizen ID --via code|idcard|ssc`.

identify (through the real driver for `via`) → fetch certificates → answer the fields
(examples derived from the manifest, or --answers) → print or submit → rate → wipe. The
same `JourneyEngine` the touch UI drives does the work; this module only sets the stage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from typing import TYPE_CHECKING

from kiosk.identity.model import IdentitySource
from kiosk.platform.api import PlatformError, RatingLevel

if TYPE_CHECKING:  # the heavy parts load only when a journey runs (kiosk run builds this parser)
    from kiosk.i18n import Translator
    from kiosk.items.hooks import ScreenResult
    from kiosk.journey import JourneyEngine, JourneyFailure, JourneyReport
    from kiosk.services import Services

VIAS = tuple(source.value for source in IdentitySource)  # code, idcard, ssc

OUTPUT_DEVICES = {"a4_printer", "receipt_printer"}  # DeviceClass values = [devices.*] keys


def devices_for(item, via: str) -> set[str]:
    """Only what this journey touches: the identifying device and the item's printers."""
    from kiosk.simulation import IDENTIFYING_DEVICE

    keys = {str(d) for d in item.manifest.devices} & OUTPUT_DEVICES
    if item.manifest.kind == "submit" or "receipt" in {str(o) for o in item.manifest.outputs}:
        keys.add("receipt_printer")  # the receipt with the case number
    return keys | {IDENTIFYING_DEVICE[via]}


async def journey(
    services: Services,
    item_id: str,
    citizen_id: str | None,
    via: str | None,
    *,
    answers: Mapping[str, Any] | None = None,
    commitment_accepted: bool | None = None,
    rating: RatingLevel | None = RatingLevel.VERY_SATISFIED,
    print_receipt: bool = False,
    locale: str = "zh_CN",
    today: dt.date | None = None,
    on_result: Callable[[ScreenResult], Any] | None = None,
    engine: JourneyEngine | None = None,
) -> JourneyReport:
    """One journey on already-open services (the benchmark runs many on the same ones).

    The sandbox citizen identifies through the real driver for `via` (None: no identity,
    for items that do not require one); the fields get `answers` (default: examples for
    today); the commitment is accepted if the item has one, unless `commitment_accepted`
    says otherwise; `on_result` sees the result screen."""
    from kiosk.items.examples import example_answers
    from kiosk.simulation import citizen, identify_citizen

    item = services.items.get(item_id)
    seed = citizen(citizen_id) if citizen_id is not None else None
    identity = None
    if via is not None and seed is not None:
        identity = await identify_citizen(services, seed.citizen_id, via, item_code=item.item_code)
        services.redactor_remember(identity)
    if answers is None:
        answers = example_answers(
            item.manifest,
            today or dt.date.today(),
            phone=seed.phone if seed else "13800138000",
            id_number=seed.id_number if seed else "",
        )
    if commitment_accepted is None:
        commitment_accepted = item.manifest.commitment is not None
    return await (engine or services.engine()).run(
        item,
        identity,
        answers,
        commitment_accepted=commitment_accepted,
        rating=rating,
        print_receipt=print_receipt,
        locale=locale,
        on_result=on_result,
    )


def report_json(report: JourneyReport) -> dict[str, Any]:
    def failure(f: JourneyFailure | None) -> dict[str, Any] | None:
        if f is None:
            return None
        return {"kind": str(f.kind), "message_key": f.message_key, "stage": str(f.stage)}

    return {
        "item": report.item_id,
        "outcome": str(report.outcome),
        "ok": report.ok,
        "identity": report.identity,
        "case_number": report.case_number,
        "local_ref": report.local_ref,
        "documents_printed": report.documents_printed,
        "rated": str(report.rated) if report.rated else None,
        "end_reason": str(report.end_reason) if report.end_reason else None,
        "steps": [
            {"state": str(s.state), "ms": round(s.seconds * 1000, 1), "ok": s.ok}
            for s in report.steps
        ],
        "failure": failure(report.failure),
        "warnings": [failure(w) for w in report.warnings],
    }


def print_report(report: JourneyReport, translator: Translator) -> None:
    print(f"item      {report.item_id}")
    print(f"identity  {report.identity or '-'}")
    for step in report.steps:
        mark = "ok" if step.ok else "FAILED"
        print(f"  {step.state:<11} {step.seconds * 1000:8.1f} ms  {mark}")
    print(f"outcome   {report.outcome}")
    if report.case_number:
        print(f"case      {report.case_number}")
    elif report.local_ref:
        print(f"queued    {report.local_ref} (the case number follows when the outbox drains)")
    if report.documents_printed:
        print(f"printed   {report.documents_printed} document(s)")
    if report.rated:
        print(f"rated     {report.rated}")
    if report.failure is not None:
        key = report.failure.message_key
        print(f"failure   {report.failure.kind}: {translator(key, 'zh_CN')} / {translator(key, 'en')}")
    for warning in report.warnings:
        print(f"warning   {warning.kind}: {translator(warning.message_key, 'en')}")
    print(f"total     {report.seconds * 1000:.1f} ms, session {report.end_reason}")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "journey",
        help="run one item end to end without the UI, on the simulated devices and the sandbox",
    )
    p.add_argument("item", help="item id (kiosk items list)")
    p.add_argument("--citizen", default="c01", help="sandbox citizen id (default c01)")
    p.add_argument("--via", choices=VIAS, default="code", help="how the citizen identifies")
    p.add_argument("--answers", help='JSON object of field answers, e.g. \'{"year": 2025}\'')
    p.add_argument(
        "--rating", choices=[level.value for level in RatingLevel], default="very_satisfied"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_journey)


def cmd_journey(args: argparse.Namespace) -> int:
    from kiosk.cli import _load_config
    from kiosk.items.examples import NoExample
    from kiosk.items.registry import ItemRegistry, UnknownItem
    from kiosk.runtime import build
    from kiosk.services import open_services
    from kiosk.simulation import SimulationError

    config = _load_config(args)
    runtime = build(config)  # logging with redaction, as on a kiosk
    try:
        answers = json.loads(args.answers) if args.answers else None
    except ValueError as exc:
        print(f"kiosk journey: --answers is not a JSON object: {exc}", file=sys.stderr)
        return 2
    try:
        item = ItemRegistry.load().get(args.item)
    except UnknownItem:
        print(f"kiosk journey: no item {args.item!r} (see: kiosk items list)", file=sys.stderr)
        return 2

    async def go() -> JourneyReport:
        started = time.perf_counter()
        async with open_services(config, devices=devices_for(item, args.via)) as services:
            services.redactor = runtime.redactor
            report = await journey(
                services, item.id, args.citizen, args.via,
                answers=answers, rating=RatingLevel(args.rating),
            )
        print(f"(services up and down in {time.perf_counter() - started:.2f} s)", file=sys.stderr)
        return report

    try:
        report = asyncio.run(go())
    except (SimulationError, NoExample, PlatformError) as exc:
        print(f"kiosk journey: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report_json(report), ensure_ascii=False))
    else:
        print_report(report, runtime.translator)
    return 0 if report.ok else 1
