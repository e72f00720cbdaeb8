"""The sandbox platform on a real 127.0.0.1 port, driven through HttpPlatformClient: codes,
certificates, submissions, cases, queries, ratings, the signed catalogue, the phone page,
and logs that stay free of personal data."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import time

import pytest
from cryptography.hazmat.primitives import serialization
from PIL import PdfParser

from kiosk.identity.id_number import is_valid
from kiosk.identity.model import Identity, IdentitySource
from kiosk.platform.api import (
    Application,
    CaseState,
    CertificateType,
    CodeExpired,
    CodeInvalid,
    CodeReplayed,
    NotAuthorized,
    NotFound,
    PlatformProtocolError,
    Rating,
    RatingLevel,
    Rejected,
)
from kiosk.platform.sandbox import cases as case_rules
from kiosk.platform.sandbox.app import SandboxSettings, create_app
from kiosk.platform.sandbox.catalogue import ITEMS, SigningKey, verify
from kiosk.platform.sandbox.certificates import SPECS
from kiosk.platform.sandbox.codes import CODE_LENGTH, CodeMinter, CodeStatus, status_of
from kiosk.platform.sandbox.seed import CITIZENS
from tests.kiosk.platform.conftest import make_client, start_server

PRINT_SSC = "320000-SB-DY-0001"
E_LICENCE = "320000-ZZ-DY-0001"
FLEXIBLE = "320000-SB-DJ-0101"
C01, C02 = CITIZENS[0], CITIZENS[1]


def _application(identity: Identity, **changes) -> Application:
    values = dict(
        item_id="flexible_employment_enrol",
        item_code=FLEXIBLE,
        applicant=identity,
        fields={"start_month": "2026-12", "insurance": ["pension", "medical"],
                "contribution_base_percent": 60,
                "contribution_base_rule": "provincial_average_wage", "phone": "13775106624"},
        commitment_accepted=True,
        created_at=1_780_000_000.0,
    )
    values.update(changes)
    return Application(**values)


# -- pure rules -----------------------------------------------------------------------------


def test_seed_citizens_are_valid_distinct_and_in_jiangsu():
    assert len(CITIZENS) >= 6
    assert len({c.id_number for c in CITIZENS}) == len(CITIZENS)
    for c in CITIZENS:
        assert is_valid(c.id_number), c.citizen_id
        assert c.id_number.startswith("32") and c.data["address"].startswith("江苏省")
        assert re.fullmatch(r"1[3-9]\d{9}", c.phone)
    assert any(c.id_number.endswith("X") for c in CITIZENS)


def test_codes_have_the_redactor_shape_and_a_mac():
    minter = CodeMinter(b"k" * 32)
    code = minter.mint()
    assert re.fullmatch(r"SFM1[0-9A-Z]{20,40}", code) and len(code) == CODE_LENGTH
    assert minter.is_authentic(code)
    assert not CodeMinter(b"x" * 32).is_authentic(code)  # another platform's key
    flipped = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert not minter.is_authentic(flipped)
    assert status_of(100.0, None, 159.9, 60) is CodeStatus.VALID
    assert status_of(100.0, None, 160.0, 60) is CodeStatus.EXPIRED
    assert status_of(100.0, 120.0, 500.0, 60) is CodeStatus.USED


def test_case_progression_rules():
    schedule = case_rules.CaseSchedule()
    assert case_rules.due_transitions(schedule, CaseState.RECEIVED, 0.0, 0.0, 59.0) == []
    due = case_rules.due_transitions(schedule, CaseState.RECEIVED, 0.0, 0.0, 10_000.0)
    assert [s for s, _ in due] == list(case_rules.PROGRESSION[1:])
    assert case_rules.manual_transition(CaseState.RECEIVED, None) is CaseState.ACCEPTED
    rejected = case_rules.manual_transition(CaseState.IN_REVIEW, CaseState.REJECTED)
    assert rejected is CaseState.REJECTED
    with pytest.raises(case_rules.InvalidTransition):
        case_rules.manual_transition(CaseState.COMPLETED, None)
    with pytest.raises(case_rules.InvalidTransition):
        case_rules.manual_transition(CaseState.IN_REVIEW, CaseState.ACCEPTED)
    number = case_rules.case_number(dt.date(2026, 11, 22), 7)
    assert number == "32261122000007" and not is_valid(number)


# -- 苏服码 -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_fresh_code_gives_identity_with_scoped_authorization(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c01") + "\r\n", item_code=PRINT_SSC)
    assert identity.source is IdentitySource.SUFU_CODE
    assert (identity.name, identity.id_number) == (C01.name, C01.id_number)
    assert identity.birth_date == dt.date(1985, 3, 12)
    auth = identity.authorization
    assert auth is not None and auth.certificate_types == ("ssc_participation",)
    assert 800 < auth.expires_at - time.time() <= 900
    assert auth.token not in repr(identity)


@pytest.mark.asyncio
async def test_expired_replayed_and_forged_codes_are_distinct_errors(sandbox, client):
    stale = await sandbox.new_code("c02")
    sandbox.clock.advance(61)
    with pytest.raises(CodeExpired):
        await client.verify_code(stale, item_code=PRINT_SSC)

    code = await sandbox.new_code("c02")
    await client.verify_code(code, item_code=PRINT_SSC)
    with pytest.raises(CodeReplayed):
        await client.verify_code(code, item_code=PRINT_SSC)

    fresh = await sandbox.new_code("c02")
    forged = fresh[:-1] + ("0" if fresh[-1] != "0" else "1")
    with pytest.raises(CodeInvalid):
        await client.verify_code(forged, item_code=PRINT_SSC)
    with pytest.raises(CodeInvalid):
        await client.verify_code("SFM1" + "A" * 28, item_code=PRINT_SSC)
    # the forged attempts did not burn the real code
    assert (await client.verify_code(fresh, item_code=PRINT_SSC)).name == C02.name


@pytest.mark.asyncio
async def test_overlong_and_non_ascii_codes_are_refused_before_sending(sandbox, client):
    for text in ("SFM1" + "A" * 300, "SFM1苏服码ABCDEFGHIJKLMNOPQRSTUV", "SFM1 ABC DEF GHI", "short"):
        with pytest.raises(CodeInvalid):
            await client.verify_code(text, item_code=PRINT_SSC)
    assert sandbox.store.count_access_tokens("test-kiosk-01") == 0  # nothing was sent


@pytest.mark.asyncio
async def test_unknown_item_is_rejected_and_keeps_the_code(sandbox, client):
    code = await sandbox.new_code("c03")
    with pytest.raises(Rejected):
        await client.verify_code(code, item_code="320000-XX-9999")
    assert (await client.verify_code(code, item_code=PRINT_SSC)).name == CITIZENS[2].name


# -- certificates ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_certificates_are_real_pdfs_with_their_titles(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c01"), item_code=E_LICENCE)
    certificates = await client.fetch_certificates(identity, list(CertificateType))
    assert [c.type for c in certificates] == list(CertificateType)
    for cert in certificates:
        assert cert.pdf.startswith(b"%PDF-") and len(cert.pdf) > 20_000
        info = PdfParser.PdfParser(buf=cert.pdf).info
        assert PdfParser.decode_text(bytes(info.Title)) == cert.title
        assert cert.title.startswith(SPECS[cert.type].title)
        assert cert.issued_on == dt.date.fromtimestamp(sandbox.clock.now)
        assert cert.verify_url == f"{sandbox.url}/verify/{cert.licence_code}"
    async with sandbox.http.get(certificates[0].verify_url) as resp:
        page = await resp.text()
    assert resp.status == 200 and "签名有效 Signature valid" in page
    assert C01.id_number not in page and C01.name not in page  # masked on the page
    async with sandbox.http.get(f"{sandbox.url}/verify/SBX-NOPE") as resp:
        assert resp.status == 404
    # asked again the same day: the same certificate, not a new one
    again = await client.fetch_certificates(identity, [CertificateType.ID_CARD_LICENCE])
    assert again[0].licence_code == certificates[-1].licence_code


@pytest.mark.asyncio
async def test_certificates_are_issued_for_the_citizens_parameters(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c01"), item_code=PRINT_SSC)
    kind = [CertificateType.SSC_PARTICIPATION]
    six = (await client.fetch_certificates(identity, kind, {"period": "6"}))[0]
    twelve = (await client.fetch_certificates(identity, kind, {"period": "12"}))[0]
    standard = (await client.fetch_certificates(identity, kind))[0]
    assert len({six.licence_code, twelve.licence_code, standard.licence_code}) == 3
    assert six.pdf != twelve.pdf
    again = (await client.fetch_certificates(identity, kind, {"period": "12"}))[0]
    assert again.licence_code == twelve.licence_code and again.pdf == twelve.pdf
    for wrong in ({"period": "7"}, {"year": 1975}, {"purpose": "travel"}, {"colour": "red"}):
        with pytest.raises(Rejected):
            await client.fetch_certificates(identity, kind, wrong)


def test_parameters_read_plainly_on_the_certificate():
    from kiosk.platform.sandbox.certificates import ParameterError, parameter_rows

    day = dt.date(2026, 11, 22)
    assert parameter_rows({"period": "12"}, day) == [("证明期间", "最近12个月（2025-11至2026-10）")]
    assert parameter_rows({"year": 2025}, day) == [("记录年度", "2025年")]
    assert parameter_rows({"purpose": "school_enrolment"}, day) == [("用途", "子女入学")]
    with pytest.raises(ParameterError, match="year"):
        parameter_rows({"year": day.year}, day)  # this year's record is not complete


@pytest.mark.asyncio
async def test_certificates_a_citizen_lacks_are_left_out(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c02"), item_code=E_LICENCE)
    types = [c.type for c in await client.fetch_certificates(identity, list(CertificateType))]
    assert CertificateType.HOUSING_FUND_DEPOSIT not in types and len(types) == 5


@pytest.mark.asyncio
async def test_authorization_scope_and_expiry_are_enforced(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c01"), item_code=PRINT_SSC)
    with pytest.raises(NotAuthorized):
        await client.fetch_certificates(identity, [CertificateType.HOUSEHOLD_REGISTER])
    sandbox.clock.advance(901)
    with pytest.raises(NotAuthorized):
        await client.fetch_certificates(identity, [CertificateType.SSC_PARTICIPATION])


@pytest.mark.asyncio
async def test_card_identities_fetch_by_id_number_and_name(sandbox, client):
    card = Identity.create(IdentitySource.ID_CARD, C01.id_number, C01.name)
    certs = await client.fetch_certificates(card, [CertificateType.HOUSING_FUND_DEPOSIT])
    assert len(certs) == 1 and certs[0].pdf.startswith(b"%PDF")
    stranger = Identity.create(IdentitySource.SSC, "11010519491231002X", "王芳")
    with pytest.raises(NotFound):
        await client.fetch_certificates(stranger, [CertificateType.SSC_PARTICIPATION])
    wrong_name = Identity.create(IdentitySource.ID_CARD, C01.id_number, "张三")
    with pytest.raises(NotFound):
        await client.fetch_certificates(wrong_name, [CertificateType.SSC_PARTICIPATION])


# -- submissions and cases ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_same_idempotency_key_gives_one_case(sandbox, client):
    identity = await client.verify_code(await sandbox.new_code("c04"), item_code=FLEXIBLE)
    application = _application(identity)
    first = await client.submit(application, idempotency_key="outbox-0001-aaaa")
    second = await client.submit(application, idempotency_key="outbox-0001-aaaa")
    assert first == second and first.state is CaseState.RECEIVED
    assert sandbox.store.count_cases() == 1
    other = await client.submit(application, idempotency_key="outbox-0002-bbbb")
    assert other.case_number != first.case_number and sandbox.store.count_cases() == 2
    with pytest.raises(Rejected):  # same key, different content
        await client.submit(_application(identity, created_at=1.0),
                            idempotency_key="outbox-0001-aaaa")
    with pytest.raises(Rejected):
        await client.submit(_application(identity, commitment_accepted=False),
                            idempotency_key="outbox-0003-cccc")
    with pytest.raises(Rejected):
        await client.submit(_application(identity, fields={"phone": "123"}),
                            idempotency_key="outbox-0004-dddd")
    assert sandbox.store.count_cases() == 2


@pytest.mark.asyncio
async def test_cases_progress_over_time_and_by_hook(sandbox, client):
    card = Identity.create(IdentitySource.SSC, CITIZENS[3].id_number, CITIZENS[3].name)
    receipt = await client.submit(_application(card), idempotency_key="outbox-progress-1")
    status = await client.query_case(receipt.case_number)
    assert status.state is CaseState.RECEIVED and len(status.history) == 1
    sandbox.clock.advance(61)
    assert (await client.query_case(receipt.case_number)).state is CaseState.ACCEPTED
    async with sandbox.http.post(
        f"{sandbox.url}/sandbox/cases/{receipt.case_number}/advance"
    ) as resp:
        assert resp.status == 200
    assert (await client.query_case(receipt.case_number)).state is CaseState.IN_REVIEW
    sandbox.clock.advance(3000)
    final = await client.query_case(receipt.case_number)
    assert final.state is CaseState.COMPLETED
    assert [e.state for e in final.history] == list(case_rules.PROGRESSION)
    assert [e.at for e in final.history] == sorted(e.at for e in final.history)
    with pytest.raises(NotFound):
        await client.query_case("32000000999999")
    with pytest.raises(NotFound):
        await client.query_case("../../etc")


# -- queries and ratings ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_queries_answer_with_rows(sandbox, client):
    card = Identity.create(IdentitySource.ID_CARD, C01.id_number, C01.name)
    last_year = dt.date.fromtimestamp(sandbox.clock.now).year - 1
    payments = await client.query("320000-SB-CX-0001", card, {"year": last_year})
    assert len(payments.rows) == 12 and payments.summary["months"] == 12
    assert payments.rows[0]["month"] == f"{last_year}-01" and payments.rows[0]["status"] == "已到账"
    balance = await client.query("320000-GJJ-CX-0001", card, {})
    assert float(balance.summary["balance"]) > 186_420 and len(balance.rows) == 6
    assert "*" in balance.summary["account"]
    with pytest.raises(Rejected):
        await client.query("320000-SB-CX-0001", card, {"year": 1800})
    retired = Identity.create(IdentitySource.ID_CARD, C02.id_number, C02.name)
    with pytest.raises(NotFound):  # no housing-fund account
        await client.query("320000-GJJ-CX-0001", retired, {})

    receipt = await client.submit(_application(card), idempotency_key="outbox-query-case")
    progress = await client.query("320000-ZH-CX-0001", card, {"case_number": receipt.case_number})
    assert progress.summary["state"] == "received" and len(progress.rows) == 1
    with pytest.raises(NotFound):  # someone else's case
        await client.query("320000-ZH-CX-0001", retired, {"case_number": receipt.case_number})


@pytest.mark.asyncio
async def test_ratings_are_stored_with_their_level_once(sandbox, client):
    rating = Rating(
        item_code=PRINT_SSC, level=RatingLevel.VERY_SATISFIED, case_number=None,
        rated_at=1_780_000_000.0, indicators={"efficiency": RatingLevel.SATISFIED},
        reasons=("fast",),
    )
    await client.rate(rating)
    await client.rate(rating)  # a repeat after a lost answer is recorded once
    bad = Rating(item_code=PRINT_SSC, level=RatingLevel.VERY_DISSATISFIED, case_number=None,
                 rated_at=1_780_000_100.0)
    await client.rate(bad)
    rows = sandbox.store.ratings()
    assert [(r.level, r.code_reporting, r.code_gbt) for r in rows] == [
        ("very_satisfied", 5, 1), ("very_dissatisfied", 1, 5)
    ]
    assert rows[0].indicators == {"efficiency": "satisfied"} and rows[0].reasons == ["fast"]
    assert rows[0].channel == "hall_terminal" and not rows[0].follow_up_required
    assert rows[1].follow_up_required
    with pytest.raises(Rejected):
        await client.rate(Rating(item_code=PRINT_SSC, level=RatingLevel.BASIC,
                                 case_number="32000000999999", rated_at=1.0))


# -- catalogue -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_catalogue_signature_verifies_and_tampering_fails(sandbox, client, tmp_path):
    catalogue = await client.catalogue()
    assert {e.item_code for e in catalogue.entries} == {i.item_code for i in ITEMS}
    async with sandbox.http.get(f"{sandbox.url}/api/v1/catalogue/keys") as resp:
        key = (await resp.json())["keys"][0]
    public = base64.b64decode(key["public_key_base64"])
    assert key["key_id"] == catalogue.key_id
    assert verify(public, catalogue.payload, catalogue.signature)
    tampered = catalogue.payload.replace(b'"enabled":true', b'"enabled":false', 1)
    assert tampered != catalogue.payload
    assert not verify(public, tampered, catalogue.signature)
    # the key on disk is the one that signed
    pem = (tmp_path / "sandbox" / "signing_ed25519.pem").read_bytes()
    private = serialization.load_pem_private_key(pem, password=None)
    assert private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw) == public

    trusting = make_client(sandbox.url, catalogue_keys={catalogue.key_id: public})
    stranger_key = SigningKey.generate().public_key_bytes
    other = make_client(sandbox.url, catalogue_keys={catalogue.key_id: stranger_key})
    try:
        assert (await trusting.catalogue()).payload == catalogue.payload
        with pytest.raises(PlatformProtocolError):
            await other.catalogue()
    finally:
        await trusting.close()
        await other.close()


@pytest.mark.asyncio
async def test_keys_and_data_survive_a_restart(tmp_path, clock):
    settings = SandboxSettings(data_dir=tmp_path / "data")
    key_ids = []
    for _ in range(2):
        server = await start_server(create_app(settings, clock=clock))
        platform = make_client(str(server.make_url("")).rstrip("/"))
        try:
            key_ids.append((await platform.catalogue()).key_id)
        finally:
            await platform.close()
            await server.close()
    assert key_ids[0] == key_ids[1]


# -- the phone page, tokens, logs ------------------------------------------------------------


@pytest.mark.asyncio
async def test_phone_page_shows_a_live_code_as_qr(sandbox, client):
    async with sandbox.http.get(f"{sandbox.url}/sandbox/phone/c05") as resp:
        page = await resp.text()
    assert resp.status == 200 and "<svg" in page and 'http-equiv="refresh"' in page
    code = re.search(r"SFM1[0-9A-Z]{28}", page).group(0)
    assert (await client.verify_code(code, item_code=PRINT_SSC)).name == CITIZENS[4].name
    async with sandbox.http.get(f"{sandbox.url}/sandbox/phone/nobody") as resp:
        assert resp.status == 404
    async with sandbox.http.get(f"{sandbox.url}/sandbox/") as resp:
        assert "/sandbox/phone/c01" in await resp.text()


@pytest.mark.asyncio
async def test_expired_token_is_renewed_once(sandbox, client):
    await client.catalogue()
    sandbox.clock.advance(7201)  # the platform's clock: the kiosk still thinks it is valid
    await client.catalogue()
    assert sandbox.store.count_access_tokens("test-kiosk-01") == 2
    wrong = make_client(sandbox.url)
    wrong._secret = "not-the-secret"
    try:
        with pytest.raises(Exception) as info:
            await wrong.catalogue()
        assert info.value.__class__.__name__ == "PlatformUnavailable"
    finally:
        await wrong.close()


@pytest.mark.asyncio
async def test_logs_carry_no_codes_names_or_id_numbers(sandbox, client, caplog):
    caplog.set_level(logging.DEBUG)
    code = await sandbox.new_code("c06")
    identity = await client.verify_code(code, item_code=E_LICENCE)
    await client.fetch_certificates(identity, [CertificateType.HOUSEHOLD_REGISTER])
    with pytest.raises(CodeReplayed):
        await client.verify_code(code, item_code=E_LICENCE)
    receipt = await client.submit(
        _application(identity, item_code=FLEXIBLE), idempotency_key="outbox-logs-0001"
    )
    await client.query_case(receipt.case_number)
    text = caplog.text
    assert "苏服码 verified: citizen c06" in text
    for secret in (code, identity.name, identity.id_number, identity.authorization.token):
        assert secret not in text
