"""The journey engine against in-memory fakes: the state machine walk, timings, the wipe, and
every platform, device, outbox and hook failure turned into a typed JourneyFailure."""

from __future__ import annotations

import asyncio

import pytest

from drivers.base import DeviceFailure, ErrorKind, OperatorAction
from kiosk.identity.model import IdentitySource
from kiosk.items.hooks import FieldError, ScreenResult
from kiosk.items.loader import load_item
from kiosk.items.registry import ItemRegistry
from kiosk.items.testing import (
    MINIMAL_TOML,
    YOUNG_ID_NUMBER,
    Kit,
    assert_left_nothing,
    certificate,
    citizen,
    write_item,
)
from kiosk.journey import FailureKind, JourneyLimits, Outcome, OutboxQueue
from kiosk.platform.api import CertificateType, PlatformProtocolError, PlatformUnavailable, RatingLevel, Rejected
from kiosk.session import EndReason, State

ITEMS = ItemRegistry.load()
PRINT = ITEMS.get("ssc_participation_cert")
SUBMIT = ITEMS.get("flexible_employment_enrol")
QUERY = ITEMS.get("housing_fund_balance")
SUBMIT_ANSWERS = {"start_month": "2026-04", "contribution_base": "100", "medical": False, "phone": "13912345678"}
JOURNEY = [
    State.IDENTIFY, State.CATALOGUE, State.ITEM_STEPS, State.CONFIRM, State.WORKING, State.RESULT, State.RATING
]


def young():
    return citizen(IdentitySource.SSC, number=YOUNG_ID_NUMBER)


async def submit(kit: Kit, **kw):
    return await kit.run(SUBMIT, young(), SUBMIT_ANSWERS, commitment_accepted=True, **kw)


# -- the walk ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_print_journey_walks_every_state_and_ends_wiped():
    kit = Kit()
    seen = []
    kit.machine.subscribe(lambda event: seen.append(event.current))
    sessions = []  # the result screen arrives while the session is alive
    report = await kit.engine.run(
        PRINT, citizen(), {"period": "6"}, rating=RatingLevel.VERY_SATISFIED,
        on_result=lambda screen: sessions.append((kit.machine.state, kit.machine.session)),
    )
    assert report.ok and report.outcome is Outcome.PRINTED
    assert [step.state for step in report.steps] == JOURNEY
    assert all(step.ok and step.seconds > 0 for step in report.steps)
    assert seen == JOURNEY + [State.ATTRACT]
    assert report.end_reason is EndReason.COMPLETED
    assert report.rated is RatingLevel.VERY_SATISFIED
    assert report.identity == "code 1101**********002X 张*"
    state, session = sessions[0]
    assert state is State.RESULT
    # The SessionData object the UI saw during the result is emptied by the wipe.
    assert session.identity is None and session.form == {} and session.documents == [] and session.result is None
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_job_names_carry_no_personal_data():
    kit = Kit()
    await kit.run(PRINT, citizen(), {"period": "6"})
    (job_name, _), = kit.a4.jobs
    assert job_name == "ssc_participation_cert-1-1"


@pytest.mark.asyncio
async def test_the_engine_runs_journey_after_journey():
    kit = Kit()
    for _ in range(3):
        report = await kit.run(PRINT, citizen(), {"period": "6"})
        assert report.ok
    assert len(kit.a4.jobs) == 3 and kit.wipes == 3


@pytest.mark.asyncio
async def test_rating_maps_to_a_platform_rating_with_the_case_number():
    kit = Kit()
    report = await submit(kit, rating=RatingLevel.DISSATISFIED)
    (rating,) = kit.platform.ratings
    assert rating.case_number == report.case_number and rating.item_code == SUBMIT.item_code
    assert rating.level.is_bad


# -- before anything is done --------------------------------------------------------------


@pytest.mark.asyncio
async def test_missing_device_stops_at_the_catalogue():
    kit = Kit().without("a4")
    report = await kit.run(PRINT, citizen(), {"period": "6"})
    assert report.failure.kind is FailureKind.DEVICE and report.failure.stage is State.CATALOGUE
    assert report.failure.message_key == "items.journey.device_unavailable"
    assert kit.platform.fetched == []
    assert report.end_reason is EndReason.CANCELLED
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_answers_are_checked_by_type_then_by_hooks():
    kit = Kit()
    report = await kit.run(PRINT, citizen(), {"period": "6", "colour": "red"})
    assert report.failure.field_errors == (FieldError("colour", "items.answer.unknown_field"),)
    assert [s.state for s in report.steps][-1] is State.ITEM_STEPS and not report.steps[-1].ok


@pytest.mark.asyncio
async def test_an_item_without_identity_needs_one_unless_it_says_so():
    kit = Kit()
    report = await kit.run(PRINT, None, {"period": "6"})
    assert report.failure.message_key == "items.journey.identity_required"


# -- print failures ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_printer_fault_keeps_the_drivers_message():
    kit = Kit()
    kit.a4.error = DeviceFailure(
        "paper out", code="printer.paper_out", kind=ErrorKind.USER, action=OperatorAction.CLEAR,
        message_key="device.unavailable",
    )
    report = await kit.run(PRINT, citizen(), {"period": "6"})
    assert report.failure.kind is FailureKind.DEVICE
    assert report.failure.message_key == "device.unavailable" and report.failure.cause == "printer.paper_out"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_a_printer_that_hangs_times_out():
    kit = Kit()

    async def hang(pdf, job_name):
        await asyncio.sleep(10)

    kit.a4.print_pdf = hang
    kit.engine.limits = JourneyLimits(print_s=0.05)
    report = await kit.run(PRINT, citizen(), {"period": "6"})
    assert report.failure.message_key == "device.timeout"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "key", "retryable"),
    [
        (PlatformUnavailable(), "platform.unavailable", True),
        (PlatformProtocolError(), "platform.protocol", True),
        (ValueError("client bug"), "platform.failed", False),
    ],
)
async def test_platform_errors_become_typed_failures(error, key, retryable):
    kit = Kit()
    kit.platform.fail["fetch_certificates"] = error
    report = await kit.run(PRINT, citizen(), {"period": "6"})
    assert report.failure.kind is FailureKind.PLATFORM and report.failure.stage is State.WORKING
    assert (report.failure.message_key, report.failure.retryable) == (key, retryable)
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_a_slow_platform_times_out():
    kit = Kit()

    async def slow(identity, types, params=None):
        await asyncio.sleep(10)

    kit.platform.fetch_certificates = slow
    kit.engine.limits = JourneyLimits(platform_s=0.05)
    report = await kit.run(PRINT, citizen(), {"period": "6"})
    assert report.failure.message_key == "platform.unavailable" and report.failure.cause == "TimeoutError"


@pytest.mark.asyncio
async def test_missing_or_unusable_certificates_print_nothing(tmp_path):
    two = MINIMAL_TOML.format(id="two_certs", code="TEST-0002").replace(
        'certificates = ["ssc_participation"]', 'certificates = ["ssc_participation", "ssc_rights_record"]'
    )
    item = load_item(write_item(tmp_path, "two_certs", two))
    kit = Kit()
    kit.platform.certificates[CertificateType.SSC_RIGHTS_RECORD] = certificate(
        CertificateType.SSC_RIGHTS_RECORD, pdf=b"<html>not a pdf</html>"
    )
    report = await kit.run(item, citizen(), {"copies": 1})
    assert report.failure.message_key == "items.journey.certificate_invalid"
    assert kit.a4.jobs == []  # the first, valid one was not printed either
    del kit.platform.certificates[CertificateType.SSC_RIGHTS_RECORD]
    report = await kit.run(item, citizen(), {"copies": 1})
    assert report.failure.message_key == "items.journey.certificate_missing"
    kit.platform.certificates[CertificateType.SSC_RIGHTS_RECORD] = certificate(
        CertificateType.SSC_RIGHTS_RECORD, status="revoked"
    )
    report = await kit.run(item, citizen(), {"copies": 1})
    assert report.failure.cause == "status=revoked" and kit.a4.jobs == []


@pytest.mark.asyncio
async def test_cancelling_mid_print_still_wipes():
    kit = Kit()
    started = asyncio.Event()

    async def block(pdf, job_name):
        started.set()
        await asyncio.sleep(10)

    kit.a4.print_pdf = block
    task = asyncio.create_task(kit.run(PRINT, citizen(), {"period": "6"}))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kit.machine.session is None and kit.machine.state is State.ATTRACT


# -- submissions --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_outbox_refusal_means_nothing_was_submitted():
    kit = Kit()
    kit.queue.put_error = OSError("disk full")
    report = await submit(kit)
    assert report.failure.kind is FailureKind.NOT_SAVED and report.failure.retryable
    assert report.failure.message_key == "items.journey.not_saved"
    assert kit.platform.submissions == {} and kit.receipt.printed == [] and report.local_ref is None
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_platform_rejection_after_storing_is_a_failure_with_the_local_ref():
    kit = Kit()
    kit.platform.fail["submit"] = Rejected()
    report = await submit(kit)
    assert report.failure.message_key == "platform.rejected"
    assert report.local_ref in kit.queue.records
    assert kit.receipt.printed == []


@pytest.mark.asyncio
@pytest.mark.parametrize("error", [PlatformUnavailable(), ConnectionResetError()])
async def test_a_sender_error_after_storing_leaves_it_queued(error):
    kit = Kit()
    kit.queue.send_error = error
    report = await submit(kit)
    assert report.ok and report.outcome is Outcome.QUEUED
    assert report.local_ref in [line.value for line in kit.receipt.printed[0].lines]
    assert "自动提交" in kit.shown[0].note


@pytest.mark.asyncio
async def test_the_same_record_sent_twice_is_one_case():
    kit = Kit()
    report = await submit(kit)
    record = kit.queue.records[report.local_ref]
    again = await kit.queue.send_now(record.local_ref, 1.0)
    assert again.case_number == report.case_number and len(kit.platform.submissions) == 1


@pytest.mark.asyncio
async def test_receipt_failure_after_submission_is_a_warning():
    kit = Kit()
    kit.receipt.error = DeviceFailure("jam", code="printer.jammed")
    report = await submit(kit)
    assert report.ok and report.outcome is Outcome.SUBMITTED
    (warning,) = report.warnings
    assert warning.message_key == "items.journey.receipt_failed" and warning.cause == "printer.jammed"
    assert report.case_number in [line.value for line in kit.shown[0].lines]


@pytest.mark.asyncio
async def test_rating_failure_is_a_warning():
    kit = Kit()
    kit.platform.fail["rate"] = PlatformUnavailable()
    report = await submit(kit, rating=RatingLevel.SATISFIED)
    assert report.ok and report.rated is None
    assert report.warnings[0].message_key == "items.journey.rating_failed"


@pytest.mark.asyncio
async def test_outbox_queue_joins_outbox_and_sender():
    kit = Kit()

    class Outbox:
        put = kit.queue.put

    class Sender:
        send_now = kit.queue.send_now

    kit.engine.queue = OutboxQueue(Outbox(), Sender())
    report = await submit(kit)
    assert report.outcome is Outcome.SUBMITTED


# -- hooks that misbehave ------------------------------------------------------------------


HOOKED = MINIMAL_TOML.format(id="hooked_item", code="TEST-0003").replace(
    'outputs = ["a4_pdf"]', 'outputs = ["a4_pdf"]\nhooks = ["validate", "render_result"]'
)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "stage"),
    [
        ("def validate(answers, ctx):\n    return 1 / 0\n\n\ndef render_result(result, ctx):\n    return None\n",
         State.ITEM_STEPS),
        ("def validate(answers, ctx):\n    return 'wrong'\n\n\ndef render_result(result, ctx):\n    return None\n",
         State.ITEM_STEPS),
        ("def validate(answers, ctx):\n    return []\n\n\ndef render_result(result, ctx):\n    return 'text'\n",
         State.RESULT),
    ],
)
async def test_a_failing_hook_is_an_item_failure(tmp_path, body, stage):
    item = load_item(write_item(tmp_path, "hooked_item", HOOKED, hooks=body))
    kit = Kit()
    report = await kit.run(item, citizen(), {"copies": 2})
    assert report.failure.kind is FailureKind.ITEM and report.failure.stage is stage
    assert report.failure.message_key == "items.journey.item_failed"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_a_failing_render_after_submitting_falls_back_to_the_default_screen(tmp_path):
    toml = (SUBMIT.path / "item.toml").read_text(encoding="utf-8").replace(
        'hooks = ["validate", "build_application"]', 'hooks = ["render_result"]'
    ).replace('id = "flexible_employment_enrol"', 'id = "enrol_copy"')
    item = load_item(write_item(tmp_path, "enrol_copy", toml, hooks="def render_result(result, ctx):\n    raise KeyError\n"))
    kit = Kit()
    answers = {"start_month": "2026-04", "contribution_base": "60", "medical": True, "phone": "13812345678"}
    report = await kit.run(item, young(), answers, commitment_accepted=True)
    assert report.outcome is Outcome.SUBMITTED and report.warnings[0].kind is FailureKind.ITEM
    assert isinstance(kit.shown[0], ScreenResult) and report.case_number in kit.shown[0].lines[0].value


@pytest.mark.asyncio
async def test_hooks_see_a_masked_identity_only(tmp_path):
    body = (
        "from kiosk.items.hooks import FieldError\n\nSEEN = []\n\n\n"
        "def validate(answers, ctx):\n    SEEN.append(repr(ctx.identity) + repr(vars(ctx.identity)))\n"
        "    return [FieldError('copies', 'items.answer.too_large', {'max': 1})]\n\n\n"
        "def render_result(result, ctx):\n    return None\n"
    )
    item = load_item(write_item(tmp_path, "hooked_item", HOOKED, hooks=body))
    report = await Kit().run(item, citizen(), {"copies": 2})
    assert report.failure.field_errors[0].params == {"max": 1}
    seen = item.hooks.functions["validate"].__globals__["SEEN"][0]
    assert "张三" not in seen and "11010519491231002X" not in seen and "1101**********002X" in seen


@pytest.mark.asyncio
async def test_optional_receipt_without_a_printer_is_a_warning():
    kit = Kit().without("receipt")
    from kiosk.platform.api import QueryResult

    kit.platform.query_results[QUERY.item_code] = QueryResult(QUERY.item_code, 0.0, {"balance": 1.0})
    report = await kit.run(QUERY, citizen(), {}, print_receipt=True)
    assert report.ok and report.warnings[0].message_key == "items.journey.device_unavailable"
