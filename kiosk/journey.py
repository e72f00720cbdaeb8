"""The headless journey engine: one citizen, one item, start to wipe, no UI.

Given a loaded item, an identity the kiosk already established, the citizen's answers and
the ports to the outside (platform, submission queue, printers), it drives a
`SessionMachine` through identify → catalogue → item_steps → confirm → working → result →
rating and ends the session, which wipes it. The touch UI runs the same steps one screen at
a time; tests, demos and the sandbox integration run them here in one call.

Failures are values, not crashes: every platform or device error becomes a `JourneyFailure`
with the citizen's message key, and the report says where the journey stopped. A submission
is either in the outbox (and so will reach the platform exactly once) or was never made:
the answers are checked and the commitment confirmed before anything is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.base import DeviceClass, DeviceFailure
from kiosk.identity.model import Identity, IdentitySource
from kiosk.items.hooks import (
    FieldError,
    HookContext,
    HookFailed,
    ItemHooks,
    MaskedIdentity,
    PrintOutcome,
    ResultLine,
    ScreenResult,
    SubmitOutcome,
    default_render,
)
from kiosk.items.loader import Item
from kiosk.items.manifest import AnswerError, ChoiceField, Kind, Manifest, Output
from kiosk.platform.api import (
    Application,
    Certificate,
    PlatformClient,
    PlatformError,
    Rating,
    RatingLevel,
    SubmissionReceipt,
)
from kiosk.session import CITIZEN_STATES, EndReason, SessionMachine, State, Transition

_log = logging.getLogger(__name__)


# -- the ports ------------------------------------------------------------------------------


class SubmissionRecord(Protocol):
    """What the outbox hands back once an application is durably stored."""

    local_ref: str
    idempotency_key: str


class SubmissionQueue(Protocol):
    """The outbox as the journey sees it: store durably, then try to send at once."""

    async def put(self, application: Application) -> SubmissionRecord: ...

    async def send_now(self, local_ref: str, timeout: float) -> SubmissionReceipt | None:
        """The platform's receipt, or None when it stays queued (offline, slow)."""
        ...


class Outbox(Protocol):
    async def put(self, application: Application) -> SubmissionRecord: ...


class OutboxSender(Protocol):
    async def send_now(self, local_ref: str, timeout: float) -> SubmissionReceipt | None: ...


@dataclass(frozen=True)
class OutboxQueue:
    """Joins the real outbox (storage) and its sender into one SubmissionQueue."""

    outbox: Outbox
    sender: OutboxSender

    async def put(self, application: Application) -> SubmissionRecord:
        return await self.outbox.put(application)

    async def send_now(self, local_ref: str, timeout: float) -> SubmissionReceipt | None:
        return await self.sender.send_now(local_ref, timeout)


class A4Output(Protocol):
    async def print_pdf(self, pdf: bytes, job_name: str) -> Any: ...


class ReceiptOutput(Protocol):
    async def print_receipt(self, image: Any) -> Any: ...


@dataclass(frozen=True)
class ReceiptContent:
    """What a receipt (凭条) says, already translated; a renderer turns it into an image."""

    title: str
    lines: tuple[ResultLine, ...]
    note: str = ""
    reference: str | None = None  # case number or local reference, for a QR code
    locale: str = "zh_CN"


class ReceiptRenderer(Protocol):
    def render_receipt(self, content: ReceiptContent) -> Any: ...


@dataclass(frozen=True)
class Outputs:
    """The output devices usable now; None where the kiosk has none or it is down."""

    a4: A4Output | None = None
    receipt: ReceiptOutput | None = None
    receipt_renderer: ReceiptRenderer | None = None

    def devices_up(self) -> frozenset[DeviceClass]:
        up = set()
        if self.a4 is not None:
            up.add(DeviceClass.A4_PRINTER)
        if self.receipt is not None and self.receipt_renderer is not None:
            up.add(DeviceClass.RECEIPT_PRINTER)
        return frozenset(up)


# -- what a journey reports ------------------------------------------------------------------


class FailureKind(enum.StrEnum):
    IDENTITY = "identity"  # not accepted by the item
    DEVICE = "device"  # a required device is missing, or failed
    ANSWERS = "answers"  # answers do not fit the fields or the item's rules
    CONSENT = "consent"  # 告知承诺 not agreed
    ITEM = "item"  # the item's own hook failed
    CERTIFICATE = "certificate"  # 免证办: certificate missing or unusable
    PLATFORM = "platform"
    NOT_SAVED = "not_saved"  # the outbox refused the application: nothing was submitted


class JourneyFailure(Exception):
    """Why a journey stopped (or what went wrong after it succeeded, as a warning).

    `message_key` is the citizen's text; `cause` names the underlying error type for the
    log. Nothing here carries personal data."""

    def __init__(
        self,
        kind: FailureKind,
        message_key: str,
        *,
        stage: State,
        retryable: bool = False,
        cause: str = "",
        field_errors: tuple[FieldError, ...] = (),
    ) -> None:
        super().__init__(f"{kind} at {stage}: {message_key}" + (f" ({cause})" if cause else ""))
        self.kind = kind
        self.message_key = message_key
        self.stage = stage
        self.retryable = retryable
        self.cause = cause
        self.field_errors = field_errors


class Outcome(enum.StrEnum):
    PRINTED = "printed"
    ANSWERED = "answered"
    SUBMITTED = "submitted"  # the platform gave a case number
    QUEUED = "queued"  # safely in the outbox; the case number follows
    FAILED = "failed"


@dataclass(frozen=True)
class StepTiming:
    state: State
    seconds: float
    ok: bool


@dataclass(frozen=True)
class JourneyReport:
    item_id: str
    outcome: Outcome
    steps: tuple[StepTiming, ...]
    identity: str | None  # masked: "code 3201**********123X 张*"
    end_reason: EndReason | None
    case_number: str | None = None
    local_ref: str | None = None
    documents_printed: int = 0
    rated: RatingLevel | None = None
    failure: JourneyFailure | None = None
    warnings: tuple[JourneyFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


@dataclass(frozen=True)
class JourneyLimits:
    platform_s: float = 20.0  # one platform call (query, certificates, rating)
    send_s: float = 10.0  # how long the citizen waits for a case number before "queued"
    print_s: float = 90.0  # one print job


# -- answers (also used by the UI, one field at a time) ----------------------------------


def check_answers(
    manifest: Manifest, hooks: ItemHooks, answers: Mapping[str, Any], ctx: HookContext
) -> tuple[dict[str, Any], list[FieldError]]:
    """Answers normalised by field type, then the item's own rules; or the errors."""
    errors: list[FieldError] = []
    normalised: dict[str, Any] = {}
    known = {f.id for f in manifest.fields}
    errors += [FieldError(key, "items.answer.unknown_field") for key in answers if key not in known]
    for item_field in manifest.fields:
        value = answers.get(item_field.id)
        if value is None or value == "":
            if item_field.required:
                errors.append(FieldError(item_field.id, "items.answer.required"))
            continue
        if isinstance(item_field, ChoiceField):
            allowed = hooks.run_field_options(item_field.id, item_field.values, ctx)
            if str(value) not in allowed:
                errors.append(FieldError(item_field.id, "items.answer.not_an_option"))
                continue
        try:
            normalised[item_field.id] = item_field.parse(value, ctx.today)
        except AnswerError as exc:
            errors.append(FieldError(item_field.id, exc.message_key, exc.params))
    if not errors:
        errors += hooks.run_validate(normalised, ctx)
    return normalised, errors


# -- the engine ------------------------------------------------------------------------------


@dataclass
class _Run:
    """One journey's working data. Dropped by the session wipe, whatever the outcome."""

    item: Item
    identity: Identity | None
    answers: dict[str, Any]
    locale: str
    steps: list[StepTiming] = field(default_factory=list)
    step_state: State | None = None
    step_start: float = 0.0
    certificates: list[Certificate] = field(default_factory=list)
    warnings: list[JourneyFailure] = field(default_factory=list)
    case_number: str | None = None
    local_ref: str | None = None
    printed: int = 0
    rated: RatingLevel | None = None
    end_reason: EndReason | None = None

    def drop(self) -> None:
        self.identity = None
        self.answers.clear()
        self.certificates.clear()


class JourneyEngine:
    def __init__(
        self,
        platform: PlatformClient,
        queue: SubmissionQueue,
        outputs: Outputs,
        *,
        machine: SessionMachine | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        today: Callable[[], dt.date] = dt.date.today,
        limits: JourneyLimits = JourneyLimits(),
    ) -> None:
        self.platform = platform
        self.queue = queue
        self.outputs = outputs
        self.machine = machine or SessionMachine(clock=clock)
        self._clock = clock
        self._wall = wall
        self._today = today
        self.limits = limits

    def journey(self, item: Item, identity: Identity | None, *, locale: str = "zh_CN") -> Journey:
        """One citizen's journey with `item`, one step at a time (the touch UI's way).

        The session must already be at the catalogue (identified, or not needing it); the
        journey's steps move it on. `run()` below is the same steps in one call."""
        return Journey(self, item, identity, locale)

    async def run(
        self,
        item: Item,
        identity: Identity | None,
        answers: Mapping[str, Any],
        *,
        commitment_accepted: bool = False,
        rating: RatingLevel | None = None,
        print_receipt: bool = False,
        locale: str = "zh_CN",
        on_result: Callable[[ScreenResult], Any] | None = None,
    ) -> JourneyReport:
        """One whole journey; the session is wiped when this returns (or is cancelled)."""
        machine = self.machine
        machine.start()
        session = machine.session
        assert session is not None  # start() opened it
        session.identity = identity
        started = self._clock()
        machine.move(State.CATALOGUE)
        journey = self.journey(item, identity, locale=locale)
        journey.record_step(State.IDENTIFY, self._clock() - started)
        try:
            try:
                journey.choose()
                journey.answer(answers)
                journey.confirm(commitment_accepted)
                screen = await journey.work()
                if on_result is not None:
                    shown = on_result(screen)
                    if inspect.isawaitable(shown):
                        await shown
                if print_receipt:
                    await journey.optional_receipt(screen)
                journey.to_rating()
                if rating is not None:
                    await journey.rate(rating)
            except JourneyFailure as exc:
                journey.failed(exc)
            finally:
                journey.finish()
        finally:
            journey.detach()
        return journey.report()

    # -- the steps (called by Journey) -------------------------------------------------------
    def _check_identity(self, manifest: Manifest, identity: Identity | None) -> None:
        rule = manifest.identity
        key = None
        if identity is None:
            if rule.required:
                key = "items.journey.identity_required"
        elif IdentitySource(identity.source) not in rule.sources:
            key = "items.journey.identity_not_accepted"
        elif identity.assurance < rule.assurance:
            key = "items.journey.assurance_too_low"
        if key is not None:
            raise JourneyFailure(FailureKind.IDENTITY, key, stage=State.IDENTIFY)

    async def _print(self, run: _Run, answers: Mapping[str, Any]) -> PrintOutcome:
        manifest = run.item.manifest
        assert run.identity is not None  # print items always require identity
        if manifest.certificate_field is not None:
            types = [next(t for t in manifest.certificates if t == answers[manifest.certificate_field])]
        else:
            types = list(manifest.certificates)
        # The answers that shape the documents (period, year, purpose), not the choice of
        # which certificate: that is `types`.
        params = {
            key: value for key, value in answers.items()
            if key != manifest.certificate_field and isinstance(value, (str, int, bool))
        }
        found = await self._platform(
            self.platform.fetch_certificates, run.identity, types, params
        )
        wanted = [next((c for c in found if c.type == t), None) for t in types]
        if any(c is None for c in wanted):
            raise JourneyFailure(FailureKind.CERTIFICATE, "items.journey.certificate_missing", stage=State.WORKING)
        certificates = [c for c in wanted if c is not None]
        # Every document is checked before the first is printed: no half-printed set.
        for certificate in certificates:
            if certificate.status != "issued" or not certificate.pdf.startswith(b"%PDF-"):
                raise JourneyFailure(
                    FailureKind.CERTIFICATE, "items.journey.certificate_invalid",
                    stage=State.WORKING, cause=f"status={certificate.status}",
                )
        run.certificates.extend(certificates)
        session = self.machine.session
        assert session is not None
        session.documents.extend(certificates)
        a4 = self.outputs.a4
        assert a4 is not None  # checked at the catalogue step
        for i, certificate in enumerate(certificates, 1):
            # Job names end up in printer logs and queues: never a name or an ID number.
            job_name = f"{manifest.id}-{session.number}-{i}"
            await self._device(a4.print_pdf, certificate.pdf, job_name)
            run.printed += 1
        return PrintOutcome(tuple(c.title for c in certificates))

    async def _query(self, run: _Run, answers: Mapping[str, Any], params: dict[str, Any]) -> Any:
        manifest = run.item.manifest
        case_field = manifest.case_number_field
        if manifest.query_by == "case_number" and case_field is not None:
            return await self._platform(self.platform.query_case, answers[case_field.id])
        assert run.identity is not None
        return await self._platform(self.platform.query, manifest.item_code, run.identity, params)

    async def _submit(
        self, run: _Run, fields: dict[str, Any], commitment_accepted: bool, ctx: HookContext
    ) -> SubmitOutcome:
        manifest = run.item.manifest
        assert run.identity is not None
        application = Application(
            item_id=manifest.id,
            item_code=manifest.item_code,
            applicant=run.identity,
            fields=fields,
            commitment_accepted=commitment_accepted and manifest.commitment is not None,
            created_at=self._wall(),
        )
        try:
            record = await self.queue.put(application)
        except Exception as exc:
            # Not stored, so not submitted: the citizen may safely try again.
            raise JourneyFailure(
                FailureKind.NOT_SAVED, "items.journey.not_saved",
                stage=State.WORKING, retryable=True, cause=type(exc).__name__,
            ) from exc
        run.local_ref = record.local_ref
        try:
            receipt = await self.queue.send_now(record.local_ref, self.limits.send_s)
        except PlatformError as exc:
            if not exc.retryable:
                raise JourneyFailure(
                    FailureKind.PLATFORM, exc.message_key, stage=State.WORKING, cause=type(exc).__name__
                ) from exc
            receipt = None
        except Exception as exc:
            # Stored durably already: whatever the sender hit, the outbox will retry.
            _log.warning("send_now failed (%s); %s stays queued", type(exc).__name__, record.local_ref)
            receipt = None
        if receipt is not None:
            run.case_number = receipt.case_number
        outcome = SubmitOutcome(record.local_ref, run.case_number)
        if Output.RECEIPT in manifest.outputs:
            t = ctx.t
            lines = [ResultLine(t("items.result.item"), manifest.name.get(run.locale))]
            if outcome.queued:
                lines.append(ResultLine(t("items.result.local_ref"), outcome.local_ref))
                note = t("items.result.queued_note")
            else:
                lines.append(ResultLine(t("items.result.case_number"), outcome.case_number or ""))
                note = t("items.result.submitted_note")
            lines.append(
                ResultLine(t("items.result.submitted_at"), dt.datetime.fromtimestamp(self._wall()).strftime("%Y-%m-%d %H:%M"))
            )
            content = ReceiptContent(
                manifest.name.get(run.locale), tuple(lines), note,
                outcome.case_number or outcome.local_ref, run.locale,
            )
            await self._print_receipt(run, content)
        return outcome

    def _render(self, run: _Run, result: Any, ctx: HookContext) -> ScreenResult:
        try:
            return run.item.hooks.run_render_result(result, ctx)
        except HookFailed as exc:
            if run.item.manifest.kind is Kind.SUBMIT:
                # The application stands; the citizen must still see its number.
                run.warnings.append(self._hook_failure(exc, State.RESULT))
                return default_render(result, ctx)
            raise self._hook_failure(exc, State.RESULT) from exc

    async def _optional_receipt(self, run: _Run, screen: ScreenResult) -> None:
        manifest = run.item.manifest
        if Output.RECEIPT not in manifest.optional_outputs:
            return
        if DeviceClass.RECEIPT_PRINTER not in self.outputs.devices_up():
            run.warnings.append(
                JourneyFailure(FailureKind.DEVICE, "items.journey.device_unavailable", stage=State.RESULT)
            )
            return
        lines = list(screen.lines)
        if screen.table is not None:
            lines += [ResultLine(row[0], " ".join(row[1:])) for row in screen.table.rows if row]
        await self._print_receipt(
            run, ReceiptContent(screen.title, tuple(lines), screen.note, None, run.locale)
        )

    async def _print_receipt(self, run: _Run, content: ReceiptContent) -> None:
        """A receipt that fails to print is a warning: what it records already happened."""
        printer, renderer = self.outputs.receipt, self.outputs.receipt_renderer
        try:
            if printer is None or renderer is None:
                raise JourneyFailure(
                    FailureKind.DEVICE, "items.journey.device_unavailable", stage=self.machine.state
                )
            image = renderer.render_receipt(content)
            await self._device(printer.print_receipt, image)
        except JourneyFailure as exc:
            run.warnings.append(
                JourneyFailure(
                    exc.kind, "items.journey.receipt_failed", stage=exc.stage, cause=exc.cause or exc.message_key
                )
            )
        except Exception as exc:  # the renderer: a bug there must not undo a submission
            run.warnings.append(
                JourneyFailure(
                    FailureKind.DEVICE, "items.journey.receipt_failed",
                    stage=self.machine.state, cause=type(exc).__name__,
                )
            )

    async def _rate(self, run: _Run, level: RatingLevel, reasons: tuple[str, ...] = ()) -> None:
        rating = Rating(
            item_code=run.item.item_code,
            level=level,
            case_number=run.case_number,
            rated_at=self._wall(),
            reasons=reasons,
        )
        try:
            await self._platform(self.platform.rate, rating)
        except JourneyFailure as exc:
            # The transaction is done; a lost rating is regrettable, not the citizen's problem.
            run.warnings.append(
                JourneyFailure(exc.kind, "items.journey.rating_failed", stage=State.RATING, cause=exc.cause)
            )
            return
        run.rated = level

    # -- plumbing --------------------------------------------------------------------------
    def _context(self, run: _Run) -> HookContext:
        return HookContext(
            item=run.item.manifest,
            identity=MaskedIdentity.of(run.identity) if run.identity else None,
            today=self._today(),
            t=run.item.strings_for(run.locale),
        )

    def _hook(self, stage: State, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except HookFailed as exc:
            raise self._hook_failure(exc, stage) from exc

    @staticmethod
    def _hook_failure(exc: HookFailed, stage: State) -> JourneyFailure:
        _log.error("item hook failed: %s", exc)
        return JourneyFailure(FailureKind.ITEM, "items.journey.item_failed", stage=stage, cause=exc.hook)

    async def _platform(self, call: Callable[..., Any], *args: Any) -> Any:
        stage = self.machine.state
        try:
            async with asyncio.timeout(self.limits.platform_s):
                return await call(*args)
        except PlatformError as exc:
            raise JourneyFailure(
                FailureKind.PLATFORM, exc.message_key, stage=stage,
                retryable=exc.retryable, cause=type(exc).__name__,
            ) from exc
        except TimeoutError as exc:
            raise JourneyFailure(
                FailureKind.PLATFORM, "platform.unavailable", stage=stage, retryable=True, cause="TimeoutError"
            ) from exc
        except Exception as exc:  # a client bug or an unexpected library error
            raise JourneyFailure(
                FailureKind.PLATFORM, "platform.failed", stage=stage, cause=type(exc).__name__
            ) from exc

    async def _device(self, call: Callable[..., Any], *args: Any) -> Any:
        stage = self.machine.state
        try:
            async with asyncio.timeout(self.limits.print_s):
                return await call(*args)
        except DeviceFailure as exc:
            raise JourneyFailure(
                FailureKind.DEVICE, exc.message_key, stage=stage, cause=exc.code
            ) from exc
        except TimeoutError as exc:
            raise JourneyFailure(FailureKind.DEVICE, "device.timeout", stage=stage, cause="TimeoutError") from exc
        except Exception as exc:
            raise JourneyFailure(FailureKind.DEVICE, "device.failed", stage=stage, cause=type(exc).__name__) from exc

    def _enter(self, run: _Run, state: State) -> None:
        self._close_step(run, ok=True)
        run.step_state, run.step_start = state, self._clock()

    def _close_step(self, run: _Run, ok: bool) -> None:
        if run.step_state is not None:
            run.steps.append(StepTiming(run.step_state, self._clock() - run.step_start, ok))
            run.step_state = None

    @staticmethod
    def _outcome(run: _Run) -> Outcome:
        kind = run.item.manifest.kind
        if kind is Kind.PRINT:
            return Outcome.PRINTED
        if kind is Kind.QUERY:
            return Outcome.ANSWERED
        return Outcome.SUBMITTED if run.case_number else Outcome.QUEUED


class Journey:
    """One citizen, one item, one step at a time: each method is one screen's action.

    Steps must come in order — choose → answer → confirm → work → (optional_receipt) →
    to_rating → (rate) → finish — and each moves the session machine on; a `JourneyFailure`
    says why a step could not be taken (the UI shows its message and offers what the
    failure allows). `finish()` ends the session, which wipes the journey's data whatever
    happened; a session that ends otherwise (idle timeout, 退出) wipes it just the same."""

    def __init__(self, engine: JourneyEngine, item: Item, identity: Identity | None, locale: str) -> None:
        self.engine = engine
        self.item = item
        self.machine = engine.machine
        self._run = _Run(item, identity, {}, locale)
        self._masked = (
            f"{identity.source} {identity.masked_id_number} {identity.masked_name}" if identity else None
        )
        self._normalised: dict[str, Any] = {}
        self._fields: dict[str, Any] = {}
        self._commitment_accepted = False
        self._failure: JourneyFailure | None = None
        self._detach = [self.machine.subscribe(self._on_transition), self.machine.on_wipe(self._run.drop)]
        engine._enter(self._run, State.CATALOGUE)

    @property
    def manifest(self) -> Manifest:
        return self.item.manifest

    @property
    def identity(self) -> Identity | None:
        return self._run.identity

    @property
    def locale(self) -> str:
        return self._run.locale

    @locale.setter
    def locale(self, locale: str) -> None:
        self._run.locale = locale  # the citizen switched language mid-journey

    def context(self) -> HookContext:
        return self.engine._context(self._run)

    def record_step(self, state: State, seconds: float) -> None:
        self._run.steps.insert(0, StepTiming(state, seconds, True))

    # -- the steps ---------------------------------------------------------------------------
    def choose(self) -> None:
        """The citizen picked the item: identity and devices checked, then its steps begin."""
        engine, run, manifest = self.engine, self._run, self.manifest
        engine._check_identity(manifest, run.identity)
        session = self.machine.session
        assert session is not None
        session.item_id = manifest.id
        missing = manifest.required_devices() - engine.outputs.devices_up()
        if missing:
            raise JourneyFailure(
                FailureKind.DEVICE, "items.journey.device_unavailable",
                stage=State.CATALOGUE, cause=",".join(sorted(missing)),
            )
        self.machine.move(State.ITEM_STEPS)
        engine._enter(run, State.ITEM_STEPS)

    def options(self, field_id: str) -> list[str]:
        """The choice values to offer now (the item's hook may narrow them)."""
        item_field = next(f for f in self.manifest.fields if f.id == field_id)
        assert isinstance(item_field, ChoiceField)
        return self.item.hooks.run_field_options(field_id, item_field.values, self.context())

    def check(self, answers: Mapping[str, Any]) -> list[FieldError]:
        """The errors these answers have (for one screen's fields, or all); moves nothing."""
        _, errors = self.engine._hook(
            State.ITEM_STEPS, check_answers, self.manifest, self.item.hooks, answers, self.context()
        )
        return errors

    def answer(self, answers: Mapping[str, Any]) -> None:
        """All the answers: checked, then on to confirm. Raises with the field errors."""
        run, engine = self._run, self.engine
        run.answers = dict(answers)
        normalised, errors = engine._hook(
            State.ITEM_STEPS, check_answers, self.manifest, self.item.hooks, run.answers, self.context()
        )
        if errors:
            raise JourneyFailure(
                FailureKind.ANSWERS, "items.journey.invalid_answers",
                stage=State.ITEM_STEPS, field_errors=tuple(errors),
            )
        self._normalised = normalised
        session = self.machine.session
        assert session is not None
        session.form.update(normalised)
        self.machine.move(State.CONFIRM)
        engine._enter(run, State.CONFIRM)

    def back(self) -> None:
        """From confirm back to the answers (the citizen wants to change one)."""
        if self.machine.state is State.CONFIRM:
            self.machine.move(State.ITEM_STEPS)
            self.engine._enter(self._run, State.ITEM_STEPS)

    def confirm(self, commitment_accepted: bool) -> None:
        """确认: the 告知承诺 must be agreed where the item has one; then the kiosk works."""
        run, engine, manifest = self._run, self.engine, self.manifest
        if manifest.commitment is not None and not commitment_accepted:
            raise JourneyFailure(FailureKind.CONSENT, "items.journey.consent_required", stage=State.CONFIRM)
        self._commitment_accepted = commitment_accepted
        if manifest.kind is not Kind.PRINT:
            self._fields = engine._hook(
                State.CONFIRM, self.item.hooks.run_build_application, self._normalised, self.context()
            )
        self.machine.move(State.WORKING)
        engine._enter(run, State.WORKING)

    async def work(self) -> ScreenResult:
        """Print, query or submit; then the result screen's content."""
        run, engine, manifest = self._run, self.engine, self.manifest
        ctx = self.context()
        if manifest.kind is Kind.PRINT:
            result: Any = await engine._print(run, self._normalised)
        elif manifest.kind is Kind.QUERY:
            result = await engine._query(run, self._normalised, self._fields)
        else:
            result = await engine._submit(run, self._fields, self._commitment_accepted, ctx)
        session = self.machine.session
        assert session is not None
        session.result = result
        self.machine.move(State.RESULT)
        engine._enter(run, State.RESULT)
        return engine._render(run, result, ctx)

    @property
    def receipt_offered(self) -> bool:
        """A 凭条 of the result may be printed on request (and the printer is up)."""
        return (
            Output.RECEIPT in self.manifest.optional_outputs
            and DeviceClass.RECEIPT_PRINTER in self.engine.outputs.devices_up()
        )

    async def optional_receipt(self, screen: ScreenResult) -> bool:
        """Print the result on a receipt; False (with a warning kept) if it could not."""
        before = len(self._run.warnings)
        await self.engine._optional_receipt(self._run, screen)
        return len(self._run.warnings) == before

    def to_rating(self) -> None:
        self.machine.move(State.RATING)
        self.engine._enter(self._run, State.RATING)

    async def rate(self, level: RatingLevel, reasons: tuple[str, ...] = ()) -> bool:
        """一次一评 (with the reason chips chosen); False when the rating could not be sent
        (a warning, never an error)."""
        await self.engine._rate(self._run, level, tuple(reasons))
        return self._run.rated is level

    def failed(self, failure: JourneyFailure) -> None:
        self._failure = failure
        _log.info("journey %s stopped: %s", self.item.id, failure)

    def finish(self) -> None:
        """The end: the step's timing is closed and the session ends (and is wiped)."""
        self.engine._close_step(self._run, ok=self._failure is None)
        if self.machine.state in CITIZEN_STATES:
            self.machine.end(EndReason.COMPLETED if self._failure is None else EndReason.CANCELLED)

    def detach(self) -> None:
        for undo in self._detach:
            undo()
        self._detach.clear()

    # -- what happened -----------------------------------------------------------------------
    @property
    def warnings(self) -> tuple[JourneyFailure, ...]:
        return tuple(self._run.warnings)

    def report(self) -> JourneyReport:
        run, identity = self._run, self._masked
        return JourneyReport(
            item_id=self.item.id,
            outcome=Outcome.FAILED if self._failure else JourneyEngine._outcome(run),
            steps=tuple(run.steps),
            identity=identity,
            end_reason=run.end_reason,
            case_number=run.case_number,
            local_ref=run.local_ref,
            documents_printed=run.printed,
            rated=run.rated,
            failure=self._failure,
            warnings=tuple(run.warnings),
        )

    def _on_transition(self, event: Transition) -> None:
        if event.end_reason is not None:
            self._run.end_reason = event.end_reason
