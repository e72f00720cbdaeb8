"""The privacy suite (issue 7): 100 journeys by the sandbox's seeded citizens, then a search
of everything the kiosk side left on disk, and of the process's memory, for their data.

The run, on the real stack:
- `test_ui_journeys` (a forked UI test): 3 visits through the real Kivy app, offscreen,
  driven by touch, with 长辈模式 speech on, a screenshot of every page, logging as the
  runtime sets it up (JSON, to a file). Kivy's home, the screenshot folder and the speech
  temp files therefore exist.
- `test_journeys_leave_no_trace`: 97 headless journeys (`kiosk.headless.journey`, the
  engine the UI drives) over print, query and submit items, identified by 苏服码, ID card
  (pty SAM) and 社保卡 (pcscd + vpcd); logging to a JSON file, then a text file, at DEBUG;
  the telemetry DB counting them; the health endpoint and a fleet agent sending heartbeats
  every 0.3 s to a real fleet server (SQLite). TMPDIR points into the test's folder, so every
  temp file of the run (pcscd's config, the escpos scratch dir, the speech WAVs) is there.

Then every file of the kiosk side is read whole as raw bytes — logs, outbox SQLite + -wal,
telemetry DB, the agent's state dir, the fleet server's whole state dir (its SQLite with every
heartbeat / event / command row), TMPDIR, Kivy's home, the screenshots (their PNG text
metadata decompressed) — for every citizen's ID number (also lower-case x, grouped), name
(UTF-8, UTF-16LE, GBK, JSON-escaped), phone (also grouped, +86) and every 苏服码 issued.
Zero hits. Not searched, on purpose: the sandbox platform's own database (it plays the
province's platform, which holds the citizens by definition) and the printer simulators'
spools (the paper the citizen takes away; they are deleted when the simulators stop).

Last, the session wipe in memory: a walk of everything reachable from the services, the
engines' session machines, the redactor and the log handlers (`gc.get_referents`, stopping
at modules, classes, functions, the simulators and the sandbox) holds no str or bytes with a
citizen's name or ID number.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
import shutil
import tempfile
import time
import types
from pathlib import Path

import pytest

from kiosk.config import KioskConfig
from kiosk.identity.model import Identity, IdentitySource
from kiosk.platform.sandbox.seed import CITIZENS
from tests.reliability.conftest import Needles, SearchReport, search_tree, until

HEADLESS_JOURNEYS = 97
UI_VISITS = (  # (item, citizen, via) through the real touch UI
    ("ssc_participation_cert", "c01", "code"),
    ("real_estate_info", "c03", "idcard"),
    ("housing_fund_balance", "c06", "code"),
)
# (item, vias it accepts); case_progress asks about a case submitted earlier in the run.
ITEMS = (
    ("ssc_participation_cert", ("code", "idcard", "ssc")),
    ("flexible_employment_enrol", ("code", "ssc")),
    ("ssc_payment_records", ("code", "idcard", "ssc")),
    ("real_estate_info", ("code", "idcard")),
    ("housing_fund_balance", ("code", "idcard", "ssc")),
    ("ssc_rights_record", ("code", "idcard", "ssc")),
    ("case_progress", ("code", "idcard")),
    ("housing_fund_deposit_cert", ("code", "idcard")),
    ("household_register_cert", ("code",)),
    ("e_licence_print", ("code",)),
)
FIGURES = Path(__file__).resolve().parents[2] / "test-artifacts" / "privacy-figures.json"


def plan() -> list[tuple[str, str, str]]:
    """97 journeys, deterministic: items in turn, each via the item accepts in turn, the
    seven citizens in turn."""
    out = []
    via_turn = {item: 0 for item, _ in ITEMS}
    for i in range(HEADLESS_JOURNEYS):
        item, vias = ITEMS[i % len(ITEMS)]
        via = vias[via_turn[item] % len(vias)]
        via_turn[item] += 1
        out.append((item, CITIZENS[i % len(CITIZENS)].citizen_id, via))
    return out


@pytest.fixture(scope="module")
def world():
    """The run's folders, shared by the UI test (a forked child) and the headless one; under
    /tmp because a Unix socket lives there (its path must fit in 107 bytes)."""
    world = Path(tempfile.mkdtemp(prefix="kiosk-privacy-", dir="/tmp"))
    for name in ("tmp", "ui", "kiosk", "fleet", "agent", "out"):
        (world / name).mkdir(parents=True)
    yield world
    shutil.rmtree(world, ignore_errors=True)


# -- the UI part (forked: Kivy never enters the pytest process) ------------------------------


@pytest.mark.ui
def test_ui_journeys(world):
    os.environ["TMPDIR"] = str(world / "tmp")  # this child only
    tempfile.tempdir = None
    from kiosk.runtime import build
    from screens.run import prepare, run_async

    config = KioskConfig.model_validate({
        "paths": {"data_dir": str(world / "ui" / "var")},
        "logging": {"level": "DEBUG", "format": "json", "file": str(world / "ui" / "kiosk.log")},
        "speech": {"always": True},
        "fleet": {"state_dir": str(world / "ui" / "fleet"),
                  "health_socket": str(world / "ui" / "health.sock")},
    })
    runtime = build(config)
    prepare(runtime, headless=True)
    codes: list[str] = []
    mid_session = SearchReport()

    async def script(pilot):
        from screens import journeys

        issue = journeys.fresh_code

        async def recorded(services, citizen_id):
            code = await issue(services, citizen_id)
            codes.append(code)
            return code

        journeys.fresh_code = recorded
        shots = world / "ui" / "screenshots"
        for n, (item, citizen_id, via) in enumerate(UI_VISITS):
            async def shot(page, n=n):
                await pilot.screenshot(shots / f"{n:02d}-{page}.png")
                if page == "result":  # mid-session: the speech WAVs and scratch dirs exist now
                    search_tree(world / "tmp", Needles.for_citizens(codes=codes), mid_session,
                                skip=_printer_paper)

            await journeys.visit(pilot, item, citizen_id, via, shot=shot)
            assert pilot.app.machine.session is None
        # What the fleet's `screenshot` command sends (screens/ops.py), between sessions.
        from screens.ops import AppActions

        (shots / "ops-screenshot.png").write_bytes(await AppActions(pilot.app).screenshot())

    asyncio.run(run_async(runtime, script, with_services=True,
                          services_devices={"qr", "id_card", "receipt_printer", "a4_printer"}))
    logging.shutdown()
    (world / "out" / "ui-codes.json").write_text(json.dumps(codes))
    (world / "out" / "ui-tmp-scan.json").write_text(json.dumps(dataclasses.asdict(mid_session)))
    assert mid_session.files > 0 and mid_session.hits == [], mid_session
    assert len(codes) == sum(1 for _, _, via in UI_VISITS if via == "code")


# -- the headless part, the agent, the search -----------------------------------------------


@pytest.mark.asyncio
async def test_journeys_leave_no_trace(world, monkeypatch):
    assert (world / "out" / "ui-codes.json").exists(), (
        "run the whole module: the UI journeys (test_ui_journeys) come first"
    )
    monkeypatch.setenv("TMPDIR", str(world / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    started = time.monotonic()
    root_level = logging.getLogger().level
    try:
        figures = await _run_and_check(world, monkeypatch)
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_kiosk_handler", False)]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(root_level)
    figures["seconds"] = round(time.monotonic() - started, 1)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    print("privacy suite:", json.dumps(figures, ensure_ascii=False))


async def _run_and_check(world: Path, monkeypatch) -> dict:
    import kiosk.simulation as simulation
    from fleet.agent.main import run_agent
    from fleet.agent.settings import AgentSettings
    from fleet.server.testing import running_fleet_server
    from kiosk.health import HealthServer, ServicesHealthSource
    from kiosk.headless import journey
    from kiosk.runtime import build
    from kiosk.services import open_services
    from kiosk.telemetry import Telemetry
    from provisioning.device import enrol
    from tests.fleet.agent.conftest import RecordingActions

    codes: list[str] = json.loads((world / "out" / "ui-codes.json").read_text())
    issue = simulation.fresh_code

    async def recorded(services, citizen_id):
        code = await issue(services, citizen_id)
        codes.append(code)
        return code

    monkeypatch.setattr(simulation, "fresh_code", recorded)

    data = world / "kiosk" / "var"
    logs = world / "kiosk" / "logs"

    def config(fmt: str) -> KioskConfig:
        return KioskConfig.model_validate({
            "paths": {"data_dir": str(data)},
            "logging": {"level": "DEBUG", "format": fmt, "file": str(logs / f"kiosk.{fmt}.log")},
        })

    runtime = build(config("json"))
    outcomes: dict[str, int] = {}
    by_via: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    failures: dict[str, int] = {}
    engines = []
    mid_run, mid_run_tmp = SearchReport(), SearchReport()
    async with running_fleet_server(world / "fleet") as srv:
        site = await srv.create_site(site_id="wx-bank-01", site_type="bank", name="无锡某银行网点",
                                     address="无锡市梁溪区", region="320213")
        identity = await enrol(srv.url, await srv.create_enrolment_token(site), world / "agent")
        telemetry = Telemetry(data / "telemetry.sqlite3")
        async with open_services(config("json"), devices={"qr", "id_card", "ssc", "receipt_printer",
                                                          "a4_printer"}) as services:
            services.redactor = runtime.redactor
            sock = world / "kiosk" / "health.sock"
            source = ServicesHealthSource(services, telemetry, RecordingActions(), time.time())
            async with HealthServer(source, sock):
                stop = asyncio.Event()
                agent = asyncio.create_task(run_agent(AgentSettings(
                    state_dir=world / "agent", health_socket=sock, data_dir=data,
                    server_url=srv.url, interval_s=0.3), stop))
                case_numbers: list[str] = []
                try:
                    for n, (item_id, citizen_id, via) in enumerate(plan()):
                        if n == HEADLESS_JOURNEYS // 2:  # the second half logs as text
                            runtime = build(config("text"))
                            services.redactor = runtime.redactor
                            # Mid-run, with pcscd's config, the escpos scratch dir, the IPP
                            # spool and the agent's buffers all in place.
                            search_tree(world / "tmp", Needles.for_citizens(codes=codes),
                                        mid_run_tmp, skip=_printer_paper)
                            for root in (logs, world / "agent", world / "fleet"):
                                search_tree(root, Needles.for_citizens(codes=codes), mid_run)
                            search_tree(data, Needles.for_citizens(codes=codes), mid_run,
                                        skip=lambda p: p.is_relative_to(data / "sandbox"))
                        answers = None
                        if item_id == "case_progress":
                            answers = {"case_number": case_numbers[-1] if case_numbers else "0"}
                        engine = services.engine()
                        engines.append(engine)
                        telemetry.journey_started(item_id)
                        report = await journey(services, item_id, citizen_id, via,
                                               answers=answers, print_receipt=n % 3 == 0,
                                               engine=engine)
                        assert engine.machine.session is None, "the session was not wiped"
                        telemetry.journey_finished(item_id, "completed" if report.ok else "failed")
                        if report.rated:
                            telemetry.rated(item_id, str(report.rated))
                        if report.documents_printed:
                            telemetry.printed("a4", report.documents_printed)
                        if report.case_number:
                            case_numbers.append(report.case_number)
                        outcomes[str(report.outcome)] = outcomes.get(str(report.outcome), 0) + 1
                        if report.failure is not None:
                            why = f"{item_id} via {via}: {report.failure.message_key}"
                            failures[why] = failures.get(why, 0) + 1
                        if report.ok:
                            by_via[via] = by_via.get(via, 0) + 1
                            kind = str(services.items.get(item_id).manifest.kind)
                            by_kind[kind] = by_kind.get(kind, 0) + 1
                    # A few heartbeats after the last journey, with the final totals.
                    beats_before = await _count(srv, identity.device_id)
                    await until(lambda: _more(srv, identity.device_id, beats_before + 2), 10,
                                "heartbeats after the run")
                finally:
                    stop.set()
                    assert await asyncio.wait_for(agent, 15) == 0
            # The session wipe in memory, while the services are still open.
            memory = _memory_walk([services, runtime, source, telemetry, logging.getLogger(),
                                   *engines])
        telemetry.close()
        heartbeats = await _count(srv, identity.device_id)
    logging.shutdown()

    assert sum(outcomes.values()) == HEADLESS_JOURNEYS
    # The run must have exercised what it claims to: every way in, every kind of item.
    assert set(by_via) == {"code", "idcard", "ssc"}, by_via
    assert set(by_kind) == {"print", "query", "submit"}, by_kind
    assert outcomes.get("failed", 0) <= HEADLESS_JOURNEYS // 5, outcomes
    assert heartbeats >= 5

    needles = Needles.for_citizens(codes=codes)
    assert len(codes) >= 30
    report = SearchReport()
    for root in (logs, world / "ui" / "kiosk.log", world / "fleet", world / "agent",
                 world / "tmp", world / "ui" / "var" / "kivy", world / "ui" / "screenshots"):
        search_tree(root, needles, report)
    # The kiosk's data dirs (outbox + -wal, telemetry, keys), but not the sandbox platform's.
    for root in (data, world / "ui" / "var"):
        search_tree(root, needles, report,
                    skip=lambda p, root=root: p.is_relative_to(root / "sandbox")
                    or p.is_relative_to(root / "kivy"))
    # Positive controls: the same search finds the citizens where they belong (the sandbox
    # platform's database), and the same walk finds an identity a session would hold.
    control = SearchReport()
    search_tree(data / "sandbox", needles, control)
    found = {label.split()[1] for _, label in control.hits}
    assert {"id_number", "name", "phone"} <= found, found
    held = Identity.create(IdentitySource.ID_CARD, CITIZENS[1].id_number, CITIZENS[1].name)
    assert len(_memory_walk([{"session": [held]}])["hits"]) >= 2, "the memory walk is blind"
    kinds = {p.name for p in (logs).iterdir()}
    assert kinds == {"kiosk.json.log", "kiosk.text.log"}, kinds
    assert (world / "ui" / "var" / "kivy").is_dir() and any((world / "ui" / "screenshots").iterdir())
    assert (data / "outbox.sqlite3").exists()
    assert report.hits == [], report.hits[:20]
    assert mid_run.hits == [] and mid_run_tmp.hits == [], (mid_run.hits + mid_run_tmp.hits)[:20]
    assert mid_run_tmp.files > 0, "TMPDIR was empty mid-run: is it really in use?"
    ui_mid = json.loads((world / "out" / "ui-tmp-scan.json").read_text())
    assert memory["hits"] == [], memory["hits"][:20]
    return {
        "journeys": HEADLESS_JOURNEYS + len(UI_VISITS),
        "headless": HEADLESS_JOURNEYS, "ui": len(UI_VISITS),
        "outcomes": outcomes, "failures": failures, "ok_by_via": by_via, "ok_by_kind": by_kind,
        "codes_issued": len(codes), "heartbeats_stored": heartbeats,
        "needles": needles.count(), "files_searched": report.files,
        "bytes_searched": report.bytes, "png_text_chunks": report.png_text_chunks,
        "hits": len(report.hits), "roots": _sizes(world),
        "mid_run_files": mid_run.files, "mid_run_bytes": mid_run.bytes,
        "mid_run_hits": len(mid_run.hits) + len(mid_run_tmp.hits),
        "mid_run_tmp_files": mid_run_tmp.files, "mid_run_tmp_bytes": mid_run_tmp.bytes, "ui_mid_session_tmp_files": ui_mid["files"],
        "ui_mid_session_tmp_bytes": ui_mid["bytes"], "ui_mid_session_hits": len(ui_mid["hits"]),
        "skipped_printer_spool_files": mid_run_tmp.skipped + ui_mid["skipped"],
        "control_hits_in_sandbox_db": len(control.hits), "memory_objects_walked": memory["objects"],
        "memory_strings_checked": memory["strings"], "memory_hits": len(memory["hits"]),
    }


def _printer_paper(path: Path) -> bool:
    """The A4 simulator's spool: the certificate PDFs it "printed" are the paper the citizen
    takes away (deleted when the simulator stops). Its log and scripts are searched."""
    parts = path.parts
    return "spool" in parts and any(part.startswith("ippeve-") for part in parts)


def _sizes(world: Path) -> dict[str, list[int]]:
    """Files and bytes per searched folder at the end, for the figures (no sandbox)."""
    out = {}
    for name in ("kiosk/logs", "kiosk/var", "ui", "fleet", "agent", "tmp"):
        files = [p for p in (world / name).rglob("*") if p.is_file() and not p.is_symlink()
                 and "sandbox" not in p.relative_to(world).parts]
        out[name] = [len(files), sum(p.stat().st_size for p in files)]
    return out


async def _count(srv, device_id: str) -> int:
    import sqlalchemy as sa

    from fleet.server import schema

    h = schema.heartbeats
    async with srv.db.engine.connect() as conn:
        return (await conn.execute(
            sa.select(sa.func.count()).select_from(h).where(h.c.device_id == device_id)
        )).scalar_one()


async def _more(srv, device_id: str, n: int) -> bool:
    return await _count(srv, device_id) >= n


# -- memory ---------------------------------------------------------------------------------

_OPAQUE = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType,
           types.CodeType, types.FrameType, types.MethodType, types.MethodWrapperType)
_OUT_OF_SCOPE = ("drivers.sim", "kiosk.platform.sandbox")  # the card in the citizen's hand; the platform


def _memory_walk(roots: list) -> dict:
    """Everything reachable from the kiosk's live objects, without crossing into modules,
    classes or code (the test's own constants live there) or into the simulators and the
    sandbox platform. Bound methods are followed to their instance only."""
    secrets = []
    for c in CITIZENS:
        secrets += [c.name, c.id_number, c.id_number.lower()]
    secret_bytes = [s.encode("utf-8") for s in secrets]
    seen: set[int] = set()
    stack = list(roots)
    strings = objects = 0
    hits: list[str] = []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        objects += 1
        if isinstance(obj, str):
            strings += 1
            hits += [f"str {obj[:60]!r}" for s in secrets if s in obj][:1]
            continue
        if isinstance(obj, (bytes, bytearray, memoryview)):
            raw = bytes(obj)
            hits += [f"bytes len {len(raw)}" for s in secret_bytes if s in raw][:1]
            continue
        if isinstance(obj, types.MethodType):
            stack.append(obj.__self__)
            continue
        if isinstance(obj, _OPAQUE):
            continue
        module = type(obj).__module__ or ""
        if module.startswith(_OUT_OF_SCOPE):
            continue
        if isinstance(obj, dict) and "__builtins__" in obj:  # a module's namespace
            continue
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.extend(getattr(obj, f.name, None) for f in dataclasses.fields(obj))
        stack.extend(gc.get_referents(obj))
    return {"objects": objects, "strings": strings, "hits": hits}


@pytest.mark.asyncio
async def test_screenshot_command_is_refused_during_a_session(tmp_path):
    """The fleet's `screenshot` grabs the window as drawn (screens/ops.py): mid-session that
    is the citizen's screen, so the health endpoint refuses it until the session is over."""
    from kiosk.health import ServicesHealthSource
    from kiosk.items.testing import kiosk_config
    from kiosk.services import open_services
    from kiosk.telemetry import Telemetry
    from tests.fleet.agent.conftest import RecordingActions

    actions = RecordingActions()
    telemetry = Telemetry(tmp_path / "telemetry.sqlite3")
    try:
        async with open_services(kiosk_config(tmp_path), devices=set(), run_sender=False) as services:
            source = ServicesHealthSource(services, telemetry, actions, time.time())
            actions.screen = "in_session"
            refused = await source.command("screenshot", {})
            assert refused.status == "rejected" and "between sessions" in refused.detail
            assert ("screenshot",) not in actions.calls
            actions.screen = "attract"
            taken = await source.command("screenshot", {})
            assert taken.status == "done" and taken.data["png_base64"]
    finally:
        telemetry.close()
