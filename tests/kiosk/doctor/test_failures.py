"""Each failure made for real on the machine, and the fix the doctor gives for it."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from drivers.sim.ippeve import IppEvePrinter
from kiosk.doctor import (
    Status,
    devices,
    disk,
    enrolment,
    fonts,
    outbox,
    pcsc,
    permissions,
    printers,
    run_checks,
    speech,
)
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.fixes import cups_queue, fix_for
from kiosk.doctor.model import MB
from tests.kiosk.doctor.conftest import ME, config, enrol, options, write_config



async def only(kiosk_dir, *groups, **overrides):
    report = await run_checks(config(kiosk_dir), options(kiosk_dir, **overrides), groups=groups)
    return report.by_name()


# -- permissions ----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_open_key_dir_and_key_files(kiosk_dir, fleet_url):
    state = kiosk_dir / "state"
    enrol(state, fleet_url)
    keys = kiosk_dir / "data" / "keys"
    os.chmod(keys, 0o755)
    os.chmod(keys / "0123456789abcdef.key", 0o644)
    os.chmod(state / "device.key", 0o640)
    os.chmod(state / "enrolment.json", 0o666)
    results = await only(kiosk_dir, permissions)
    keys_result = results["permissions.outbox_keys"]
    assert keys_result.status is Status.FAIL
    assert "mode 0755, not 0700" in keys_result.found
    assert f"chmod 0700 {keys}" in keys_result.fix
    assert f"chmod 0600 {keys / '0123456789abcdef.key'}" in keys_result.fix
    fleet = results["permissions.fleet_state"]
    assert fleet.status is Status.FAIL
    assert "device.key has mode 0640" in fleet.found
    assert "enrolment.json has mode 0666, not 0600" in fleet.found
    assert f"chmod 0600 {state / 'device.key'}" in fleet.fix
    os.chmod(keys, 0o700)
    os.chmod(keys / "0123456789abcdef.key", 0o600)
    os.chmod(state / "device.key", 0o600)
    os.chmod(state / "enrolment.json", 0o600)
    results = await only(kiosk_dir, permissions)
    assert results["permissions.outbox_keys"].status is Status.OK
    assert results["permissions.fleet_state"].status is Status.OK


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
@pytest.mark.asyncio
async def test_a_file_owned_by_someone_else(kiosk_dir):
    stray = kiosk_dir / "data" / "outbox.sqlite3-wal"
    stray.write_bytes(b"")
    os.chown(stray, 65534, 65534)  # nobody: what a `sudo kiosk ...` run leaves is root's
    results = await only(kiosk_dir, permissions)
    result = results["permissions.data_files"]
    assert result.status is Status.FAIL and str(stray) in result.found
    assert result.fix.startswith(f"chown -R root:root {kiosk_dir / 'data'}")


@pytest.mark.asyncio
async def test_unknown_users_warn_and_a_missing_data_dir_fails(kiosk_dir):
    shutil.rmtree(kiosk_dir / "data")
    results = await only(kiosk_dir, permissions, user="no-such-kiosk-user")
    assert results["permissions.user.no-such-kiosk-user"].status is Status.WARN
    missing = results["permissions.data_dir"]
    assert missing.status is Status.FAIL
    assert missing.fix.startswith("install -d -o no-such-kiosk-user")


# -- fonts ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_missing_font(kiosk_dir):
    results = await only(kiosk_dir, fonts, fonts=("/nonexistent/fonts/wqy-microhei.ttc",))
    result = results["fonts.cjk"]
    assert result.status is Status.FAIL and "/nonexistent/fonts/wqy-microhei.ttc" in result.found
    assert "apt-get install --no-install-recommends fonts-wqy-microhei" in result.fix
    assert "[display] font" in result.fix


@pytest.mark.asyncio
async def test_font_unknown_to_fontconfig(kiosk_dir, tmp_path):
    from screens.boot import CJK_FONTS

    copy = tmp_path / "private-font.ttc"  # a real font file fontconfig has never indexed
    shutil.copy(next(p for p in CJK_FONTS if Path(p).is_file()), copy)
    results = await only(kiosk_dir, fonts, fonts=(str(copy),))
    assert results["fonts.cjk"].status is Status.OK
    assert results["fonts.fontconfig"].status is Status.WARN
    assert "fc-cache -f" in results["fonts.fontconfig"].fix


# -- enrolment ------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_expired_certificate(kiosk_dir, fleet_url):
    enrol(kiosk_dir / "state", fleet_url, expired_days_ago=3)
    result = (await only(kiosk_dir, enrolment))["enrolment.certificate"]
    assert result.status is Status.FAIL and "EXPIRED 3 day(s) ago" in result.found
    assert f"kiosk provision --server {fleet_url} --token <token>" in result.fix


@pytest.mark.asyncio
async def test_certificate_expiring_soon_warns(kiosk_dir, fleet_url):
    enrol(kiosk_dir / "state", fleet_url, valid_days=10.5)
    result = (await only(kiosk_dir, enrolment))["enrolment.certificate"]
    assert result.status is Status.WARN and "expires in 10 day(s)" in result.found


@pytest.mark.asyncio
async def test_certificate_for_another_key_or_ca(kiosk_dir, fleet_url):
    enrol(kiosk_dir / "state", fleet_url, other_key=True, other_ca=True)
    results = await only(kiosk_dir, enrolment)
    assert results["enrolment.key"].status is Status.FAIL
    assert "another key" in results["enrolment.key"].found
    assert results["enrolment.ca"].status is Status.FAIL


@pytest.mark.asyncio
async def test_not_enrolled_and_server_unreachable(kiosk_dir, fleet_url):
    result = (await only(kiosk_dir, enrolment))["enrolment.state"]
    assert result.status is Status.FAIL and "not enrolled" in result.found
    assert "kiosk provision --server" in result.fix
    from drivers.sim.ippeve import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    enrol(kiosk_dir / "state", dead)
    result = (await only(kiosk_dir, enrolment))["enrolment.server"]
    assert result.status is Status.FAIL and f"GET {dead}/healthz failed" in result.found
    assert f"curl -sS {dead}/healthz" in result.fix


# -- printers and devices -------------------------------------------------------------------
@pytest.mark.asyncio
async def test_stopped_printer_simulator(kiosk_dir):
    sim = IppEvePrinter()
    await sim.start()
    uri = sim.uri
    await sim.stop()  # the printer is switched off
    write_config(kiosk_dir, f'[devices.a4_printer]\nuri = "{uri}"\ntimeout_s = 3\n')
    results = await only(kiosk_dir, devices, printers)
    for name in ("devices.a4_printer", "printers.a4"):
        result = results[name]
        assert result.status is Status.FAIL, result
        assert "printer.offline" in result.found or "cannot reach" in result.found
        assert f"check power and cable of the A4 printer {uri}" in result.fix


@pytest.mark.asyncio
async def test_printer_out_of_paper_is_for_branch_staff(kiosk_dir):
    async with IppEvePrinter() as sim:
        await sim.paper_out()
        write_config(kiosk_dir, f'[devices.a4_printer]\nuri = "{sim.uri}"\n')
        results = await only(kiosk_dir, printers)
    result = results["printers.a4"]
    assert result.status is Status.FAIL and "paper out" in result.found
    assert result.fix.startswith("branch staff: load paper")


def test_cups_queue_names():
    assert cups_queue("ipp://localhost:631/printers/A4_Hall") == "A4_Hall"
    assert cups_queue("ipps://cups.local/classes/a4") == "a4"
    assert cups_queue("ipp://printer.local/ipp/print") is None
    assert cups_queue("not a uri") is None


def test_a_paused_cups_queue_is_fixed_at_cups(kiosk_dir):
    write_config(kiosk_dir, '[devices.a4_printer]\nuri = "ipp://localhost:631/printers/A4"\n')
    ctx = DoctorContext(config(kiosk_dir), options(kiosk_dir))
    fix = fix_for(ctx, "a4_printer", "printer.paused", "maintenance", "offline")
    assert fix.startswith("cupsenable A4 && cupsaccept A4")
    fix = fix_for(ctx, "a4_printer", "printer.offline", "maintenance", "offline")
    assert "check power and cable of the A4 printer ipp://localhost:631/printers/A4" in fix


@pytest.mark.asyncio
async def test_device_not_plugged_in(kiosk_dir):
    write_config(kiosk_dir, '[devices.id_card]\nport = "/dev/ttyKIOSK-nonexistent"\n'
                 "[devices.ssc]\nenabled = false\n[devices.qr]\nenabled = false\n"
                 "[devices.receipt_printer]\nenabled = false\n"
                 "[devices.a4_printer]\nenabled = false\n")
    results = await only(kiosk_dir, devices, pcsc)
    result = results["devices.id_card"]
    assert result.status is Status.FAIL
    assert "/dev/ttyKIOSK-nonexistent" in result.fix and "udev" in result.fix
    assert results["devices.a4_printer"].found == "disabled in the config"
    assert results["pcscd.service"].status is Status.OK  # not needed without the reader


@pytest.mark.asyncio
async def test_pcsc_reader_not_there(kiosk_dir):
    write_config(kiosk_dir, '[devices.ssc]\nreader = "NoSuchReader"\n')
    results = await only(kiosk_dir, pcsc)
    bad = [r for r in results.values() if r.status is Status.FAIL]
    assert len(bad) == 1  # no pcscd at all, or one without this reader: either is a failure
    assert "pcscd.socket" in bad[0].fix or "[devices.ssc] reader" in bad[0].fix


# -- disk -----------------------------------------------------------------------------------
def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.mark.asyncio
async def test_disk_nearly_full(kiosk_dir):
    tiny = kiosk_dir / "tiny"
    if _mount_tmpfs(tiny, "4m"):  # a real 4 MB file system for the data dir
        try:
            write_config(kiosk_dir, "")
            (kiosk_dir / "kiosk.toml").write_text(f'[paths]\ndata_dir = "{tiny}"\n', "utf-8")
            result = (await only(kiosk_dir, disk))["disk.data"]
        finally:
            subprocess.run(["umount", str(tiny)], check=True)
        assert result.status is Status.FAIL and "below 200.0 MB" in result.found
    else:  # no mount here: the same judgement through the threshold
        total = shutil.disk_usage(kiosk_dir).free
        result = (await only(kiosk_dir, disk, disk_fail_bytes=total * 2))["disk.data"]
        assert result.status is Status.FAIL
    assert "journalctl --vacuum-size=200M" in result.fix
    result = (await only(kiosk_dir, disk, disk_warn_bytes=1 << 60, disk_fail_bytes=MB))
    assert result["disk.data"].status is Status.WARN


# -- outbox and speech ----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_old_submission_waiting_warns_and_the_doctor_creates_no_file(kiosk_dir):
    from kiosk.outbox import Keystore, Outbox
    from tests.kiosk.outbox import make_application

    data = kiosk_dir / "data"
    box = await Outbox.open(data / "outbox.sqlite3", Keystore(data / "keys"),
                            clock=lambda: time.time() - 7200)
    try:
        await box.put(make_application(1))
        await box.put(make_application(2))
        results = await only(kiosk_dir, outbox)  # beside the running writer: its WAL is read
    finally:
        await box.close()
    result = results["outbox.pending"]
    assert result.status is Status.WARN and result.found.startswith("2 waiting, the oldest for 2")
    assert "kiosk outbox drain" in result.fix
    # The app stopped: its -wal/-shm are gone, and the doctor (root) must not create them,
    # or the app (user kiosk) could not open its database again.
    before = sorted(p.name for p in data.iterdir())
    assert "outbox.sqlite3-wal" not in before
    results = await only(kiosk_dir, outbox)
    assert results["outbox.pending"].found.startswith("2 waiting")
    assert sorted(p.name for p in data.iterdir()) == before


@pytest.mark.asyncio
async def test_unreadable_outbox_fails(kiosk_dir):
    (kiosk_dir / "data" / "outbox.sqlite3").write_bytes(b"not a database" * 100)
    result = (await only(kiosk_dir, outbox))["outbox.pending"]
    assert result.status is Status.FAIL and "cannot read" in result.found


@pytest.mark.asyncio
async def test_unknown_voice(kiosk_dir):
    write_config(kiosk_dir, '[speech]\nvoice_zh = "nosuchvoice"\n')
    results = await only(kiosk_dir, speech)
    assert results["speech.voice.nosuchvoice"].status is Status.FAIL
    assert "espeak-ng --voices" in results["speech.voice.nosuchvoice"].fix
    assert results["speech.voice.en"].status is Status.OK


# -- the runner -----------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_hanging_group_fails_in_time_and_a_crash_is_reported(kiosk_dir):
    async def hang(ctx):
        await asyncio.sleep(60)

    async def crash(ctx):
        raise RuntimeError("boom")

    groups = (SimpleNamespace(GROUP="slow", run=hang), SimpleNamespace(GROUP="broken", run=crash))
    started = time.perf_counter()
    report = await run_checks(config(kiosk_dir), options(kiosk_dir, group_timeout_s=0.3),
                              groups=groups)
    assert time.perf_counter() - started < 2
    results = report.by_name()
    assert results["slow"].status is Status.FAIL
    assert "no answer within 0.3 s" in results["slow"].found
    assert "RuntimeError: boom" in results["broken"].found
    assert report.exit_code == 1


# -- the app is running ---------------------------------------------------------------------
@pytest.mark.asyncio
async def test_devices_are_left_alone_while_the_app_holds_them(kiosk_dir):
    from kiosk.doctor.context import flock_holder
    from kiosk.outbox import Keystore, Outbox

    data = kiosk_dir / "data"
    lock = data / "outbox.sqlite3.lock"
    assert flock_holder(lock) is None
    box = await Outbox.open(data / "outbox.sqlite3", Keystore(data / "keys"))  # as the app does
    try:
        assert flock_holder(lock) == os.getpid()
        started = time.perf_counter()
        results = await only(kiosk_dir, devices, printers)
        assert time.perf_counter() - started < 0.5  # no simulator was started
    finally:
        await box.close()
    assert flock_holder(lock) is None
    for group in ("devices", "printers"):
        assert results[group].status is Status.WARN
        assert f"pid {os.getpid()}" in results[group].found
        assert "systemctl stop kiosk-app.service" in results[group].fix
    assert not any(name.startswith("devices.") and r.status is not Status.OK
                   for name, r in results.items())


@pytest.mark.asyncio
async def test_log_file_folder_missing(kiosk_dir):
    write_config(kiosk_dir, '[logging]\nfile = "logs/kiosk.log"\n')
    result = (await only(kiosk_dir, permissions))["permissions.log_file"]
    assert result.status is Status.FAIL
    assert result.fix == f"install -d -o {ME} -g {ME} -m 0750 {kiosk_dir / 'logs'}"
    (kiosk_dir / "logs").mkdir()
    result = (await only(kiosk_dir, permissions))["permissions.log_file"]
    assert result.status is Status.OK
