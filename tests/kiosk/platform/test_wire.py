"""The wire format: strict requests, tolerant answers, canonical bytes, and decoding that
turns any junk into one typed error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kiosk.platform import wire
from kiosk.platform.api import PlatformProtocolError
from kiosk.platform.client import decode

SUBJECT = {"source": "idcard", "id_number": "11010519491231002X", "name": "王芳"}


def test_requests_are_strict():
    with pytest.raises(ValidationError):
        wire.CodeVerifyRequest(code="SFM1X", device_id="k1", item_code="a", extra=1)
    with pytest.raises(ValidationError):
        wire.CodeVerifyRequest(code="x" * 257, device_id="k1", item_code="a")
    with pytest.raises(ValidationError):
        wire.CodeVerifyRequest(code="SFM1X", device_id="kiosk 1", item_code="a")
    with pytest.raises(ValidationError):
        wire.Subject(**{**SUBJECT, "id_number": "11010519491231002x"})  # upper-case X only
    with pytest.raises(ValidationError):
        wire.RatingRequest(item_code="a", level=6, rated_at=1.0)
    with pytest.raises(ValidationError):
        wire.CertificateQueryRequest(subject=SUBJECT, types=[])


def test_answers_ignore_fields_they_do_not_know():
    answer = wire.TokenAnswer.model_validate_json(
        b'{"access_token": "abcdefghijklmnop", "expires_in": 7200, "refresh_token": "x"}'
    )
    assert answer.token_type == "Bearer" and answer.expires_in == 7200


def test_application_round_trip_keeps_json_fields():
    request = wire.ApplicationRequest(
        item_id="i", item_code="320000-RS-0104", applicant=SUBJECT,
        fields={"phone": "13775106624", "base": 4494, "months": [1, 2], "ok": True},
        commitment_accepted=True, created_at=1.5,
    )
    again = wire.ApplicationRequest.model_validate_json(request.model_dump_json())
    assert again == request


def test_canonical_json_is_one_byte_form():
    a = wire.canonical_json({"b": 1, "a": ["苏", 2.5]})
    b = wire.canonical_json(json.loads(a))
    assert a == b == '{"a":["苏",2.5],"b":1}'.encode()
    with pytest.raises(ValueError):
        wire.canonical_json({"x": float("nan")})


def test_error_codes_are_distinct_for_each_code_failure():
    values = [code.value for code in wire.ErrorCode]
    assert len(values) == len(set(values))
    assert {"code_invalid", "code_expired", "code_replayed"} <= set(values)


def test_error_answer_shape():
    body = wire.ErrorAnswer(error=wire.ErrorDetail(code=wire.ErrorCode.CODE_EXPIRED, message="m"))
    assert json.loads(body.model_dump_json())["error"]["code"] == "code_expired"


@pytest.mark.parametrize("model", [
    wire.TokenAnswer, wire.CodeVerifyAnswer, wire.CertificateQueryAnswer, wire.CaseAnswer,
    wire.QueryAnswer, wire.RatingAnswer, wire.CatalogueAnswer, wire.CataloguePayload,
])
@given(junk=st.binary(max_size=200))
def test_decoding_junk_raises_only_protocol_errors(model, junk):
    try:
        decode(model, junk)
    except PlatformProtocolError as exc:
        assert exc.__cause__ is None and exc.__suppress_context__
