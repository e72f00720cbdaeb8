"""The whole device set from config, every device on its simulator, as `kiosk demo` runs it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.base import DeviceClass, DeviceState, Lifecycle
from drivers.registry import DeviceSet
from kiosk.config import KioskConfig

KIOSK = Path(sys.executable).with_name("kiosk")


@pytest.mark.asyncio
async def test_every_simulated_device_starts_online_and_passes_selftest():
    async with DeviceSet(KioskConfig().devices) as devices:
        assert devices.failures == {}
        assert {s.name for s in devices.statuses()} == {
            "id_card", "ssc", "qr", "receipt_printer", "a4_printer"
        }
        for status in devices.statuses():
            assert status.lifecycle is Lifecycle.ENABLED, status
            assert status.state is DeviceState.ONLINE, status
        assert devices.available() == set(DeviceClass)
        results = await devices.selftest()
        assert all(r.ok for r in results), [r.to_json() for r in results if not r.ok]


@pytest.mark.asyncio
async def test_a_broken_device_does_not_stop_the_others(tmp_path):
    config = KioskConfig.model_validate(
        {
            "devices": {
                "id_card": {"port": str(tmp_path / "no-such-tty")},
                "ssc": {"enabled": False},
                "a4_printer": {"enabled": False},
            }
        }
    )
    async with DeviceSet(config.devices) as devices:
        by_name = {s.name: s for s in devices.statuses()}
        assert set(by_name) == {"id_card", "qr", "receipt_printer"}
        assert by_name["id_card"].state is DeviceState.NO_DEVICE
        assert by_name["id_card"].last_error is not None
        assert by_name["qr"].state is DeviceState.ONLINE
        assert DeviceClass.ID_CARD_READER not in devices.available()
        results = {r.device: r for r in await devices.selftest()}
        assert not results["id_card"].ok and results["qr"].ok


def test_kiosk_devices_selftest_prints_json(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text("[devices.ssc]\nenabled = false\n[devices.a4_printer]\nenabled = false\n")
    result = subprocess.run(
        [KIOSK, "--config", str(config), "devices", "selftest"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {d["device"] for d in report["devices"]} == {"id_card", "qr", "receipt_printer"}
    assert all(d["status"]["state"] == "online" for d in report["devices"])


def test_kiosk_devices_lists_status_and_exits_nonzero_on_failed_selftest(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[devices.id_card]\nport = "{tmp_path}/missing"\n'
        "[devices.ssc]\nenabled = false\n[devices.a4_printer]\nenabled = false\n"
        "[devices.qr]\nenabled = false\n[devices.receipt_printer]\nenabled = false\n"
    )
    listing = subprocess.run(
        [KIOSK, "--config", str(config), "devices"], capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0
    assert "id_card" in listing.stdout and "no_device" in listing.stdout
    selftest = subprocess.run(
        [KIOSK, "--config", str(config), "devices", "selftest"],
        capture_output=True, text=True, timeout=60,
    )
    assert selftest.returncode == 1
    assert json.loads(selftest.stdout)["ok"] is False
