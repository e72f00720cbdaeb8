"""`kiosk outbox status|drain` (parser in kiosk/cli.py): what is waiting to be sent, and
sending it now (ops, tests).

`drain` delivers every queued record through the configured platform and waits until none
is left (or the timeout passes). Records refused for good stay failed_permanently.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

PENDING = ("queued", "sending")  # SubmissionState values


def cmd_outbox(args: argparse.Namespace) -> int:
    from kiosk.cli import _load_config
    from kiosk.outbox.store import SubmissionState
    from kiosk.runtime import build
    from kiosk.services import open_services

    pending_states = [SubmissionState(s) for s in PENDING]

    config = _load_config(args)
    build(config)  # redacted logging

    async def go() -> int:
        async with open_services(config, devices=set(), run_sender=False) as services:
            outbox, sender = services.outbox, services.sender
            if args.action == "drain":
                deadline = time.monotonic() + args.timeout
                while True:
                    pending = await outbox.records(pending_states)
                    if not pending or time.monotonic() > deadline:
                        break
                    for record in pending:
                        try:
                            await sender.send_now(record.local_ref, min(10.0, args.timeout))
                        except Exception as exc:  # refused for good: stays failed, go on
                            print(f"{record.local_ref}: {type(exc).__name__}")
                    await asyncio.sleep(0.1)
            counts = {str(state): n for state, n in (await outbox.state_counts()).items()}
            print(json.dumps(counts))
            left = sum(counts.get(s, 0) for s in PENDING)
            return 1 if args.action == "drain" and left else 0

    return asyncio.run(go())
