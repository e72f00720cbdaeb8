"""The whole doctor against a kiosk on the simulated devices: everything that can be made
right in a test is right, and the one thing the test cannot set, the machine's clock
synchronisation, is reported as the kernel really has it."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from kiosk.doctor import Status, main, run_checks
from kiosk.doctor.clock import read_clock
from kiosk.doctor.runner import GROUPS
from tests.kiosk.doctor.conftest import ME, config, enrol, options


# Warn-only by design on a test machine: no display, and usually no sound card; a build
# machine without fontconfig's tools cannot say what fontconfig picks.
MAY_WARN = {"display.session", "speech.player"} | (
    set() if shutil.which("fc-match") else {"fonts.fontconfig"})


@pytest.mark.asyncio
async def test_everything_ok_on_the_simulators(kiosk_dir, fleet_url):
    enrol(kiosk_dir / "state", fleet_url)
    started = time.perf_counter()
    report = await run_checks(config(kiosk_dir), options(kiosk_dir))
    elapsed = time.perf_counter() - started
    results = report.by_name()
    assert elapsed < 5.0, f"doctor took {elapsed:.1f} s"
    assert {name.split(".")[0] for name in results} >= {g.GROUP for g in GROUPS}
    for name in ("devices.id_card", "devices.ssc", "devices.qr", "devices.receipt_printer",
                 "devices.a4_printer", "pcscd.service", "pcscd.reader", "fonts.cjk",
                 "disk.data", "permissions.data_dir", "permissions.outbox_keys",
                 "permissions.fleet_state", "enrolment.state", "enrolment.certificate",
                 "enrolment.key", "enrolment.ca", "enrolment.server", "printers.a4",
                 "printers.receipt", "outbox.pending", "speech.voice.cmn", "speech.voice.en"):
        assert results[name].status is Status.OK, results[name]
    clock_expected = Status.OK if read_clock().synchronised else Status.FAIL
    assert results["clock.sync"].status in (
        {clock_expected, Status.WARN} if clock_expected is Status.OK else {Status.FAIL})
    others = [r for r in report.results if r.status is not Status.OK
              and r.name not in MAY_WARN and r.name != "clock.sync"]
    assert others == []
    for r in report.results:
        assert r.status is Status.OK or r.fix, r  # every problem comes with its fix
    assert report.exit_code == (0 if clock_expected is Status.OK else 1)


@pytest.mark.asyncio
async def test_command_line_json(kiosk_dir, fleet_url, capsys):
    enrol(kiosk_dir / "state", fleet_url)
    argv = ["--config", str(kiosk_dir / "kiosk.toml"), "--json", "--user", ME,
            "--agent-user", ME, "--state-dir", str(kiosk_dir / "state"),
            "--skip", "devices", "--skip", "printers", "--skip", "pcscd"]
    # main() runs its own event loop: give it a thread of its own.
    import asyncio

    code = await asyncio.to_thread(main, argv)
    report = json.loads(capsys.readouterr().out)
    names = {c["name"] for c in report["checks"]}
    assert "config.load" in names and "enrolment.server" in names
    assert not any(n.startswith(("devices.", "printers.", "pcscd.")) for n in names)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert code == (1 if failed else 0)
    assert report["ok"] is (not failed)
    assert all(c["fix"] for c in failed)


def test_a_broken_config_exits_2_with_its_line(tmp_path, capsys):
    (tmp_path / "kiosk.toml").write_text("[session]\nidle_timeout_s = -1\n", "utf-8")
    assert main(["--config", str(tmp_path / "kiosk.toml")]) == 2
    out = capsys.readouterr().out
    assert "FAIL  config.load" in out and "kiosk.toml:2" in out and "kiosk config check" in out
