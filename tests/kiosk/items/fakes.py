"""In-memory fakes of the journey engine's ports, for the SDK's tests and every item's own
tests (`from tests.kiosk.items.fakes import Kit`).

They behave like the real parts where it matters to a journey: the platform checks a
苏服码's authorisation for certificates and deduplicates submissions on the idempotency
key; the queue stores before it sends; printers keep what they were given. Each can be told
to fail with the error the real part would raise.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any

from drivers.base import DeviceFailure, DeviceTimeout
from kiosk.identity.model import Authorization, Identity, IdentitySource
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
    SignedCatalogue,
    SubmissionReceipt,
)
from kiosk.session import SessionMachine

TODAY = dt.date(2026, 3, 16)
NOW = dt.datetime(2026, 3, 16, 10, 30).timestamp()
NAME = "张三"
ID_NUMBER = "11010519491231002X"  # public example (GB 11643)
YOUNG_ID_NUMBER = "320102199003071234"


def _valid(first17: str) -> str:
    from kiosk.identity.id_number import check_char

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


def certificate(kind: CertificateType, *, status: str = "issued", pdf: bytes | None = None) -> Certificate:
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


class FakePlatform(PlatformClient):
    def __init__(self) -> None:
        self.certificates: dict[CertificateType, Certificate] = {t: certificate(t) for t in CertificateType}
        self.query_results: dict[str, QueryResult] = {}
        self.cases: dict[str, CaseStatus] = {}
        self.submissions: dict[str, Application] = {}  # idempotency key → application
        self.receipts: dict[str, SubmissionReceipt] = {}
        self.ratings: list[Rating] = []
        self.queries: list[tuple[str, Mapping[str, Any]]] = []
        self.fetched: list[tuple[CertificateType, ...]] = []
        self.fail: dict[str, Exception] = {}  # method name → error to raise
        self._cases = itertools.count(1)

    def _maybe_fail(self, method: str) -> None:
        if method in self.fail:
            raise self.fail[method]

    async def verify_code(self, code: str, *, item_code: str) -> Identity:
        self._maybe_fail("verify_code")
        return citizen()

    async def fetch_certificates(self, identity: Identity, types: Sequence[CertificateType]) -> list[Certificate]:
        self._maybe_fail("fetch_certificates")
        self.fetched.append(tuple(types))
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
    def __init__(self) -> None:
        self.jobs: list[tuple[str, bytes]] = []
        self.error: Exception | None = None

    async def print_pdf(self, pdf: bytes, job_name: str) -> None:
        if self.error is not None:
            raise self.error
        self.jobs.append((job_name, pdf))


class FakeReceiptPrinter:
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
    """Everything a journey test needs, wired like the kiosk's composition root does."""

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
    assert kit.machine.session is None
    assert kit.machine.state == "attract"
    assert kit.wipes >= 1
    text = repr(report) + str(report.identity) + repr(report.failure) + repr(report.warnings)
    for secret in (NAME, ID_NUMBER, YOUNG_ID_NUMBER[:17]):
        assert secret not in text


__all__ = [
    "DeviceFailure",
    "DeviceTimeout",
    "FakePlatform",
    "FakeQueue",
    "Kit",
    "NOW",
    "TODAY",
    "assert_left_nothing",
    "certificate",
    "write_item",
    "citizen",
]


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
