import io
import json
import logging

import pytest

from kiosk.logs import setup_logging
from kiosk.privacy import Redactor
from tests.kiosk.test_privacy import CODE, ID, PHONE, SANDBOX_PATTERNS


@pytest.fixture
def capture():
    stream = io.StringIO()
    handlers = []

    def configure(fmt):
        handlers.extend(
            setup_logging(fmt=fmt, level="DEBUG", redactor=Redactor(SANDBOX_PATTERNS), stream=stream)
        )
        return stream

    yield configure
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)


def test_json_lines_are_redacted_in_message_args_and_extra(capture):
    stream = capture("json")
    log = logging.getLogger("kiosk.test")
    log.info("identified %s via %s", ID, "idcard", extra={"phone": PHONE, "code": CODE})
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["level"] == "INFO" and record["logger"] == "kiosk.test"
    text = json.dumps(record, ensure_ascii=False)
    for secret in (ID, PHONE, CODE):
        assert secret not in text
    assert record["message"].startswith("identified 3201**********")


def test_tracebacks_are_redacted(capture):
    stream = capture("text")
    try:
        raise ValueError(f"bad holder {ID} phone {PHONE}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("request failed")
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out
    assert ID not in out and PHONE not in out


def test_remembered_name_is_redacted_in_third_party_logs(capture):
    stream = capture("text")
    redactor = logging.getLogger().handlers[-1].formatter.redactor
    redactor.remember("赵六", kind="name")
    logging.getLogger("kivy").warning("Label text: 欢迎，赵六")
    assert "赵六" not in stream.getvalue()
    assert "赵*" in stream.getvalue()


def test_setup_twice_does_not_duplicate_lines(capture):
    capture("text")
    stream = capture("text")
    logging.getLogger("kiosk.x").warning("once")
    assert stream.getvalue().count("once") == 1
