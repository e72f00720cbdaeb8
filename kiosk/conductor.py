"""The conductor: one citizen's visit, one page at a time, for the touch UI to show.

The UI (screens/) has no journey logic: it shows `Conductor.page` and calls the verbs below
when the citizen taps. The conductor turns device reads into identities, offers the
catalogue with the reasons an item is unavailable, walks the item's guide, fields, 免证办
consent and 告知承诺, then hands the steps to a `kiosk.journey.Journey`, and keeps the
session machine in step. Everything here runs headless too (tests drive it without Kivy).

Pages inside one session state:
    identify   → IDENTIFY                     catalogue → CATALOGUE
    guide, field, consent → ITEM_STEPS        commitment, confirm → CONFIRM
    working → WORKING    result → RESULT      rating → RATING
    problem: a plain-language error, in whatever state it happened

苏服码 order: the platform verifies a code *for an item* (its scoped authorisation names the
item code and the certificates it may fetch), so a code scanned at the identify step is held,
opaque and unlogged, until the citizen picks an item, and verified for that item then. A code
past its 60 s life is answered with "refresh and scan again", after which the chosen item
carries on. Cards are read and mapped at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.base import DeviceClass, DeviceFailure, DeviceState, Lifecycle
from kiosk import identify
from kiosk.identity.model import DEFAULT_ASSURANCE, Identity, IdentitySource
from kiosk.items.hooks import FieldError, ScreenResult
from kiosk.items.loader import Item
from kiosk.items.manifest import ChoiceField, Kind
from kiosk.items.registry import Offer
from kiosk.journey import FailureKind, Journey, JourneyFailure, Outcome
from kiosk.platform.api import PlatformError, RatingLevel
from kiosk.session import CITIZEN_STATES, EndReason, SessionMachine, State, Transition
from kiosk.tasks import TaskSet

_log = logging.getLogger(__name__)

CREDENTIAL_PREFIX = "kcred1."  # an ops credential shown as a QR code (provisioning/credentials)


class Page(enum.StrEnum):
    ATTRACT = "attract"
    IDENTIFY = "identify"
    CATALOGUE = "catalogue"
    GUIDE = "guide"
    FIELD = "field"
    CONSENT = "consent"
    COMMITMENT = "commitment"
    CONFIRM = "confirm"
    WORKING = "working"
    RESULT = "result"
    RATING = "rating"
    PROBLEM = "problem"
    OUT_OF_SERVICE = "out_of_service"
    MAINTENANCE_LOGIN = "maintenance_login"
    MAINTENANCE = "maintenance"


# Where the machine's resting and service states put the UI.
_PAGE_OF_STATE = {
    State.ATTRACT: Page.ATTRACT,
    State.IDENTIFY: Page.IDENTIFY,
    State.OUT_OF_SERVICE: Page.OUT_OF_SERVICE,
    State.MAINTENANCE: Page.MAINTENANCE,
}


class Way(enum.StrEnum):
    """The three ways to identify, by the device that reads them."""

    CODE = "code"
    IDCARD = "idcard"
    SSC = "ssc"


WAY_DEVICE = {Way.CODE: "qr", Way.IDCARD: "id_card", Way.SSC: "ssc"}
WAY_SOURCE = {Way.CODE: IdentitySource.SUFU_CODE, Way.IDCARD: IdentitySource.ID_CARD, Way.SSC: IdentitySource.SSC}


@dataclass(frozen=True)
class WayStatus:
    way: Way
    ready: bool
    message_key: str = ""  # why not, and what to do, when not ready


@dataclass(frozen=True)
class Notice:
    """A message on the current page (not a page of its own): a code refused, a card
    pulled too early. `params` values are shown as given."""

    message_key: str
    params: dict[str, Any] = field(default_factory=dict)


class Action(enum.StrEnum):
    RETRY = "retry"  # try the failed step again
    BACK = "back"  # back to where the citizen can change something
    IDENTIFY = "identify"  # show the code / card again
    CATALOGUE = "catalogue"  # pick another item
    EXIT = "exit"


@dataclass(frozen=True)
class Problem:
    message_key: str
    actions: tuple[Action, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Provisional:
    """Stands for a scanned, not yet verified 苏服码 when the catalogue is filtered:
    the source and the assurance a verified code will have, and nothing personal."""

    source: IdentitySource = IdentitySource.SUFU_CODE
    assurance: Any = DEFAULT_ASSURANCE[IdentitySource.SUFU_CODE]


class Telemetry(Protocol):
    """Counts for the fleet (kiosk/telemetry.py): item ids and numbers only."""

    def journey_started(self, item_id: str) -> None: ...
    def journey_finished(self, item_id: str, outcome: str) -> None: ...
    def rated(self, item_id: str, level: str) -> None: ...
    def printed(self, kind: str, pages: int = 1) -> None: ...
    def submission_queued(self) -> None: ...


class MaintenanceGate(Protocol):
    """Checks an ops credential and PIN (provisioning/credentials.py)."""

    def attempt(self, text: str, pin: str) -> Any: ...


class Services(Protocol):  # kiosk.services.Services, as far as the conductor uses it
    config: Any
    platform: Any
    devices: Any
    items: Any
    translator: Any

    def engine(self, machine: SessionMachine | None = None) -> Any: ...
    def devices_up(self) -> frozenset[DeviceClass]: ...


class Conductor:
    """Owns the visit between the machine's `start()` and its `end()`; see module doc."""

    def __init__(
        self,
        services: Services,
        machine: SessionMachine,
        *,
        telemetry: Telemetry | None = None,
        gate: MaintenanceGate | None = None,
        usage: Callable[[], dict[str, int]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.machine = machine
        self.telemetry = telemetry
        self.gate = gate
        self._usage = usage
        self._clock = clock
        self.locale = services.config.kiosk.locale
        self.page = _PAGE_OF_STATE.get(machine.state, Page.ATTRACT)
        self._listeners: list[Callable[[Page], None]] = []
        self.engine = services.engine(machine)
        self.catalogue: Any = None  # the platform's signed catalogue, once fetched
        # -- one visit's data: all of it dropped by `_forget` at the wipe ---------------------
        self.identity: Identity | None = None
        self.way: Way | None = None
        self._code: str | None = None  # a scanned 苏服码, until verified for an item
        self.notice: Notice | None = None
        self.offers: list[Offer] = []
        self.item: Item | None = None
        self.journey: Journey | None = None
        self.answers: dict[str, Any] = {}
        self.field_index = 0
        self.field_errors: list[FieldError] = []
        self.commitment_accepted = False
        self.result: ScreenResult | None = None
        self.outcome: Outcome | None = None
        self.problem: Problem | None = None
        self.receipt_state = ""  # "" | printing | printed | failed
        self._credential: str | None = None
        self.maintenance_notice: Notice | None = None
        self.selftests: list[Any] = []
        # --------------------------------------------------------------------------------
        self._tasks = TaskSet(_log, "conductor task")
        self._watchers: list[asyncio.Task] = []
        self._busy = False
        self._counted = False  # this journey's end was counted (telemetry)
        self._undo = [machine.subscribe(self._on_transition), machine.on_wipe(self._forget)]

    # -- observing ---------------------------------------------------------------------------
    def subscribe(self, listener: Callable[[Page], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _show(self, page: Page) -> None:
        self.page = page
        for listener in list(self._listeners):
            listener(page)

    def _changed(self) -> None:
        """Same page, new content (a notice, a field error, a device back)."""
        self._show(self.page)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start listening to the identifying devices (call on the running loop)."""
        for way in Way:
            device = self.services.devices.devices.get(WAY_DEVICE[way])
            if device is not None:
                task = asyncio.get_running_loop().create_task(self._watch(way, device), name=f"watch-{way}")
                self._watchers.append(task)

    async def stop(self) -> None:
        for task in [*self._watchers, *self._tasks]:
            task.cancel()
        for task in [*self._watchers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watchers.clear()
        self._tasks.clear()
        for undo in self._undo:
            undo()
        self._undo.clear()

    # -- machine → pages ---------------------------------------------------------------------
    def _on_transition(self, event: Transition) -> None:
        page = _PAGE_OF_STATE.get(event.current)
        if event.current is State.ATTRACT and self.page is Page.MAINTENANCE_LOGIN:
            return  # the login is over the attract state
        if page is not None:
            self._show(page)

    def _forget(self) -> None:
        """The wipe: every trace of the visit goes, whatever ended it."""
        if self.item is not None and self.journey is not None and not self._counted:
            self._finished("abandoned")
        self._counted = False
        self._tasks.cancel_all()
        if self.journey is not None:
            self.journey.detach()
        self.identity = None
        self.way = None
        self._code = None
        self.notice = None
        self.offers = []
        self.item = None
        self.journey = None
        self.answers = {}
        self.field_index = 0
        self.field_errors = []
        self.commitment_accepted = False
        self.result = None
        self.outcome = None
        self.problem = None
        self.receipt_state = ""
        self._busy = False
        scanner = self.services.devices.devices.get(WAY_DEVICE[Way.CODE])
        if scanner is not None and hasattr(scanner, "forget_repeats"):
            scanner.forget_repeats()  # the next citizen's first scan fires even if the same

    # -- attract and identify --------------------------------------------------------------
    def begin(self) -> None:
        """开始办理."""
        if self.machine.state is State.ATTRACT:
            self.machine.start()

    def exit(self) -> None:
        """退出: the session ends and is wiped."""
        if self.machine.state in CITIZEN_STATES:
            self.machine.end(EndReason.CANCELLED)
        elif self.page is Page.MAINTENANCE_LOGIN:
            self._credential = None
            self._show(_PAGE_OF_STATE.get(self.machine.state, Page.ATTRACT))

    def ways(self) -> list[WayStatus]:
        """Each way to identify, ready or not, and what to do when not."""
        out = []
        for way in Way:
            device = self.services.devices.devices.get(WAY_DEVICE[way])
            if device is None:
                out.append(WayStatus(way, False, "identify.way_absent"))
                continue
            status = device.status
            ready = status.lifecycle is Lifecycle.ENABLED and status.state in (DeviceState.ONLINE, DeviceState.BUSY)
            out.append(WayStatus(way, ready, "" if ready else "identify.way_down"))
        return out

    def without_identity(self) -> bool:
        """Is there an item a citizen may use without identifying (e.g. 办件进度查询)?"""
        return any(not item.manifest.identity.required for item in self.services.items)

    def browse(self) -> None:
        """Go to the catalogue without identifying (only items that allow it are open)."""
        if self.machine.state is State.ATTRACT:
            self.machine.start()
        if self.machine.state is State.IDENTIFY:
            self._to_catalogue()

    def _accepting(self) -> bool:
        return self.page in (Page.ATTRACT, Page.IDENTIFY) and self.machine.state in (State.ATTRACT, State.IDENTIFY)

    async def _watch(self, way: Way, device: Any) -> None:
        """Wait for this device's card or code, whenever the kiosk is taking one."""
        failures = 0
        while True:
            try:
                if way is Way.CODE:
                    scan = await device.read()
                    text = scan.text
                    if text.startswith(CREDENTIAL_PREFIX):
                        self._credential_scanned(text)
                        continue
                    if self._accepting():
                        self._code_scanned(text)
                    continue
                if not self._accepting() or device.status.lifecycle is not Lifecycle.ENABLED:
                    await asyncio.sleep(0.2)
                    continue
                if way is Way.IDCARD:
                    card = await device.wait_for_card()
                    if self._accepting():
                        self._identified(identify.from_id_card(card), way)
                    await device.wait_for_removal()
                else:
                    await device.wait_for_card(timeout=None)
                    if self._accepting():
                        card = await device.read_card()
                        self._identified(identify.from_ssc_card(card), way)
                    while await device.card_present():
                        await asyncio.sleep(0.2)
                failures = 0
            except asyncio.CancelledError:
                raise
            except DeviceFailure as failure:
                failures += 1
                if self._accepting() and failure.message_key:
                    self._notice(failure.message_key)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            except ValueError:  # a card whose data does not make an identity
                self._notice("identify.card_unreadable")
                await asyncio.sleep(1.0)
            except Exception:
                _log.exception("identification by %s failed", way)
                await asyncio.sleep(2.0)

    def _notice(self, key: str, **params: Any) -> None:
        self.notice = Notice(key, params)
        if self._accepting():
            self.machine.activity()
            self._changed()

    def _code_scanned(self, code: str) -> None:
        self._redact(code)
        if self.machine.state is State.ATTRACT:
            self.machine.start()
        self.way, self._code, self.identity = Way.CODE, code, None
        if self.item is not None:  # re-scanned for an item already chosen
            self._tasks.spawn(self.choose(self.item.id))
            return
        self._to_catalogue()

    def _identified(self, identity: Identity, way: Way) -> None:
        self._remember(identity)
        if self.machine.state is State.ATTRACT:
            self.machine.start()
        self.identity, self.way, self._code = identity, way, None
        self.machine.activity()
        if self.item is not None:
            self._tasks.spawn(self.choose(self.item.id))
            return
        self._to_catalogue()

    def _to_catalogue(self) -> None:
        self.notice = None
        if self.machine.state is State.IDENTIFY:
            self.machine.move(State.CATALOGUE)
        elif self.machine.state in (State.ITEM_STEPS, State.CONFIRM, State.RESULT):
            self.machine.move(State.CATALOGUE)
        session = self.machine.session
        if session is not None:
            session.identity = self.identity
        self.refresh_offers()
        self._show(Page.CATALOGUE)

    # -- catalogue ---------------------------------------------------------------------------
    def refresh_offers(self) -> None:
        who: Any = self.identity
        if who is None and self._code is not None:
            who = Provisional()
        entries = self.catalogue.entries if self.catalogue is not None else None
        offers = self.services.items.offers(who, self.services.devices_up(), entries)
        usage = self._usage() if self._usage is not None else {}
        # Most used first within each category; the registry's order breaks ties.
        order = {offer.item.id: i for i, offer in enumerate(offers)}
        offers.sort(key=lambda o: (o.item.manifest.category, -usage.get(o.item.id, 0), order[o.item.id]))
        self.offers = offers

    def categories(self) -> list[tuple[str, list[Offer]]]:
        """Offers grouped by category, categories by total use (most used first)."""
        groups: dict[str, list[Offer]] = {}
        for offer in self.offers:
            groups.setdefault(str(offer.item.manifest.category), []).append(offer)
        usage = self._usage() if self._usage is not None else {}
        return sorted(
            groups.items(),
            key=lambda kv: (-sum(usage.get(o.item.id, 0) for o in kv[1]), -sum(o.shown for o in kv[1])),
        )

    def back_to_catalogue(self) -> None:
        if self.journey is not None:
            if not self._counted:
                self._finished("abandoned")  # left for another item
            self.journey.detach()
        self.item, self.journey, self.answers, self.field_errors = None, None, {}, []
        self.field_index, self.commitment_accepted, self.problem = 0, False, None
        self._to_catalogue()

    def back_to_identify(self) -> None:
        """From the catalogue, to identify another way (or again)."""
        if self.machine.state is State.CATALOGUE:
            self.machine.move(State.IDENTIFY)
        self.identity, self._code, self.way = None, None, None
        self._show(Page.IDENTIFY)

    async def choose(self, item_id: str) -> None:
        """The citizen tapped an item: verify a held 苏服码 for it, then its guide."""
        if self._busy:
            return
        item = self.services.items.get(item_id)
        self.item = item
        self.problem = None
        self._busy = True
        try:
            if self._code is not None and item.manifest.identity.required:
                code, self._code = self._code, None  # one use, whatever the answer
                try:
                    identity = await self.services.platform.verify_code(code, item_code=item.item_code)
                except PlatformError as exc:
                    self._problem(exc.message_key, (Action.IDENTIFY, Action.CATALOGUE, Action.EXIT))
                    return
                self._remember(identity)
                self.identity = identity
                session = self.machine.session
                if session is not None:
                    session.identity = identity
            if self.machine.state is State.IDENTIFY:
                self.machine.move(State.CATALOGUE)  # re-identified for this item
            identity = self.identity if item.manifest.identity.required or self.identity else None
            journey = self.engine.journey(item, identity, locale=self.locale)
            try:
                journey.choose()
            except JourneyFailure as exc:
                journey.detach()
                self._problem(exc.message_key, (Action.CATALOGUE, Action.EXIT), exc)
                return
            self.journey = journey
            self.answers, self.field_index, self.field_errors = {}, 0, []
            self.commitment_accepted = False
            self._counted = False
            if self.telemetry is not None:
                self.telemetry.journey_started(item.id)
            self._show(Page.GUIDE)
        finally:
            self._busy = False

    # -- the item's steps --------------------------------------------------------------------
    @property
    def fields(self) -> list[Any]:
        return list(self.item.manifest.fields) if self.item is not None else []

    @property
    def current_field(self) -> Any | None:
        fields = self.fields
        return fields[self.field_index] if 0 <= self.field_index < len(fields) else None

    def field_options(self) -> list[tuple[str, str]]:
        """(value, label) of the current choice field, narrowed by the item's hook."""
        item_field = self.current_field
        if not isinstance(item_field, ChoiceField) or self.journey is None:
            return []
        allowed = set(self.journey.options(item_field.id))
        return [(o.value, o.label.get(self.locale)) for o in item_field.options if o.value in allowed]

    def start_item(self) -> None:
        """开始办理 on the guide."""
        self.field_index = 0
        self._next_page_after(-1)

    def set_answer(self, field_id: str, value: Any) -> None:
        self.answers[field_id] = value
        self.field_errors = [e for e in self.field_errors if e.field != field_id]
        self.machine.activity()

    def next_field(self) -> None:
        """下一步 on a field page: this field is checked before moving on."""
        item_field = self.current_field
        if item_field is None or self.journey is None:
            return
        errors = [e for e in self.journey.check(self.answers) if e.field == item_field.id]
        if errors:
            self.field_errors = errors
            self._changed()
            return
        self.field_errors = []
        self._next_page_after(self.field_index)

    def previous(self) -> None:
        """返回 inside an item: one page back (the guide, a field, the consent...)."""
        page = self.page
        if page is Page.GUIDE:
            self.back_to_catalogue()
        elif page is Page.FIELD:
            if self.field_index == 0:
                self._show(Page.GUIDE)
            else:
                self.field_index -= 1
                self._show(Page.FIELD)
        elif page in (Page.CONSENT, Page.COMMITMENT, Page.CONFIRM):
            if self.journey is not None:
                self.journey.back()
            earlier = self._pages_after_fields()
            at = earlier.index(page)
            if at > 0:
                self._show(earlier[at - 1])
            elif self.fields:
                self.field_index = len(self.fields) - 1
                self._show(Page.FIELD)
            else:
                self._show(Page.GUIDE)

    def _pages_after_fields(self) -> list[Page]:
        assert self.item is not None
        manifest = self.item.manifest
        pages = []
        if manifest.kind is Kind.PRINT and manifest.certificates:
            pages.append(Page.CONSENT)
        if manifest.commitment is not None:
            pages.append(Page.COMMITMENT)
        pages.append(Page.CONFIRM)
        return pages

    def _next_page_after(self, index: int) -> None:
        if index + 1 < len(self.fields):
            self.field_index = index + 1
            self._show(Page.FIELD)
            return
        assert self.journey is not None
        try:
            if self.machine.state is State.ITEM_STEPS:
                self.journey.answer(self.answers)
        except JourneyFailure as exc:
            # The item's own rules (validate hook) found a problem across fields.
            self.field_errors = list(exc.field_errors)
            first = next((i for i, f in enumerate(self.fields) for e in self.field_errors if e.field == f.id), 0)
            self.field_index = first
            self._show(Page.FIELD)
            return
        self._show(self._pages_after_fields()[0])

    def consent_certificates(self) -> list[str]:
        """免证办: the certificate types the kiosk will fetch for this item (translated by
        the UI as `certificate.<type>`)."""
        if self.item is None:
            return []
        manifest = self.item.manifest
        if manifest.certificate_field is not None:
            chosen = self.answers.get(manifest.certificate_field)
            return [str(chosen)] if chosen else []
        return [str(t) for t in manifest.certificates]

    def agree(self) -> None:
        """同意 on the consent page, or 本人承诺 on the commitment page."""
        if self.page is Page.COMMITMENT:
            self.commitment_accepted = True
        pages = self._pages_after_fields()
        self._show(pages[pages.index(self.page) + 1])

    def answer_summary(self) -> list[tuple[str, str]]:
        """(label, shown value) for the confirm page."""
        rows = []
        for item_field in self.fields:
            value = self.answers.get(item_field.id)
            if value is None or value == "":
                continue
            shown = str(value)
            if isinstance(item_field, ChoiceField):
                shown = next((o.label.get(self.locale) for o in item_field.options if o.value == value), shown)
            elif isinstance(value, bool):
                shown = self.services.translator("input.yes" if value else "input.no", self.locale)
            rows.append((item_field.label.get(self.locale), shown))
        return rows

    def confirm(self) -> None:
        """确认办理: the kiosk works (print / query / submit) and then shows the result."""
        if self.journey is None or self._busy:
            return
        try:
            self.journey.confirm(self.commitment_accepted)
        except JourneyFailure as exc:
            self._problem(exc.message_key, (Action.BACK, Action.EXIT), exc)
            return
        self._show(Page.WORKING)
        self._tasks.spawn(self._work())

    async def _work(self) -> None:
        journey = self.journey
        assert journey is not None and self.item is not None
        self._busy = True
        try:
            journey.locale = self.locale
            screen = await journey.work()
        except JourneyFailure as exc:
            self._busy = False
            self._finished("failed")
            # Nothing was printed or submitted that needs the citizen: say what to do.
            actions = (Action.RETRY, Action.EXIT) if exc.retryable else (Action.CATALOGUE, Action.EXIT)
            self._problem(exc.message_key, actions, exc)
            return
        self._busy = False
        report = journey.report()
        self.result, self.outcome = screen, report.outcome
        if self.telemetry is not None:
            if report.documents_printed:
                self.telemetry.printed("a4", report.documents_printed)
            if report.outcome is Outcome.QUEUED:
                self.telemetry.submission_queued()
            receipt_failed = any(w.message_key == "items.journey.receipt_failed" for w in report.warnings)
            if self.item.manifest.kind is Kind.SUBMIT and not receipt_failed:
                self.telemetry.printed("receipt")
        self._show(Page.RESULT)

    def receipt_offered(self) -> bool:
        return self.journey is not None and self.journey.receipt_offered and self.receipt_state == ""

    def print_receipt(self) -> None:
        """打印凭条 on a query's result."""
        if self.journey is None or self.result is None or self.receipt_state:
            return
        self.receipt_state = "printing"
        self._changed()

        async def go() -> None:
            assert self.journey is not None and self.result is not None
            ok = await self.journey.optional_receipt(self.result)
            self.receipt_state = "printed" if ok else "failed"
            if ok and self.telemetry is not None:
                self.telemetry.printed("receipt")
            self._changed()

        self._tasks.spawn(go())

    def take_away(self) -> list[str]:
        """Reminders for the result page: what to take from the kiosk."""
        keys = []
        if self.item is not None and self.item.manifest.kind is Kind.PRINT:
            keys.append("result.take_prints")
        if self.item is not None and self.item.manifest.kind is Kind.SUBMIT:
            keys.append("result.take_receipt")
        if self.way in (Way.IDCARD, Way.SSC):
            keys.append(f"result.take_card_{self.way}")
        return keys

    def done(self) -> None:
        """完成 on the result page: on to the rating."""
        if self.journey is None or self.machine.state is not State.RESULT:
            return
        self.journey.to_rating()
        self._show(Page.RATING)

    async def rate(self, level: RatingLevel | str, reasons: Iterable[str] = ()) -> None:
        """一次一评, then the session ends (and is wiped)."""
        if self.journey is None or self._busy:
            return
        level = RatingLevel(level)
        self._busy = True
        try:
            ok = await self.journey.rate(level, tuple(reasons))
        finally:
            self._busy = False
        if ok and self.telemetry is not None and self.item is not None:
            self.telemetry.rated(self.item.id, str(level))
        self.finish()

    def finish(self) -> None:
        """Skip the rating (or rated): the visit ends."""
        if self.item is not None and self.outcome is not None and self.outcome is not Outcome.FAILED:
            self._finished("completed")
        if self.journey is not None:
            journey, self.journey = self.journey, None
            journey.finish()
            journey.detach()
        elif self.machine.state in CITIZEN_STATES:
            self.machine.end(EndReason.COMPLETED)

    def _finished(self, outcome: str) -> None:
        """Count the journey's end once: completed, failed, or abandoned at the wipe."""
        if self._counted or self.item is None or self.journey is None and outcome != "abandoned":
            return
        self._counted = True
        if self.telemetry is not None:
            try:
                self.telemetry.journey_finished(self.item.id, outcome)
            except Exception:  # counting must never stop a citizen's visit
                _log.exception("telemetry failed")
        if outcome == "failed":
            self.outcome = self.outcome or Outcome.FAILED

    # -- problems --------------------------------------------------------------------------
    def _problem(self, key: str, actions: tuple[Action, ...], failure: JourneyFailure | None = None) -> None:
        self.problem = Problem(key, actions)
        if failure is not None and failure.kind is FailureKind.IDENTITY:
            self.problem = Problem(key, (Action.IDENTIFY, Action.CATALOGUE, Action.EXIT))
        self._show(Page.PROBLEM)

    def act(self, action: Action | str) -> None:
        """A button on the problem page."""
        action = Action(action)
        self.problem = None
        if action is Action.EXIT:
            self.exit()
        elif action is Action.CATALOGUE:
            self.back_to_catalogue()
        elif action is Action.IDENTIFY:
            # Show the code again (refreshed) or another card; the chosen item carries on.
            if self.machine.state is State.CATALOGUE:
                self.machine.move(State.IDENTIFY)
            elif self.machine.state in (State.ITEM_STEPS, State.CONFIRM):
                self.machine.move(State.CATALOGUE)
                self.machine.move(State.IDENTIFY)
            self.identity, self._code = None, None
            self._show(Page.IDENTIFY)
        elif action is Action.BACK:
            # Back to the last page before the one that failed (confirm, for a refusal there).
            self._show(self._pages_after_fields()[-1] if self.item else Page.CATALOGUE)
        elif action is Action.RETRY:
            if self.item is not None:
                item_id = self.item.id
                self.back_to_catalogue()
                self._tasks.spawn(self.choose(item_id))

    # -- service and maintenance -----------------------------------------------------------
    def _credential_scanned(self, text: str) -> None:
        if self.machine.state in (State.ATTRACT, State.OUT_OF_SERVICE, State.IDENTIFY):
            if self.machine.state is State.IDENTIFY:
                self.machine.end(EndReason.CANCELLED)
            self._credential = text
            self.maintenance_notice = None
            self._show(Page.MAINTENANCE_LOGIN)

    async def enter_pin(self, pin: str) -> bool:
        """The engineer typed the PIN for the credential they showed. The check (a slow
        key derivation, on purpose) runs off the loop."""
        if self._credential is None or self.gate is None:
            self.maintenance_notice = Notice("maintenance.no_gate")
            self._changed()
            return False
        result = await asyncio.to_thread(self.gate.attempt, self._credential, pin)
        if self.page is not Page.MAINTENANCE_LOGIN:
            return False  # cancelled meanwhile
        if not getattr(result, "ok", False):
            reason = getattr(result, "reason", "refused")
            self.maintenance_notice = Notice(f"maintenance.refused.{reason}")
            _log.warning("maintenance login refused: %s", reason)
            if reason in ("malformed", "bad_signature", "expired", "not_yet_valid", "out_of_scope", "revoked"):
                self._credential = None
            self._changed()
            return False
        _log.info("maintenance opened by credential %s", getattr(result, "cred_id", "?"))
        self._credential = None
        self.maintenance_notice = None
        self.machine.enter_maintenance()
        self._show(Page.MAINTENANCE)
        return True

    def leave_maintenance(self) -> None:
        if self.machine.state is State.MAINTENANCE:
            self.selftests = []
            self.machine.leave_maintenance()

    async def selftest(self) -> list[Any]:
        self.selftests = await self.services.devices.selftest()
        self._changed()
        return self.selftests

    def paper_reloaded(self, device_key: str) -> None:
        """Branch staff reloaded paper: the printer re-reads its status now."""
        device = self.services.devices.devices.get(device_key)
        refresh = getattr(device, "refresh_status", None) or getattr(device, "refresh", None)
        if refresh is not None:
            self._tasks.spawn(refresh())
        _log.info("maintenance: paper reloaded on %s (acknowledged)", device_key)

    # -- privacy -----------------------------------------------------------------------------
    def _remember(self, identity: Identity) -> None:
        remember = getattr(self.services, "redactor_remember", None)
        if remember is not None:
            remember(identity)

    def _redact(self, code: str) -> None:
        redactor = getattr(self.services, "redactor", None)
        if redactor is not None:
            redactor.remember(code, kind="code")
