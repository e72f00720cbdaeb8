"""The A4 printer, spoken to in IPP/1.1 over aiohttp: a printer's own IPP endpoint, or a CUPS
queue (CUPS queues speak IPP too; docs/devices/a4.md says why we talk to printers directly).

Status comes from Get-Printer-Attributes: `printer-state` and `printer-state-reasons` become
the shared status model (state, supplies "paper" and "toner", last_error with the operator
action). `print_pdf()` sends one PDF with Print-Job (retrying while the printer answers
server-error-busy), then follows the job with Get-Job-Attributes until it is completed,
aborted or canceled. The device's command timeout bounds the whole job; a timeout or a
cancelled caller sends Cancel-Job, so a citizen's document never prints after they left.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from drivers.a4 import ipp
from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceInfo,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    ErrorKind,
    Lifecycle,
    OperatorAction,
    SupplyLevel,
)
from kiosk.privacy import Redactor

if TYPE_CHECKING:
    from kiosk.config import A4PrinterSection

_log = logging.getLogger(__name__)

PDF = "application/pdf"
A4_MEDIA = "iso_a4_210x297mm"
_PRINTER_ATTRIBUTES = (
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-is-accepting-jobs",
    "printer-make-and-model",
    "printer-device-id",
    "printer-firmware-string-version",
    "printer-serial-number",
)
_JOB_ATTRIBUTES = ("job-id", "job-state", "job-state-reasons", "job-state-message")
# Retried with backoff: the printer is printing someone else's job or briefly unable to.
_RETRYABLE = {
    ipp.Status.SERVER_ERROR_BUSY,
    ipp.Status.SERVER_ERROR_SERVICE_UNAVAILABLE,
    ipp.Status.SERVER_ERROR_TEMPORARY_ERROR,
}
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


# -- typed failures -------------------------------------------------------------------------
class PrinterFailure(DeviceFailure):
    """Base of the A4 printer's failures; each subclass fixes code, kind and action."""

    message_key = "device.a4.job_failed"
    default_code = "printer.failed"
    default_kind = ErrorKind.HARDWARE
    default_action = OperatorAction.MAINTENANCE

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(
            detail,
            code=code or self.default_code,
            kind=self.default_kind,
            action=self.default_action,
        )


class PaperOut(PrinterFailure):
    message_key = "device.a4.paper_out"
    default_code = "printer.paper_out"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.CLEAR  # branch staff load paper


class PaperJam(PrinterFailure):
    message_key = "device.a4.jam"
    default_code = "printer.jam"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.CLEAR  # branch staff open the cover and clear it


class TonerOut(PrinterFailure):
    message_key = "device.a4.toner_out"
    default_code = "printer.toner_out"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.CLEAR  # a cartridge swap is branch staff's job


class PrinterFault(PrinterFailure):
    """The printer reports an error we have no specific remedy for: send an engineer."""

    message_key = "device.a4.fault"
    default_code = "printer.fault"


class PrintJobFailed(PrinterFailure):
    """This job did not print (aborted, canceled at the printer, refused). The printer
    itself may be fine: trying again is the remedy."""

    default_code = "printer.job_failed"
    default_action = OperatorAction.RESET


class PrinterOffline(DeviceUnavailable):
    message_key = "device.a4.offline"

    def __init__(self, detail: str = "", *, code: str = "printer.offline") -> None:
        super().__init__(
            detail, code=code, kind=ErrorKind.HARDWARE, action=OperatorAction.MAINTENANCE
        )


class PrinterMisconfigured(DeviceUnavailable):
    """The URI is wrong (scheme, path, queue name): the kiosk's configuration must change."""

    message_key = "device.a4.offline"

    def __init__(self, detail: str, *, code: str = "printer.configuration") -> None:
        super().__init__(
            detail, code=code, kind=ErrorKind.SOFTWARE, action=OperatorAction.CONFIGURATION
        )


class PrintTimeout(DeviceTimeout):
    message_key = "device.a4.job_failed"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="printer.timeout", kind=ErrorKind.HARDWARE, action=OperatorAction.RESET
        )


# -- printer-state-reasons → status (pure) ---------------------------------------------------
_SUFFIXES = ("-report", "-warning", "-error")
_OFFLINE_REASONS = {
    "offline", "shutdown", "timed-out", "connecting-to-device", "paused", "deactivated"
}
# Reasons that say nothing is wrong with printing, whatever their suffix.
_HARMLESS_REASONS = {"none", "moving-to-paused", "printer-restarted"}


def split_reason(reason: str) -> tuple[str, str]:
    """`media-empty-error` → (`media-empty`, `error`); no suffix → severity ``""``."""
    for suffix in _SUFFIXES:
        if reason.endswith(suffix) and len(reason) > len(suffix):
            return reason[: -len(suffix)], suffix[1:]
    return reason, ""


@dataclass(frozen=True)
class PrinterCondition:
    """What printer-state and printer-state-reasons mean for the kiosk."""

    state: DeviceState
    supplies: dict[str, SupplyLevel]
    failure: DeviceFailure | None  # the most pressing problem now, or None
    reasons: frozenset[str] = frozenset()  # keywords without their severity suffix

    @property
    def code(self) -> str | None:
        return None if self.failure is None else self.failure.code


def interpret(
    printer_state: int | None, reasons: Iterable[str], *, accepting: bool = True
) -> PrinterCondition:
    """Map IPP printer-state and printer-state-reasons onto the shared status model.

    Supplies: media-empty/media-needed → paper out, media-low → paper low, media-jam → paper
    jammed; toner-empty/marker-supply-empty → toner out, toner-low/marker-supply-low → low.
    A jam, an empty tray or empty toner is a user error branch staff clear; offline reasons
    make the printer offline; any other reason with severity error (or, per RFC 8011, with no
    suffix at all) is a hardware fault for an engineer. -report and -warning reasons we do
    not know are only information.
    """
    paper, toner = SupplyLevel.FULL, SupplyLevel.FULL
    problems: list[tuple[int, DeviceState, DeviceFailure]] = []
    keywords: set[str] = set()
    for raw in reasons:
        keyword, severity = split_reason(raw)
        keywords.add(keyword)
        if keyword == "media-jam":
            paper = SupplyLevel.JAMMED
            problems.append((0, DeviceState.USER_ERROR, PaperJam(raw)))
        elif keyword in ("media-empty", "media-needed"):
            if paper is not SupplyLevel.JAMMED:
                paper = SupplyLevel.OUT
            problems.append((3, DeviceState.USER_ERROR, PaperOut(raw)))
        elif keyword == "media-low":
            if paper is SupplyLevel.FULL:
                paper = SupplyLevel.LOW
        elif keyword in ("toner-empty", "marker-supply-empty"):
            toner = SupplyLevel.OUT
            problems.append((4, DeviceState.USER_ERROR, TonerOut(raw)))
        elif keyword in ("toner-low", "marker-supply-low"):
            if toner is SupplyLevel.FULL:
                toner = SupplyLevel.LOW
        elif keyword in _OFFLINE_REASONS:
            offline = PrinterOffline(raw, code=f"printer.{keyword}")
            problems.append((1, DeviceState.OFFLINE, offline))
        elif keyword in _HARMLESS_REASONS or (keyword.startswith("cups-") and severity != "error"):
            continue  # CUPS' own bookkeeping (cups-waiting-for-job-completed...) has no suffix
        elif severity in ("error", ""):
            fault = PrinterFault(raw, code=f"printer.{keyword}")
            problems.append((2, DeviceState.HARDWARE_ERROR, fault))
    if printer_state == ipp.PrinterState.STOPPED and not problems:
        stopped = PrinterFault("printer-state is stopped", code="printer.stopped")
        problems.append((2, DeviceState.HARDWARE_ERROR, stopped))
    if not accepting and not problems:
        rejecting = PrinterOffline("not accepting jobs", code="printer.not_accepting")
        problems.append((1, DeviceState.OFFLINE, rejecting))
    supplies = {"paper": paper, "toner": toner}
    keywords.discard("none")
    if problems:
        _, state, failure = min(problems, key=lambda p: p[0])
        return PrinterCondition(state, supplies, failure, frozenset(keywords))
    state = DeviceState.BUSY if printer_state == ipp.PrinterState.PROCESSING else DeviceState.ONLINE
    return PrinterCondition(state, supplies, None, frozenset(keywords))


# -- helpers -------------------------------------------------------------------------------
def http_url(uri: str) -> URL:
    """`ipp://host[:port]/path` → `http://host:port/path` (631 by default), ipps → https."""
    try:
        url = URL(uri)
    except (ValueError, TypeError) as exc:
        raise PrinterMisconfigured(f"not a printer URI: {exc}") from None
    schemes = {"ipp": "http", "ipps": "https", "http": "http", "https": "https"}
    if url.scheme not in schemes or not url.host:
        raise PrinterMisconfigured(
            f"printer URI must be ipp://host[:port]/path or ipps://..., got {uri!r}"
        )
    port = url.explicit_port or (631 if url.scheme in ("ipp", "ipps") else url.port)
    return url.with_scheme(schemes[url.scheme]).with_port(port)


@functools.cache
def _redactor() -> Redactor:
    return Redactor()


def check_job_name(job_name: str) -> None:
    """Job names are visible in printer queues and logs: only a case reference is allowed
    (letters, digits, `.`, `_`, `-`; nothing that looks like an ID or phone number)."""
    if not _JOB_NAME.match(job_name) or _redactor().redact(job_name) != job_name:
        raise ValueError(
            "job_name must be a case reference (A-Z a-z 0-9 . _ -, at most 64 characters), "
            "never personal data"
        )


def _strings(group: ipp.Group | None, name: str) -> list[str]:
    if group is None or name not in group:
        return []
    out = []
    for value in group[name].all:
        if isinstance(value, ipp.StringWithLanguage):
            value = value.text
        if isinstance(value, str):
            out.append(value)
    return out


def _info(group: ipp.Group) -> DeviceInfo:
    device_id = dict(
        part.split(":", 1) for part in (_strings(group, "printer-device-id") or [""])[0].split(";")
        if ":" in part
    )
    firmware = _strings(group, "printer-firmware-string-version")
    return DeviceInfo(
        model=(_strings(group, "printer-make-and-model") or [""])[0],
        serial=(_strings(group, "printer-serial-number") or [""])[0],
        firmware=firmware[0] if firmware else "",
        vendor=device_id.get("MFG", device_id.get("MANUFACTURER", "")),
    )


def _job_state(value: Any) -> ipp.JobState | None:
    try:
        return ipp.JobState(value)
    except ValueError:
        return None  # a state this driver does not know: keep following the job


@dataclass
class PrintResult:
    job_id: int
    busy_retries: int  # how often the printer said server-error-busy before accepting
    seconds: float


@dataclass
class _Job:
    name: str
    id: int | None = None
    busy_retries: int = 0
    started: float = field(default_factory=time.monotonic)
    state: ipp.JobState | None = None


# -- the driver ----------------------------------------------------------------------------
class A4Printer(Device):
    device_class = DeviceClass.A4_PRINTER

    def __init__(
        self,
        name: str = "a4_printer",
        *,
        uri: str,
        timeout_s: float = 60.0,
        user_name: str = "kiosk",
        request_timeout_s: float = 10.0,
        poll_interval_s: float = 0.25,
        status_interval_s: float | None = 10.0,
        max_busy_retries: int = 10,
        media: str | None = A4_MEDIA,
    ) -> None:
        super().__init__(name, command_timeout=timeout_s)
        self.uri = uri
        self.user_name = user_name
        self.request_timeout_s = request_timeout_s
        self.poll_interval_s = poll_interval_s
        self.status_interval_s = status_interval_s
        self.max_busy_retries = max_busy_retries
        self.media = media
        self.current_job_id: int | None = None  # the job being followed, for observers
        self.last_job_id: int | None = None  # the printer's id of the last job sent
        self._url: URL | None = None
        self._session: aiohttp.ClientSession | None = None
        self._request_ids = itertools.count(1)
        self._condition: PrinterCondition | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle hooks -------------------------------------------------------------------
    async def _open(self) -> None:
        self._url = http_url(self.uri)
        self._session = aiohttp.ClientSession()
        try:
            await self._refresh()
        except PrinterOffline:
            # A network printer may be switched off when the kiosk starts: the device still
            # opens, its status says offline, and it comes back when the printer does.
            pass
        except DeviceFailure:
            await self._session.close()
            self._session = None
            raise

    async def _close(self) -> None:
        await self._stop_watcher()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 3)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _enable(self) -> None:
        if self.status_interval_s:
            self._watcher = asyncio.create_task(self._watch(self.status_interval_s))

    async def _disable(self) -> None:
        await self._stop_watcher()

    async def _selftest(self) -> str:
        await super()._selftest()
        condition = await self._refresh()
        if condition.failure is not None:
            raise condition.failure
        info = self._status.info
        paper = condition.supplies["paper"]
        return f"{info.model or 'IPP printer'}: {condition.state}, paper {paper}"

    async def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, interval: float) -> None:
        """Keep the status fresh between jobs, so the kiosk knows about paper before it
        offers printing and ops see a jam without waiting for the next citizen."""
        while True:
            await asyncio.sleep(interval)
            if self._command_lock.locked():
                continue  # a job is being followed; it refreshes the status itself
            with contextlib.suppress(DeviceFailure):
                await self._refresh()

    # -- status ----------------------------------------------------------------------------
    async def refresh(self) -> PrinterCondition:
        """Ask the printer how it is and update the status; returns the interpretation."""
        self._require(Lifecycle.OPEN, Lifecycle.CLAIMED, Lifecycle.ENABLED)
        return await self._refresh()

    async def _refresh(self) -> PrinterCondition:
        try:
            response = await self._ipp(
                ipp.Operation.GET_PRINTER_ATTRIBUTES, requested_attributes=_PRINTER_ATTRIBUTES
            )
            response.raise_for_status()
        except ipp.IppStatusError as exc:
            raise self._record(self._status_failure(exc)) from None
        except DeviceFailure as failure:
            raise self._record(failure) from None
        printer = response.group(ipp.GroupTag.PRINTER) or ipp.Group(ipp.GroupTag.PRINTER)
        state = printer.get("printer-state")
        condition = interpret(
            state if isinstance(state, int) else None,
            _strings(printer, "printer-state-reasons"),
            accepting=printer.get("printer-is-accepting-jobs", True) is not False,
        )
        self._apply(condition, _info(printer))
        return condition

    def _apply(self, condition: PrinterCondition, info: DeviceInfo | None = None) -> None:
        previous, self._condition = self._condition, condition
        changes: dict[str, Any] = {"state": condition.state, "supplies": condition.supplies}
        if info is not None and info != DeviceInfo():
            changes["info"] = info
        # A standing problem is one error, not one per poll: record it when it appears.
        if condition.failure is not None and (previous is None or previous.code != condition.code):
            changes["last_error"] = condition.failure.as_error()
            _log.warning("a4 %s: %s (%s)", self.name, condition.code, condition.failure)
        self._update(**changes)

    def _record(self, failure: DeviceFailure, state: DeviceState | None = None) -> DeviceFailure:
        """`_fail` unless the same failure is already what the status says."""
        if state is None:
            state = (
                DeviceState.OFFLINE if isinstance(failure, DeviceUnavailable)
                else DeviceState.USER_ERROR if failure.kind is ErrorKind.USER
                else DeviceState.HARDWARE_ERROR
            )
        error = self._status.last_error
        if self._status.state is state and error is not None and error.code == failure.code:
            return failure
        if state in (DeviceState.OFFLINE, DeviceState.HARDWARE_ERROR):
            self._condition = None  # whatever the printer says next is news
        return self._fail(failure, state)

    # -- printing --------------------------------------------------------------------------
    async def print_pdf(self, pdf: bytes, job_name: str) -> PrintResult:
        """Print one PDF and wait until the printer has printed it.

        `job_name` is a case reference, never personal data (it shows in printer queues).
        Raises PaperOut, PaperJam, TonerOut, PrinterOffline, PrintJobFailed or PrintTimeout;
        a timeout or a cancelled caller cancels the job at the printer.
        """
        self._require(Lifecycle.ENABLED)
        check_job_name(job_name)
        if not pdf.startswith(b"%PDF-"):
            raise ValueError("print_pdf() takes a PDF document")
        async with self._command_lock:
            job = _Job(job_name)
            try:
                async with asyncio.timeout(self.command_timeout):
                    try:
                        await self._submit(job, pdf)
                        await self._follow(job)
                    except asyncio.CancelledError:
                        # Cancelled by the caller or by the timeout: the document must not
                        # come out later, when the citizen may have gone.
                        await self._cancel_job(job)
                        raise
            except TimeoutError:
                raise self._timed_out(job) from None
            finally:
                self.current_job_id = None
        seconds = time.monotonic() - job.started
        _log.info("a4 %s: job %s (%s) printed in %.1fs", self.name, job.id, job.name, seconds)
        return PrintResult(job.id or 0, job.busy_retries, seconds)

    async def _submit(self, job: _Job, pdf: bytes) -> None:
        job_attributes = []
        if self.media:
            job_attributes.append(ipp.Attribute.of("media", ipp.ValueTag.KEYWORD, self.media))
        delay = 0.2
        while True:
            try:
                response = await self._ipp(
                    ipp.Operation.PRINT_JOB,
                    job_name=job.name,
                    document_format=PDF,
                    job_attributes=job_attributes,
                    data=pdf,
                )
                response.raise_for_status()
                break
            except ipp.IppStatusError as exc:
                if exc.status not in _RETRYABLE:
                    raise self._record(self._status_failure(exc), self._status.state) from None
                if job.busy_retries >= self.max_busy_retries:
                    raise self._record(
                        PrintJobFailed(f"still busy after {job.busy_retries} retries",
                                       code="printer.busy"),
                        self._status.state,
                    ) from None
                job.busy_retries += 1
                _log.info("a4 %s: printer busy (%s), retry in %.1fs", self.name, exc, delay)
                self._update(state=DeviceState.BUSY)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 2.0)
            except DeviceFailure as failure:
                raise self._record(failure) from None
        job_group = response.group(ipp.GroupTag.JOB)
        job_id = job_group.get("job-id") if job_group else None
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise self._record(PrinterFault("Print-Job answer without a job-id",
                                            code="printer.bad_response"))
        job.id = self.current_job_id = self.last_job_id = job_id
        _log.info("a4 %s: job %d (%s) submitted, %d bytes", self.name, job_id, job.name, len(pdf))

    async def _follow(self, job: _Job) -> None:
        assert job.id is not None
        while True:
            # The job first, then the printer: when the job has ended, the status then shows
            # the printer as it is after the job (idle again), not as it was during it.
            attributes = await self._job_attributes(job.id)
            condition = await self._poll_printer()
            if attributes is not None:
                state = attributes.get("job-state")
                job.state = _job_state(state)
                reasons = set(_strings(attributes, "job-state-reasons"))
                message = (_strings(attributes, "job-state-message") or [""])[0]
                if job.state is ipp.JobState.COMPLETED:
                    if "job-completed-with-errors" in reasons:
                        raise self._job_failure(job, "printer.completed_with_errors", reasons,
                                                message)
                    return
                if job.state is ipp.JobState.ABORTED:
                    if condition is not None and "media-jam" in condition.reasons:
                        raise self._record(PaperJam(f"job {job.id} aborted by a paper jam"))
                    raise self._job_failure(job, "printer.job_aborted", reasons, message)
                if job.state is ipp.JobState.CANCELED:
                    raise self._job_failure(job, "printer.job_canceled", reasons, message)
            if condition is not None and "media-jam" in condition.reasons:
                # Clearing a jam needs staff and takes minutes; the citizen should not stand
                # and wait, and the half-printed job must not resume unattended.
                await self._cancel_job(job)
                raise self._record(PaperJam(f"paper jam during job {job.id}"))
            await asyncio.sleep(self.poll_interval_s)

    async def _poll_printer(self) -> PrinterCondition | None:
        try:
            return await self._refresh()
        except DeviceFailure:
            return None  # recorded in the status; the job timeout decides when to give up

    async def _job_attributes(self, job_id: int) -> ipp.Group | None:
        try:
            response = await self._ipp(
                ipp.Operation.GET_JOB_ATTRIBUTES,
                job_id=job_id,
                requested_attributes=_JOB_ATTRIBUTES,
            )
            response.raise_for_status()
        except ipp.IppClientError as exc:
            if exc.status == ipp.Status.CLIENT_ERROR_NOT_FOUND:
                lost = PrintJobFailed(f"job {job_id} is gone from the printer",
                                      code="printer.job_lost")
                raise self._record(lost, self._status.state) from None
            return None
        except (ipp.IppStatusError, DeviceFailure):
            return None
        return response.group(ipp.GroupTag.JOB)

    def _job_failure(
        self, job: _Job, code: str, reasons: set[str], message: str
    ) -> DeviceFailure:
        detail = f"job {job.id}: {', '.join(sorted(reasons)) or code}"
        if message:
            detail += f" ({message})"
        if reasons & {"document-format-error", "document-unprintable-error",
                      "unsupported-document-format", "document-format-not-supported"}:
            code = "printer.document_rejected"
        return self._record(PrintJobFailed(detail, code=code), self._status.state)

    def _timed_out(self, job: _Job) -> DeviceFailure:
        """The most useful failure when the job did not finish in time."""
        waited = f"job {job.id} not printed within {self.command_timeout:g}s"
        condition = self._condition
        if self._status.state is DeviceState.OFFLINE:
            return self._record(PrinterOffline(waited))
        if condition is not None and condition.failure is not None:
            failure = condition.failure
            return self._record(type(failure)(f"{waited}: {failure}", code=failure.code),
                                condition.state)
        if job.id is None:
            return self._record(PrintJobFailed(f"printer busy for {self.command_timeout:g}s",
                                               code="printer.busy"), self._status.state)
        return self._record(PrintTimeout(waited), self._status.state)

    async def _cancel_job(self, job: _Job) -> None:
        """Cancel-Job, shielded so a second cancellation cannot stop it going out."""
        if job.id is None or (job.state is not None and job.state.terminal):
            return
        task = asyncio.ensure_future(self._send_cancel(job.id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    async def _send_cancel(self, job_id: int) -> None:
        try:
            response = await self._ipp(
                ipp.Operation.CANCEL_JOB, job_id=job_id, timeout=min(3.0, self.request_timeout_s)
            )
            response.raise_for_status()
            _log.info("a4 %s: job %d canceled", self.name, job_id)
        except (ipp.IppStatusError, DeviceFailure) as exc:
            # Already finished (client-error-not-possible) or printer gone: nothing to do.
            _log.warning("a4 %s: Cancel-Job %d: %s", self.name, job_id, exc)

    # -- the wire --------------------------------------------------------------------------
    async def _ipp(
        self,
        operation: ipp.Operation,
        *,
        timeout: float | None = None,
        **attributes: Any,
    ) -> ipp.Message:
        """One IPP request/response. Transport problems become PrinterOffline, a wrong URI
        PrinterMisconfigured, a garbled answer PrinterFault; IPP status is left to the caller."""
        if self._session is None or self._url is None:
            raise DeviceUnavailable("printer is not open", code="closed")
        message = ipp.request(
            operation,
            next(self._request_ids) & 0x7FFFFFFF or 1,
            self.uri,
            user_name=self.user_name,
            **attributes,
        )
        limit = self.request_timeout_s if timeout is None else timeout
        try:
            async with self._session.post(
                self._url,
                data=ipp.encode(message),
                headers={"Content-Type": ipp.MIME_TYPE},
                timeout=aiohttp.ClientTimeout(total=limit),
            ) as response:
                body = await response.read()
                if response.status != 200:
                    if response.status in (400, 404, 405, 426):
                        raise PrinterMisconfigured(
                            f"HTTP {response.status} from {self._url}", code="printer.bad_uri"
                        )
                    raise PrinterOffline(f"HTTP {response.status} from the printer")
        except aiohttp.ClientError as exc:
            raise PrinterOffline(f"cannot reach the printer: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise PrinterOffline(f"no answer from the printer within {limit:g}s") from None
        try:
            return ipp.decode(body)
        except ipp.IppDecodeError as exc:
            failure = PrinterFault(f"unreadable IPP answer: {exc}", code="printer.bad_response")
            raise failure from None

    @staticmethod
    def _status_failure(exc: ipp.IppStatusError) -> DeviceFailure:
        status = exc.status
        if status == ipp.Status.SERVER_ERROR_NOT_ACCEPTING_JOBS:
            return PrinterOffline(str(exc), code="printer.not_accepting")
        if status in (ipp.Status.CLIENT_ERROR_NOT_FOUND, ipp.Status.CLIENT_ERROR_GONE,
                      ipp.Status.CLIENT_ERROR_NOT_AUTHENTICATED,
                      ipp.Status.CLIENT_ERROR_NOT_AUTHORIZED, ipp.Status.CLIENT_ERROR_FORBIDDEN):
            return PrinterMisconfigured(str(exc), code="printer.refused")
        if status in (ipp.Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                      ipp.Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR):
            return PrintJobFailed(str(exc), code="printer.document_rejected")
        if status == ipp.Status.SERVER_ERROR_DEVICE_ERROR:
            return PrinterFault(str(exc), code="printer.device_error")
        if isinstance(exc, ipp.IppClientError):
            return PrintJobFailed(str(exc), code="printer.rejected")
        return PrinterFault(str(exc), code="printer.server_error")


async def create(
    section: A4PrinterSection,
    *,
    stack: contextlib.AsyncExitStack,
    name: str = "a4_printer",
) -> A4Printer:
    """The configured printer, unopened. `uri = "sim"` starts CUPS' ippeveprinter on a free
    localhost port first (test and demo machines), stopped when `stack` closes."""
    uri = section.uri
    if uri == "sim":
        from drivers.sim.ippeve import IppEvePrinter  # test and demo only

        simulator = IppEvePrinter()
        await simulator.start()
        stack.push_async_callback(simulator.stop)
        uri = simulator.uri
        printer = A4Printer(name, uri=uri, timeout_s=section.timeout_s)
        printer.simulator = simulator  # the peer, for the demo and tests to inspect
        return printer
    return A4Printer(name, uri=uri, timeout_s=section.timeout_s)
