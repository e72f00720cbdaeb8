"""The kiosk's devices, built from the `[devices.*]` config through each driver's
`create(section, stack=, name=)` factory, started together and closed together.

A device that fails to start does not stop the kiosk: it stays in the set with its status
(no_device, offline...) so the UI can hide the items that need it and say why, and ops see
it. Simulators configured as `sim` are started by the factories and stopped with the set.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass

from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceState,
    DeviceStatus,
    Lifecycle,
    SelfTestResult,
)
from kiosk.config import DevicesSection

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriverEntry:
    key: str  # the [devices.<key>] section
    module: str  # the driver package exposing create()
    device_class: DeviceClass


DRIVERS: tuple[DriverEntry, ...] = (
    DriverEntry("id_card", "drivers.idcard", DeviceClass.ID_CARD_READER),
    DriverEntry("ssc", "drivers.ssc", DeviceClass.SSC_READER),
    DriverEntry("qr", "drivers.qr", DeviceClass.QR_SCANNER),
    DriverEntry("receipt_printer", "drivers.receipt", DeviceClass.RECEIPT_PRINTER),
    DriverEntry("a4_printer", "drivers.a4", DeviceClass.A4_PRINTER),
)


class DeviceSet:
    """`async with DeviceSet(config.devices) as devices:` — every enabled device started."""

    def __init__(self, config: DevicesSection, *, only: set[str] | None = None) -> None:
        self._config = config
        self._only = only
        self._stack = contextlib.AsyncExitStack()
        self.devices: dict[str, Device] = {}
        self.failures: dict[str, str] = {}  # devices that could not even be created

    async def __aenter__(self) -> DeviceSet:
        await self._stack.__aenter__()
        entries = [
            e
            for e in DRIVERS
            if getattr(self._config, e.key).enabled and (self._only is None or e.key in self._only)
        ]
        await asyncio.gather(*(self._start(entry) for entry in entries))
        return self

    async def _start(self, entry: DriverEntry) -> None:
        section = getattr(self._config, entry.key)
        try:
            module = importlib.import_module(entry.module)
            device = await module.create(section, stack=self._stack, name=entry.key)
        except Exception as exc:  # a broken simulator or driver must not stop the kiosk
            _log.error("device %s could not be created: %s", entry.key, exc)
            self.failures[entry.key] = f"{type(exc).__name__}: {exc}"
            return
        self.devices[entry.key] = device
        self._stack.push_async_callback(device.close)
        try:
            await device.start()
        except DeviceFailure as failure:
            _log.warning("device %s did not start: %s (%s)", entry.key, failure.code, failure)

    async def __aexit__(self, *exc_info) -> None:
        await self._stack.__aexit__(*exc_info)

    def statuses(self) -> list[DeviceStatus]:
        return [device.status for device in self.devices.values()]

    def available(self) -> set[DeviceClass]:
        """Device classes that are enabled and online now."""
        return {
            d.device_class
            for d in self.devices.values()
            if d.status.lifecycle is Lifecycle.ENABLED and d.status.state is DeviceState.ONLINE
        }

    async def selftest(self) -> list[SelfTestResult]:
        return list(await asyncio.gather(*(d.selftest() for d in self.devices.values())))
