import re

from hypothesis import given
from hypothesis import strategies as st

from kiosk.identity import id_number
from kiosk.privacy import Redactor, mask_code, mask_id_number, mask_name, mask_phone

ID = "320102199003071234"  # not a real person; valid shape, check character computed below
ID = ID[:17] + id_number.check_char(ID[:17])
PHONE = "13812345678"
CODE = "SFM1" + "7K3Q9ZP2M4XW8R5T6Y1N0B3V"
SANDBOX_PATTERNS = [r"SFM1[0-9A-Z]{20,120}"]


def test_masks():
    assert mask_id_number(ID) == ID[:4] + "*" * 10 + ID[-4:]
    assert mask_phone(PHONE) == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("李") == "*"
    assert CODE not in mask_code(CODE)


def test_redacts_real_looking_values_in_chinese_text():
    r = Redactor(SANDBOX_PATTERNS)
    line = f"读取身份证成功：{ID}，手机{PHONE}，苏服码{CODE}已核验"
    out = r.redact(line)
    assert ID not in out and PHONE not in out and CODE not in out
    assert mask_id_number(ID) in out
    assert "138****5678" in out
    assert out.startswith("读取身份证成功：") and out.endswith("已核验")


def test_redacts_lower_case_x_and_phone_forms():
    r = Redactor()
    x_id = "11010519491231002x"
    for phone in ("+86 13812345678", "8613812345678", "138-1234-5678", "138 1234 5678"):
        out = r.redact(f"id={x_id} tel={phone}")
        assert x_id not in out
        assert not re.search(r"1[3-9]\d[- ]?\d{4}[- ]?\d{4}", out), out


def test_leaves_ordinary_numbers_alone():
    r = Redactor(SANDBOX_PATTERNS)
    for text in (
        "took 1732012345.123 s",
        "epoch_ms=1732012345123",  # 13 digits, not a phone
        "order 12345678901234567890",  # 20 digits
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "port 35963, 2026-11-22T12:00:00Z",
        "case JS-2026-000123",
    ):
        assert r.redact(text) == text


def test_remembered_values_are_masked_until_forgotten():
    r = Redactor()
    r.remember("王小明", kind="name")
    r.remember("opaque-gateway-code-xyz", kind="code")
    out = r.redact("holder 王小明 presented opaque-gateway-code-xyz")
    assert "王小明" not in out and "王**" in out
    assert "opaque-gateway-code-xyz" not in out
    r.forget_all()
    assert r.redact("holder 王小明") == "holder 王小明"


@given(prefix=st.text(max_size=30), suffix=st.text(max_size=30))
def test_an_id_number_never_survives_in_any_context(prefix, suffix):
    r = Redactor(SANDBOX_PATTERNS)
    # Surrounded by non-alphanumerics the number must be masked; glued to digits it is a
    # different (longer) number, which is not an ID number.
    text = f"{prefix} {ID} {suffix}"
    assert ID not in r.redact(text)


@given(st.text(max_size=200))
def test_redact_never_fails_on_junk(text):
    Redactor(SANDBOX_PATTERNS).redact(text)
