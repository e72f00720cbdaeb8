"""A simulated kiosk for the dashboard tests, speaking to the fleet server as a real one does:
enrolled with `provisioning.device.enrol` (key pair, CSR, one-time token) and sending
heartbeats and command results signed with its own key (`DeviceIdentity.sign`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp

from fleet.wire import (
    App,
    Cabinet,
    CommandResult,
    Counters,
    DeviceReport,
    Disk,
    Heartbeat,
    HeartbeatAck,
    ItemUsage,
    Versions,
)
from provisioning.device import DeviceIdentity, enrol


def printer(paper: str = "full") -> DeviceReport:
    return DeviceReport(name="receipt", device_class="receipt_printer", lifecycle="enabled",
                        state="online", supplies={"paper": paper})


def id_reader(fault: bool = False) -> DeviceReport:
    if not fault:
        return DeviceReport(name="idcard", device_class="id_card_reader", lifecycle="enabled",
                            state="online")
    return DeviceReport.model_validate({
        "name": "idcard", "device_class": "id_card_reader", "lifecycle": "enabled",
        "state": "hardware_error",
        "last_error": {"kind": "hardware", "action": "maintenance", "code": "E-READER-07",
                       "vendor_text": "读卡模块无响应 / reader module not responding",
                       "at": time.time()}})


class SignedKiosk:
    def __init__(self, identity: DeviceIdentity, url: str, http: aiohttp.ClientSession) -> None:
        self.identity = identity
        self.url = url
        self.http = http
        self.counter = 0
        self.seq = 0
        self.journeys = 0

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @classmethod
    async def enrol(cls, url: str, token: str, state_dir: Path,
                    http: aiohttp.ClientSession) -> SignedKiosk:
        identity = await enrol(url, token, state_dir, app_version="1.4.2")
        return cls(identity, url, http)

    async def _post(self, path: str, body: bytes) -> tuple[int, Any]:
        self.counter += 1
        headers = self.identity.sign("POST", path, body, self.counter, time.time())
        async with self.http.post(self.url + path, data=body, headers={
                **headers, "Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json()

    async def heartbeat(self, devices: list[DeviceReport] | None = None,
                        usage: list[ItemUsage] | None = None, screen: str = "attract",
                        reason: str = "") -> HeartbeatAck:
        self.seq += 1
        done = sum(u.completed for u in usage or [])
        self.journeys += done
        hb = Heartbeat(
            seq=self.seq, sent_at=time.time(), interval_s=30,
            app=App.model_validate({"state": "running", "screen": screen,
                                    "out_of_service_reason": reason, "uptime_s": 3600.0}),
            devices=devices if devices is not None else [printer(), id_reader()],
            counters=Counters(journeys_started=self.journeys, journeys_completed=self.journeys),
            usage=usage or [],
            versions=Versions(app="1.4.2", catalogue="2026.11.3", config="cfg-7"),
            disk=Disk(path="/var/lib/kiosk", total_bytes=64 * 10**9, free_bytes=41 * 10**9),
            cabinet=Cabinet(door_open=False, tamper=False), clock_synced=True)
        status, body = await self._post("/api/v1/device/heartbeat",
                                        hb.model_dump_json().encode())
        if status != 200:
            raise AssertionError(f"heartbeat refused: {status} {body}")
        return HeartbeatAck.model_validate(body)

    async def heartbeat_status(self) -> tuple[int, Any]:
        """A heartbeat whose refusal is expected (revoked kiosk): the raw status and body."""
        self.seq += 1
        hb = Heartbeat(seq=self.seq, sent_at=time.time(), app=App(state="running"),
                       versions=Versions(app="1.4.2"))
        return await self._post("/api/v1/device/heartbeat", hb.model_dump_json().encode())

    async def result(self, command_id: str, status: str = "done", detail: str = "",
                     data: dict[str, Any] | None = None) -> None:
        body = CommandResult.model_validate({
            "command_id": command_id, "status": status, "detail": detail, "data": data or {},
            "finished_at": time.time()})
        code, answer = await self._post(f"/api/v1/device/commands/{command_id}/result",
                                        body.model_dump_json().encode())
        if code != 200:
            raise AssertionError(f"result refused: {code} {answer}")
