"""The kiosk's live parts, composed from its config: the platform client (with the sandbox
started in-process when `[platform] url = "sim"`), the outbox and its sender, the devices,
the item registry, and the journey engine's outputs.

`kiosk journey`, the demo, the end-to-end tests and the journey benchmark all open the
same `Services`, so what they exercise is the wiring a kiosk runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from drivers.base import DeviceClass, DeviceState, Lifecycle
from drivers.registry import DeviceSet
from kiosk.config import KioskConfig
from kiosk.documents import Receipt, ReceiptLine, render_receipt
from kiosk.i18n import Translator
from kiosk.identity.model import Identity
from kiosk.items.registry import ItemRegistry
from kiosk.journey import JourneyEngine, JourneyLimits, OutboxQueue, Outputs, ReceiptContent
from kiosk.outbox import Keystore, Outbox, OutboxSender
from kiosk.platform.client import HttpPlatformClient
from kiosk.platform.sandbox.embedded import EmbeddedSandbox, embedded_sandbox
from kiosk.privacy import Redactor
from kiosk.session import SessionMachine

_log = logging.getLogger(__name__)
LOCAL_REF_PREFIX = "Q-"  # the outbox's local references; case numbers are all digits


@dataclass
class ReceiptRendering:
    """Turns the journey's receipt content into the printed image (kiosk/documents)."""

    kiosk_id: str
    translator: Translator

    def render_receipt(self, content: ReceiptContent):
        t = self.translator
        reference = content.reference or ""
        queued = reference.startswith(LOCAL_REF_PREFIX)
        label_key = "receipt.local_reference" if queued else "receipt.case_number"
        receipt = Receipt(
            title=content.title,
            reference_label=f"{t(label_key, 'zh_CN')} {t(label_key, 'en')}",
            reference=reference or "-",
            kiosk_id=self.kiosk_id,
            issued_at=dt.datetime.now(),
            lines=[ReceiptLine(line.label, line.value) for line in content.lines],
            qr_payload=reference,
            footer=[content.note] if content.note else [],
        )
        return render_receipt(receipt)


@dataclass
class Services:
    config: KioskConfig
    platform: HttpPlatformClient
    outbox: Outbox
    sender: OutboxSender
    devices: DeviceSet
    items: ItemRegistry
    translator: Translator
    sandbox: EmbeddedSandbox | None = None
    redactor: Redactor | None = None
    _renderer: ReceiptRendering | None = field(default=None, repr=False)

    def redactor_remember(self, identity: Identity) -> None:
        """The session's exact values are masked in every log line until the wipe."""
        if self.redactor is not None:
            self.redactor.remember(identity.name, kind="name")
            self.redactor.remember(*identity.secrets()[1:])

    def _online(self, key: str):
        device = self.devices.devices.get(key)
        if device is None:
            return None
        status = device.status
        if status.lifecycle is Lifecycle.ENABLED and status.state is DeviceState.ONLINE:
            return device
        return None

    def outputs(self) -> Outputs:
        """The output devices usable now (a printer that is down is simply absent)."""
        if self._renderer is None:
            self._renderer = ReceiptRendering(self.config.kiosk.id, self.translator)
        return Outputs(
            a4=self._online("a4_printer"),
            receipt=self._online("receipt_printer"),
            receipt_renderer=self._renderer,
        )

    def devices_up(self) -> frozenset[DeviceClass]:
        return frozenset(self.devices.available())

    def engine(self, machine: SessionMachine | None = None) -> JourneyEngine:
        limits = JourneyLimits(
            platform_s=self.config.platform.timeout_s * 2,  # a call plus one retry
            send_s=self.config.outbox.send_now_timeout_s,
        )
        engine = JourneyEngine(
            self.platform,
            OutboxQueue(self.outbox, self.sender),
            self.outputs(),
            machine=machine,
            limits=limits,
        )
        if self.redactor is not None:
            engine.machine.on_wipe(self.redactor.forget_all)
        return engine


@contextlib.asynccontextmanager
async def open_services(
    config: KioskConfig,
    *,
    devices: set[str] | None = None,
    run_sender: bool = True,
) -> AsyncIterator[Services]:
    """Everything started, and stopped again in reverse order. `devices` limits which
    `[devices.*]` are started (None: all enabled)."""
    data_dir = config.resolve(config.paths.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        sandbox = None
        url = config.platform.url
        if url == "sim":
            sandbox = await stack.enter_async_context(
                embedded_sandbox(data_dir / "sandbox", client_secret=config.platform.client_secret)
            )
            url = sandbox.url
        platform = HttpPlatformClient(
            url, device_id=config.kiosk.id, client_secret=config.platform.client_secret
        )
        stack.push_async_callback(platform.close)
        outbox = await Outbox.open(
            data_dir / "outbox.sqlite3",
            Keystore(data_dir / "keys"),
            max_bytes=config.outbox.max_mb * 1024 * 1024,
        )
        stack.push_async_callback(outbox.close)
        sender = OutboxSender(outbox, platform.submit)
        if run_sender:
            task = asyncio.create_task(sender.run(), name="outbox-sender")

            async def stop_sender() -> None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

            stack.push_async_callback(stop_sender)
        device_set = await stack.enter_async_context(DeviceSet(config.devices, only=devices))
        yield Services(
            config=config,
            platform=platform,
            outbox=outbox,
            sender=sender,
            devices=device_set,
            items=ItemRegistry.load(),
            translator=Translator(config.kiosk.locale),
            sandbox=sandbox,
        )
