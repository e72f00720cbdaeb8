"""The item SDK's testing kit: everything an item folder's tests need, in two layers.

**Fakes, for rules and edge cases.** `Kit` wires in-memory fakes of everything a journey
touches — a platform (`FakePlatform`), the outbox (`FakeQueue`), the A4 and receipt printers
and the receipt renderer — to a real `JourneyEngine` and `SessionMachine` on a fixed date
(`TODAY`, `NOW`). The fakes behave like the real parts where a journey cares: the platform
checks a 苏服码's authorisation for certificates and deduplicates submissions on the
idempotency key; the queue stores before it sends; the printers keep what they were given.
Each can be told to fail the way the real part would (`kit.platform.fail["query"] = ...`,
`kit.queue.offline = True`, `kit.a4.error = DeviceFailure(...)`, `kit.without("a4")`).
`citizen(source)` makes a test identity, `assert_left_nothing(kit, report)` checks the
session wipe, and `write_item(tmp_path, ...)` writes an item folder for a test.

    async def test_shows_the_balance(kit):
        kit.platform.query_results[CODE] = QueryResult(CODE, NOW, {"balance": 1234.5})
        report = await kit.run(load_item(FOLDER), citizen(), {})
        assert report.outcome is Outcome.ANSWERED, report.failure

**The real stack, for the whole journey.** `kiosk_services` opens what a kiosk runs
(`kiosk.services.open_services`): the sandbox platform in-process over HTTP, the encrypted
outbox and its sender, and the simulated devices driven through their real drivers.
`run_journey(services, item_id, citizen_id, via)` identifies one of the sandbox's citizens
(`c01`..`c07`, see docs/platform.md) by 苏服码 (`"code"`), ID card (`"idcard"`) or 社保卡
(`"ssc"`), answers the fields (example answers unless given), runs the item and returns a
`SandboxJourney`: the report, the screens shown, the PDFs the A4 simulator received and the
receipts the receipt simulator printed.

    @kiosk_loop
    async def test_prints_on_the_sandbox(kiosk_services):
        journey = await run_journey(kiosk_services, "my_item", "c01", "code")
        assert journey.report.outcome is Outcome.PRINTED, journey.report.failure

`kiosk_services` is opened once per test module on the module's event loop, so its tests
carry `@kiosk_loop` (= `pytest.mark.asyncio(loop_scope="module")`). It starts the devices
named by the `kiosk_devices` fixture (`SANDBOX_DEVICES`: scanner, ID-card reader and both
printers); a module that needs the 社保卡 overrides it, because the 社保卡 simulator needs a
pcscd and only one pcscd can run on a machine:

    @pytest.fixture(scope="module")
    def kiosk_devices():
        return SANDBOX_DEVICES | {"ssc"}

`screens/items/conftest.py` makes the fixtures `kit`, `kiosk_devices` and `kiosk_services`
available to every item folder's tests. This module is for tests only: the runtime never
imports it (it imports pytest).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from drivers.base import DeviceFailure, DeviceTimeout
from kiosk.config import KioskConfig
from kiosk.identity.id_number import check_char
from kiosk.identity.model import Authorization, Identity, IdentitySource
from kiosk import headless
from kiosk.items.hooks import ScreenResult
from kiosk.items.loader import Item
from kiosk.journey import JourneyEngine, JourneyReport, Outputs, ReceiptContent
from kiosk.platform.api import (
    Application,
    CaseEvent,
    CaseState,
    CaseStatus,
    Certificate,
    CertificateType,
    NotAuthorized,
    NotFound,
    PlatformClient,
    PlatformError,
    QueryResult,
    Rating,
    RatingLevel,
    SignedCatalogue,
    SubmissionReceipt,
)
from kiosk.platform.sandbox.seed import SeedCitizen
from kiosk.services import Services, open_services
from kiosk.session import SessionMachine
from kiosk.simulation import citizen as sandbox_citizen

__all__ = [
    "DeviceFailure",
    "DeviceTimeout",
    "FakeA4",
    "FakeClock",
    "FakePlatform",
    "FakeQueue",
    "FakeReceiptPrinter",
    "FakeRenderer",
    "ID_NUMBER",
    "Kit",
    "MINIMAL_TOML",
    "NAME",
    "NOW",
    "Record",
    "SANDBOX_DEVICES",
    "SandboxJourney",
    "TODAY",
    "YOUNG_ID_NUMBER",
    "advance_case",
    "assert_left_nothing",
    "certificate",
    "citizen",
    "kiosk_config",
    "kiosk_devices",
    "kiosk_loop",
    "kiosk_services",
    "kit",
    "run_journey",
    "write_item",
]

# -- test citizens (fakes) -------------------------------------------------------------------

TODAY = dt.date(2026, 3, 16)  # the fakes' kiosk date
NOW = dt.datetime(2026, 3, 16, 10, 30).timestamp()
NAME = "张三"
ID_NUMBER = "11010519491231002X"  # public example (GB 11643); born 1949, so retired
YOUNG_ID_NUMBER = "320102199003071234"  # born 1990; the check character is recomputed


def _valid(first17: str) -> str:
    return first17 + check_char(first17)


def citizen(
    source: IdentitySource = IdentitySource.SUFU_CODE,
    *,
    number: str = ID_NUMBER,
    name: str = NAME,
    authorised: Sequence[str] = tuple(CertificateType),
) -> Identity:
    """A test citizen; a 苏服码 identity carries an authorisation for `authorised` types."""
    auth = None
    if source is IdentitySource.SUFU_CODE:
        auth = Authorization("tok-" + "x" * 20, NOW + 600, tuple(str(t) for t in authorised))
    return Identity.create(source, _valid(number[:17]), name, authorization=auth)


def certificate(
    kind: CertificateType, *, status: str = "issued", pdf: bytes | None = None
) -> Certificate:
    """An e-certificate as the platform returns it; `status`/`pdf` make unusable ones."""
    return Certificate(
        licence_code=f"32000020260316{list(CertificateType).index(kind):04d}",
        type=kind,
        title=f"江苏省{kind}证明",
        issuer_name="江苏省测试发证机关",
        issuer_code="320000TEST",
        item_code="320000-TEST",
        region_code="320000",
        status=status,
        issued_on=TODAY,
        valid_until=None,
        verify_url=f"https://verify.example/{kind}",
        pdf=pdf if pdf is not None else b"%PDF-1.7\n% test certificate " + str(kind).encode() + b"\n%%EOF\n",
    )


# -- the fakes -------------------------------------------------------------------------------


class FakePlatform(PlatformClient):
    """The platform in memory. Fill `query_results` (by item code) and `cases` (or
    `add_case`) for queries; `fail[method] = error` makes that call raise."""

    def __init__(self) -> None:
        self.certificates: dict[CertificateType, Certificate] = {t: certificate(t) for t in CertificateType}
        self.query_results: dict[str, QueryResult] = {}
        self.cases: dict[str, CaseStatus] = {}
        self.submissions: dict[str, Application] = {}  # idempotency key → application
        self.receipts: dict[str, SubmissionReceipt] = {}
        self.ratings: list[Rating] = []
        self.queries: list[tuple[str, Mapping[str, Any]]] = []
        self.fetched: list[tuple[CertificateType, ...]] = []
        self.certificate_params: list[dict[str, Any]] = []  # what shaped each fetch
        self.fail: dict[str, Exception] = {}  # method name → error to raise
        self._cases = itertools.count(1)

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    async def verify_code(self, code: str, *, item_code: str) -> Identity:
        self._maybe_fail("verify_code")
        return citizen()

    async def fetch_certificates(
        self,
        identity: Identity,
        types: Sequence[CertificateType],
        params: Mapping[str, Any] | None = None,
    ) -> list[Certificate]:
        self._maybe_fail("fetch_certificates")
        self.fetched.append(tuple(types))
        self.certificate_params.append(dict(params or {}))
        if identity.source is IdentitySource.SUFU_CODE:
            allowed = set(identity.authorization.certificate_types if identity.authorization else ())
            if not set(map(str, types)) <= allowed:
                raise NotAuthorized()
        return [self.certificates[t] for t in types if t in self.certificates]

    async def submit(self, application: Application, *, idempotency_key: str) -> SubmissionReceipt:
        self._maybe_fail("submit")
        if idempotency_key not in self.receipts:
            self.submissions[idempotency_key] = application
            number = f"SB2026{next(self._cases):08d}"
            self.receipts[idempotency_key] = SubmissionReceipt(number, CaseState.RECEIVED, NOW)
        return self.receipts[idempotency_key]

    async def query_case(self, case_number: str) -> CaseStatus:
        self._maybe_fail("query_case")
        if case_number not in self.cases:
            raise NotFound()
        return self.cases[case_number]

    async def query(self, item_code: str, identity: Identity, params: Mapping[str, Any]) -> QueryResult:
        self._maybe_fail("query")
        self.queries.append((item_code, dict(params)))
        if item_code not in self.query_results:
            raise NotFound()
        return self.query_results[item_code]

    async def rate(self, rating: Rating) -> None:
        self._maybe_fail("rate")
        self.ratings.append(rating)

    async def catalogue(self) -> SignedCatalogue:
        self._maybe_fail("catalogue")
        return SignedCatalogue(1, NOW, (), b"", b"", "test")

    def add_case(self, number: str, state: CaseState = CaseState.IN_REVIEW) -> None:
        self.cases[number] = CaseStatus(
            number, "320000-SB-DJ-0101", state, NOW,
            (CaseEvent(CaseState.RECEIVED, NOW - 7200), CaseEvent(state, NOW, "材料齐全")),
        )


@dataclass
class Record:
    local_ref: str
    idempotency_key: str
    application: Application


class FakeQueue:
    """The outbox: `put` stores (or raises `put_error`); `send_now` submits to the platform
    unless `offline`, in which case the record stays queued."""

    def __init__(self, platform: FakePlatform) -> None:
        self.platform = platform
        self.records: dict[str, Record] = {}
        self.offline = False
        self.put_error: Exception | None = None
        self.send_error: Exception | None = None
        self._refs = itertools.count(1)

    async def put(self, application: Application) -> Record:
        if self.put_error is not None:
            raise self.put_error
        n = next(self._refs)
        record = Record(f"L{n:06d}", f"idem-{n:06d}", application)
        self.records[record.local_ref] = record
        return record

    async def send_now(self, local_ref: str, timeout: float) -> SubmissionReceipt | None:
        if self.send_error is not None:
            raise self.send_error
        if self.offline:
            return None
        record = self.records[local_ref]
        try:
            return await self.platform.submit(record.application, idempotency_key=record.idempotency_key)
        except PlatformError as exc:
            if exc.retryable:
                return None
            raise


class FakeA4:
    """The A4 printer: keeps `(job_name, pdf)` per job, or raises `error`."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, bytes]] = []
        self.error: Exception | None = None

    async def print_pdf(self, pdf: bytes, job_name: str) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.append((job_name, pdf))


class FakeReceiptPrinter:
    """The receipt printer: keeps what it was given (with `FakeRenderer`, the
    `ReceiptContent` itself), or raises `error`."""

    def __init__(self) -> None:
        self.printed: list[Any] = []
        self.error: Exception | None = None

    async def print_receipt(self, image: Any) -> None:
        if self.error is not None:
            raise self.error
        self.printed.append(image)


class FakeRenderer:
    """Hands the content itself to the printer, so tests can read what the receipt says."""

    def render_receipt(self, content: ReceiptContent) -> ReceiptContent:
        return content


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.01  # every look at the clock is a little later: steps get timings
        return self.now


@dataclass
class Kit:
    """Everything a journey test needs, wired like the kiosk's composition root does.
    `kit.run(item, identity, answers, ...)` takes `JourneyEngine.run`'s keywords and keeps
    every result screen in `kit.shown`."""

    platform: FakePlatform = field(default_factory=FakePlatform)
    a4: FakeA4 = field(default_factory=FakeA4)
    receipt: FakeReceiptPrinter = field(default_factory=FakeReceiptPrinter)
    renderer: FakeRenderer = field(default_factory=FakeRenderer)
    queue: FakeQueue | None = None
    machine: SessionMachine | None = None
    shown: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queue = self.queue or FakeQueue(self.platform)
        clock = FakeClock()
        self.machine = self.machine or SessionMachine(clock=clock)
        self.wipes = 0
        self.machine.on_wipe(self._count_wipe)
        self.engine = JourneyEngine(
            self.platform,
            self.queue,
            Outputs(self.a4, self.receipt, self.renderer),
            machine=self.machine,
            clock=clock,
            wall=lambda: NOW,
            today=lambda: TODAY,
        )

    def _count_wipe(self) -> None:
        self.wipes += 1

    def without(self, *devices: str) -> Kit:
        """The same kit with these outputs ("a4", "receipt") missing."""
        outputs = self.engine.outputs
        self.engine.outputs = Outputs(
            None if "a4" in devices else outputs.a4,
            None if "receipt" in devices else outputs.receipt,
            outputs.receipt_renderer,
        )
        return self

    async def run(self, item: Item, identity: Identity | None, answers: Mapping[str, Any], **kw: Any) -> JourneyReport:
        return await self.engine.run(item, identity, answers, on_result=self.shown.append, **kw)


def assert_left_nothing(kit: Kit, report: JourneyReport) -> None:
    """The session is wiped and the report carries no personal data."""
    assert kit.machine.session is None, "the session was not wiped"
    assert kit.machine.state == "attract", f"the kiosk is in {kit.machine.state}, not attract"
    assert kit.wipes >= 1, "the session was never wiped"
    _assert_no_secrets(report, (NAME, ID_NUMBER, YOUNG_ID_NUMBER[:17]))


def _assert_no_secrets(report: JourneyReport, secrets: Sequence[str]) -> None:
    text = repr(report) + str(report.identity) + repr(report.failure) + repr(report.warnings)
    for secret in secrets:
        assert secret not in text, "the journey report holds personal data"


# -- item folders written by tests -----------------------------------------------------------

MINIMAL_TOML = '''\
id = "{id}"
version = "1.0.0"
category = "general"
item_code = "{code}"
kind = "print"
devices = ["a4_printer"]
certificates = ["ssc_participation"]
outputs = ["a4_pdf"]

[name]
zh = "测试证明打印"
en = "Test certificate print"

[identity]
sources = ["code", "idcard"]

[[fields]]
id = "copies"
type = "number"
label = {{ zh = "份数", en = "Copies" }}
min = 1
max = 3

[guide]
conditions = [{{ zh = "本人办理。", en = "In person." }}]
materials = [{{ zh = "无需材料。", en = "None." }}]
time_limit = {{ zh = "即时办结。", en = "At once." }}
fee = {{ zh = "免费。", en = "Free." }}
'''


def write_item(
    root: Path,
    item_id: str = "test_item",
    toml: str | None = None,
    *,
    code: str = "TEST-0001",
    hooks: str | None = None,
    locales: Mapping[str, str] | None = None,
) -> Path:
    """An item folder under root; `toml` defaults to a valid minimal print item."""
    folder = root / item_id
    folder.mkdir(parents=True, exist_ok=True)
    text = toml if toml is not None else MINIMAL_TOML.format(id=item_id, code=code)
    (folder / "item.toml").write_text(text, encoding="utf-8")
    if hooks is not None:
        (folder / "hooks.py").write_text(hooks, encoding="utf-8")
    if locales:
        (folder / "locales").mkdir(exist_ok=True)
        for locale, body in locales.items():
            (folder / "locales" / f"{locale}.toml").write_text(body, encoding="utf-8")
    return folder


# -- the real stack: sandbox platform, outbox, simulated devices -----------------------------

# The devices `kiosk_services` starts unless a module says otherwise: everything but the
# 社保卡 reader, whose simulator needs the machine's one pcscd.
SANDBOX_DEVICES = frozenset({"qr", "id_card", "receipt_printer", "a4_printer"})

# Tests that use `kiosk_services` run on its (module-scoped) event loop.
kiosk_loop = pytest.mark.asyncio(loop_scope="module")


def kiosk_config(data_dir: Path) -> KioskConfig:
    """The default (laptop) configuration with its data under `data_dir`: platform "sim"
    (the sandbox, in-process) and every device "sim" (the simulators)."""
    return KioskConfig.model_validate({"paths": {"data_dir": str(data_dir)}})


@dataclass(frozen=True)
class SandboxJourney:
    """One whole journey on the real stack, and what the citizen got from it."""

    report: JourneyReport
    citizen: SeedCitizen | None
    shown: tuple[ScreenResult, ...]  # the result screen (none if the journey stopped before)
    documents: tuple[bytes, ...]  # PDFs the A4 printer received during this journey
    receipts: tuple[Any, ...]  # complete receipt jobs (drivers.sim.escpos_printer.PrintJob)
    machine: SessionMachine

    @property
    def screen(self) -> ScreenResult:
        (screen,) = self.shown
        return screen

    def lines(self) -> list[tuple[str, str]]:
        """The result screen's lines as (label, value) pairs."""
        return [(line.label, line.value) for line in self.screen.lines]

    def assert_left_nothing(self) -> None:
        """The session is wiped and the report holds none of the citizen's data."""
        assert self.machine.session is None, "the session was not wiped"
        state = self.machine.state
        assert state == "attract", f"the kiosk is in {state}, not attract"
        if self.citizen is not None:
            c = self.citizen
            _assert_no_secrets(self.report, (c.name, c.id_number, c.phone))


def _simulator(services: Services, key: str) -> Any:
    device = services.devices.devices.get(key)
    return getattr(device, "simulator", None) if device is not None else None


async def run_journey(
    services: Services,
    item_id: str,
    citizen_id: str | None = "c01",
    via: str | None = "code",
    *,
    answers: Mapping[str, Any] | None = None,
    commitment_accepted: bool | None = None,
    print_receipt: bool = False,
    locale: str = "zh_CN",
    rating: RatingLevel | None = RatingLevel.VERY_SATISFIED,
) -> SandboxJourney:
    """One item end to end on open services, as `kiosk journey` runs it
    (`kiosk.headless.journey`): the sandbox citizen identifies through the real driver for
    `via` (None: no identity, for items that do not require one), the fields get `answers`
    (default: example answers for today), the commitment is accepted if the item has one
    (unless `commitment_accepted` says otherwise), and the citizen rates the service.
    `print_receipt` asks for a query's optional 凭条."""
    a4, receipt_printer = _simulator(services, "a4_printer"), _simulator(services, "receipt_printer")
    documents_before = len(a4.spooled_documents()) if a4 else 0
    receipts_before = len(receipt_printer.printed_jobs()) if receipt_printer else 0
    engine = services.engine()
    shown: list[ScreenResult] = []
    report = await headless.journey(
        services, item_id, citizen_id, via,
        answers=answers, commitment_accepted=commitment_accepted, rating=rating,
        print_receipt=print_receipt, locale=locale, on_result=shown.append, engine=engine,
    )
    seed = sandbox_citizen(citizen_id) if citizen_id is not None else None
    documents = a4.spooled_documents()[documents_before:] if a4 else []
    receipts = receipt_printer.printed_jobs()[receipts_before:] if receipt_printer else []
    return SandboxJourney(
        report=report,
        citizen=seed,
        shown=tuple(shown),
        documents=tuple(path.read_bytes() for path in documents),
        receipts=tuple(receipts),
        machine=engine.machine,
    )


async def advance_case(services: Services, case_number: str, to: CaseState | None = None) -> None:
    """The sandbox's test hook: move a case on now, to its next state or to `to` (cases
    otherwise progress on the sandbox's own schedule, minutes apart)."""
    assert services.sandbox is not None, "advance_case needs the sandbox (platform url = sim)"
    url = f"{services.sandbox.url.rstrip('/')}/sandbox/cases/{case_number}/advance"
    body = {"to": str(to)} if to is not None else {}
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as answer:
        assert answer.status == 200, f"the sandbox refused to advance {case_number}: HTTP {answer.status}"


# -- fixtures (re-exported by screens/items/conftest.py) --------------------------------------


@pytest.fixture
def kit() -> Kit:
    """A fresh set of fakes around a real journey engine, on `TODAY`."""
    return Kit()


@pytest.fixture(scope="module")
def kiosk_devices() -> frozenset[str]:
    """Which simulated devices `kiosk_services` starts; override it in a test module."""
    return SANDBOX_DEVICES


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kiosk_services(
    tmp_path_factory: pytest.TempPathFactory, kiosk_devices: frozenset[str]
) -> AsyncIterator[Services]:
    """The kiosk's real composition — sandbox platform, outbox and sender, simulated
    devices — opened for a test module and closed after it."""
    config = kiosk_config(tmp_path_factory.mktemp("kiosk"))
    async with open_services(config, devices=set(kiosk_devices)) as services:
        yield services
