"""HttpPlatformClient against a small misbehaving platform on a real port: timeouts, 5xx,
garbage JSON, a "PDF" that is not one, lost connections; retries only where safe; the
answer-to-error mapping under junk (hypothesis)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from collections import Counter

import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from kiosk.identity.model import Authorization, Identity, IdentitySource
from kiosk.platform.api import (
    Application,
    CertificateType,
    CodeExpired,
    CodeInvalid,
    CodeReplayed,
    NotAuthorized,
    NotFound,
    PlatformError,
    PlatformProtocolError,
    PlatformUnavailable,
    Rejected,
)
from kiosk.platform.client import (
    CallTimeouts,
    RetryPolicy,
    check_scanned_code,
    error_for,
)
from tests.kiosk.platform.conftest import make_client, start_server

ID_NUMBER, NAME = "11010519491231002X", "王芳"
CARD = Identity.create(IdentitySource.ID_CARD, ID_NUMBER, NAME)


def _error(code: str, status: int) -> web.Response:
    return web.json_response({"error": {"code": code, "message": "x"}}, status=status)


def _certificate(content: bytes, **changes) -> dict:
    record = {
        "licence_code": "L1", "type": "ssc_participation", "title": "江苏省社会保险参保证明",
        "holder_id_number": ID_NUMBER, "issuer_name": "i", "issuer_code": "c",
        "item_code": "320000-SB-DY-0001", "region_code": "320102", "status": "issued",
        "issued_on": "2026-11-22", "valid_until": None, "verify_url": "http://x/verify/L1",
        "file": {"content_base64": base64.b64encode(content).decode(),
                 "sha256": hashlib.sha256(content).hexdigest()},
    }
    record.update(changes)
    return {"certificates": [record]}


class Misbehaving:
    """A platform whose every route fails in its own way; `hits` counts the calls."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.script: dict[str, list] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/token", self.token)
        app.router.add_route("*", "/api/v1/{tail:.*}", self.api)
        return app

    async def token(self, request: web.Request) -> web.Response:
        self.hits["token"] += 1
        form = await request.post()
        if form.get("client_secret") != "sandbox-secret":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(
            {"access_token": f"token-{self.hits['token']:012d}", "token_type": "Bearer",
             "expires_in": 3600}
        )

    async def api(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        self.hits[path] += 1
        answers = self.script.get(path) or []
        answer = answers.pop(0) if len(answers) > 1 else (answers[0] if answers else None)
        if answer is None:
            return web.Response(status=404, text="<html>not here</html>", content_type="text/html")
        if answer == "sleep":
            await asyncio.sleep(2)
            return web.json_response({})
        if answer == "reset":
            request.transport.close()
            return web.Response()
        if isinstance(answer, web.Response):
            return answer
        return answer(request)


@pytest_asyncio.fixture
async def bad():
    platform = Misbehaving()
    server = await start_server(platform.app())
    client = make_client(
        str(server.make_url("")).rstrip("/"),
        timeouts=CallTimeouts(**{k: 0.5 for k in CallTimeouts.__dataclass_fields__}),
    )
    yield platform, client
    await client.close()
    await server.close()


def _ok(body) -> web.Response:
    return web.json_response(body)


@pytest.mark.asyncio
async def test_timeout_is_unavailable_and_a_get_is_retried(bad):
    platform, client = bad
    platform.script["catalogue"] = ["sleep"]
    with pytest.raises(PlatformUnavailable) as info:
        await client.catalogue()
    assert info.value.retryable and platform.hits["catalogue"] == 3


@pytest.mark.asyncio
async def test_5xx_then_success_is_retried_for_a_get(bad):
    platform, client = bad
    case = {"case_number": "32261122000001", "item_code": "x", "state": "accepted",
            "received_at": 1.0, "updated_at": 2.0, "history": []}
    platform.script["cases/32261122000001"] = [
        web.Response(status=503, headers={"Retry-After": "0"}), _error("internal_error", 500),
        web.json_response(case),
    ]
    status = await client.query_case("32261122000001")
    assert status.state.value == "accepted" and platform.hits["cases/32261122000001"] == 3


@pytest.mark.asyncio
async def test_code_verification_is_never_repeated(bad):
    platform, client = bad
    platform.script["codes/verify"] = [web.Response(status=502)]
    with pytest.raises(PlatformUnavailable):
        await client.verify_code("SFM1" + "A" * 28, item_code="320000-SB-DY-0001")
    assert platform.hits["codes/verify"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("code,status,error", [
    ("code_invalid", 400, CodeInvalid), ("code_expired", 410, CodeExpired),
    ("code_replayed", 409, CodeReplayed), ("authorization_invalid", 403, NotAuthorized),
    ("not_found", 404, NotFound), ("validation_failed", 422, Rejected),
])
async def test_error_codes_become_typed_errors(bad, code, status, error):
    platform, client = bad
    platform.script["codes/verify"] = [_error(code, status)]
    with pytest.raises(error):
        await client.verify_code("SFM1" + "B" * 28, item_code="320000-SB-DY-0001")


@pytest.mark.asyncio
async def test_garbage_json_and_wrong_shapes_are_protocol_errors(bad):
    platform, client = bad
    garbage = web.Response(body=b"\xff{not json", content_type="application/json")
    platform.script["catalogue"] = [garbage]
    with pytest.raises(PlatformProtocolError):
        await client.catalogue()
    platform.script["codes/verify"] = [_ok({"holder": {"name": NAME}})]
    with pytest.raises(PlatformProtocolError):
        await client.verify_code("SFM1" + "C" * 28, item_code="320000-SB-DY-0001")
    platform.script["codes/verify"] = [_ok({
        "holder": {"name": NAME, "id_number": "110105194912310021"},  # bad check digit
        "authorization": {"token": "t" * 20, "expires_in": 60},
    })]
    with pytest.raises(PlatformProtocolError):
        await client.verify_code("SFM1" + "D" * 28, item_code="320000-SB-DY-0001")
    platform.script["catalogue"] = [_ok({
        "version": 1, "issued_at": 1.0, "key_id": "k", "payload_base64": "%%%",
        "signature_base64": "AA==",
    })]
    with pytest.raises(PlatformProtocolError):
        await client.catalogue()


@pytest.mark.asyncio
async def test_a_pdf_that_is_not_a_pdf_is_refused(bad):
    platform, client = bad
    platform.script["certificates/query"] = [_ok(_certificate(b"<html>oops</html>"))]
    with pytest.raises(PlatformProtocolError):
        await client.fetch_certificates(CARD, [CertificateType.SSC_PARTICIPATION])
    good = b"%PDF-1.4 tiny"
    foreign = _certificate(good, holder_id_number="440524188001010014")
    platform.script["certificates/query"] = [_ok(foreign)]
    with pytest.raises(PlatformProtocolError):  # someone else's certificate
        await client.fetch_certificates(CARD, [CertificateType.SSC_PARTICIPATION])
    body = _certificate(good)
    body["certificates"][0]["file"]["sha256"] = "0" * 64
    platform.script["certificates/query"] = [_ok(body)]
    with pytest.raises(PlatformProtocolError):
        await client.fetch_certificates(CARD, [CertificateType.SSC_PARTICIPATION])
    platform.script["certificates/query"] = [_ok(_certificate(good))]
    [cert] = await client.fetch_certificates(CARD, [CertificateType.SSC_PARTICIPATION])
    assert cert.pdf == good and cert.valid_until is None


@pytest.mark.asyncio
async def test_html_404_and_cut_connections(bad):
    platform, client = bad
    with pytest.raises(PlatformProtocolError):  # nothing scripted: a proxy's HTML 404
        await client.query("320000-SB-CX-0001", CARD, {})
    platform.script["queries/320000-SB-CX-0001"] = ["reset"]
    with pytest.raises(PlatformUnavailable):
        await client.query("320000-SB-CX-0001", CARD, {})
    assert platform.hits["queries/320000-SB-CX-0001"] == 4  # 1 + 3 attempts (read-only POST)


@pytest.mark.asyncio
async def test_submit_is_retried_with_the_same_key(bad):
    platform, client = bad
    keys = []

    def accept(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotency-Key"])
        return web.json_response({"case_number": "32261122000009", "item_code": "x",
                                  "state": "received", "received_at": 5.0, "updated_at": 5.0},
                                 status=201)

    def fail(request: web.Request) -> web.Response:
        keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=504)

    platform.script["applications"] = [fail, accept]
    application = Application("flexible_employment_enrol", "320000-SB-DJ-0101", CARD,
                              {"phone": "13775106624"}, True, 1.0)
    receipt = await client.submit(application, idempotency_key="outbox-key-0001")
    assert receipt.case_number == "32261122000009" and keys == ["outbox-key-0001"] * 2


@pytest.mark.asyncio
async def test_invalid_token_answer_renews_the_token_once(bad):
    platform, client = bad
    case = {"case_number": "32261122000002", "item_code": "x", "state": "received",
            "received_at": 1.0, "updated_at": 1.0}
    platform.script["cases/32261122000002"] = [_error("invalid_token", 401), _ok(case)]
    assert (await client.query_case("32261122000002")).case_number == "32261122000002"
    assert platform.hits["token"] == 2 and platform.hits["cases/32261122000002"] == 2
    # refused again with the fresh token: not the citizen's fault, try later
    platform.script["codes/verify"] = [_error("invalid_token", 401)]
    with pytest.raises(PlatformUnavailable):
        await client.verify_code("SFM1" + "F" * 28, item_code="320000-SB-DY-0001")
    assert platform.hits["token"] == 3 and platform.hits["codes/verify"] == 2


@pytest.mark.asyncio
async def test_unreachable_platform_is_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(
        f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=2, base_delay_s=0.01)
    )
    try:
        with pytest.raises(PlatformUnavailable):
            await client.catalogue()
        with pytest.raises(PlatformUnavailable):
            await client.verify_code("SFM1" + "E" * 28, item_code="320000-SB-DY-0001")
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_a_refused_device_credential_is_unavailable_not_the_citizens_fault(bad):
    platform, client = bad
    client._secret = "wrong"
    with pytest.raises(PlatformUnavailable):
        await client.catalogue()


@pytest.mark.asyncio
async def test_expired_authorization_is_refused_without_a_request(bad):
    platform, client = bad
    stale = Identity.create(IdentitySource.SUFU_CODE, ID_NUMBER, NAME,
                            authorization=Authorization("t" * 20, expires_at=1.0))
    with pytest.raises(NotAuthorized):
        await client.fetch_certificates(stale, [CertificateType.SSC_PARTICIPATION])
    assert platform.hits["certificates/query"] == 0


# -- pure parts under junk --------------------------------------------------------------------


@given(st.integers(min_value=100, max_value=599), st.binary(max_size=300))
def test_error_for_maps_any_answer_to_a_typed_error(status, body):
    error = error_for(status, body)
    assert isinstance(error, PlatformError)
    if status >= 500:
        assert isinstance(error, PlatformUnavailable)


@given(st.integers(min_value=400, max_value=499), st.text(max_size=40),
       st.recursive(st.none() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8))
def test_error_for_survives_odd_json(status, code, extra):
    for body in ({"error": {"code": code, "x": extra}}, {"error": code}, extra, [extra]):
        assert isinstance(error_for(status, json.dumps(body).encode()), PlatformError)


@given(st.text(max_size=400))
def test_scanned_codes_pass_only_as_printable_ascii(text):
    try:
        code = check_scanned_code(text)
    except CodeInvalid as exc:  # the message says only how long it was
        assert str(exc) == f"scanned text cannot be a code (len={len(text.strip())})"
        return
    assert 8 <= len(code) <= 256 and code.isascii() and " " not in code and code == text.strip()
