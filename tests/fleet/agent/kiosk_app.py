"""A headless kiosk app for the agent's process tests: the real Services (simulated devices,
outbox), Telemetry and HealthServer, with a small actions object instead of the touch UI.
Run: python tests/fleet/agent/kiosk_app.py DATA_DIR SOCKET_PATH [--queue-one]

--queue-one: on its first start the app puts one citizen's application in the outbox (the
sender does not run, so it stays queued): the fault test checks it survives a SIGKILL."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from kiosk.config import parse  # noqa: E402
from kiosk.health import HealthServer, ServicesHealthSource  # noqa: E402
from kiosk.services import open_services  # noqa: E402
from kiosk.telemetry import Telemetry  # noqa: E402
from tests.fleet.agent.conftest import RecordingActions  # noqa: E402
from tests.kiosk.outbox import make_application  # noqa: E402

CONFIG = """
[paths]
data_dir = "{data}"
[devices.id_card]
enabled = false
[devices.ssc]
enabled = false
[devices.a4_printer]
enabled = false
"""


async def main(data: Path, socket_path: Path, queue_one: bool) -> None:
    started = time.time()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    config = parse(CONFIG.format(data=data))
    telemetry = Telemetry(data / "telemetry.sqlite3")
    async with open_services(config, devices={"receipt_printer", "qr"}, run_sender=False) as services:
        if queue_one and not (data / "queued-once").exists():
            await services.outbox.put(make_application())
            (data / "queued-once").touch()
        source = ServicesHealthSource(services, telemetry, RecordingActions(), started)
        async with HealthServer(source, socket_path):
            telemetry.journey_started("tax_certificate")
            await stop.wait()
    telemetry.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), "--queue-one" in sys.argv[3:]))
