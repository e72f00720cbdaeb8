import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import ErrorKind, OperatorAction
from drivers.idcard import card
from drivers.idcard.card import InvalidCard, UnsupportedCard
from drivers.idcard.frames import IdCardFailure
from drivers.sim import sam
from drivers.sim.sam import LI_XIUYING, WANG_FANG, ZHANG_WEI, id_number_for, resident_card

TODAY = dt.date(2025, 6, 1)


def ucs2(value: str, size: int) -> bytes:
    """Written independently of the simulator's encoder: UCS-2LE padded with spaces."""
    raw = b"".join(ord(ch).to_bytes(2, "little") for ch in value)
    return raw + b"\x20\x00" * ((size - len(raw)) // 2)


def hand_block(**override: str) -> bytes:
    fields = {
        "name": "赵敏", "sex": "2", "nation": "01", "birth": "19491231",
        "address": "北京市朝阳区示例路1号", "number": "11010519491231002X",
        "authority": "北京市公安局朝阳分局", "from": "20100101", "to": "长期",
    } | override
    sizes = (30, 2, 4, 16, 70, 36, 30, 16, 16)
    block = b"".join(ucs2(v, n) for v, n in zip(fields.values(), sizes))
    return block + ucs2("", 36)


def test_hand_built_block_with_the_public_example_number():
    decoded = card.decode(hand_block(), today=TODAY)
    assert decoded.name == "赵敏" and decoded.sex == "女" and decoded.nation == "汉族"
    assert decoded.id_number == "11010519491231002X"
    assert decoded.birth == dt.date(1949, 12, 31)
    assert decoded.address.startswith("北京市") and decoded.authority.endswith("分局")
    assert decoded.valid_from == dt.date(2010, 1, 1)
    assert decoded.valid_to is None and decoded.long_term and not decoded.expired(TODAY)


def test_simulator_blocks_put_fields_at_the_documented_offsets():
    text = ZHANG_WEI.text
    assert len(text) == 256 and len(ZHANG_WEI.photo) == 1024
    assert text[0:30].decode("utf-16-le").strip() == "张伟"
    assert text[30:32].decode("utf-16-le") == "1"
    assert text[122:158].decode("utf-16-le").strip() == id_number_for(
        "320102", dt.date(1985, 3, 12), 123
    )
    assert text[204:220].decode("utf-16-le").strip() == "20360801"


@pytest.mark.parametrize(
    ("sim_card", "name", "sex", "nation", "city", "long_term"),
    [
        (ZHANG_WEI, "张伟", "男", "汉族", "南京市", False),
        (WANG_FANG, "王芳", "女", "汉族", "无锡市", False),
        (LI_XIUYING, "李秀英", "女", "回族", "南京市", True),
    ],
)
def test_test_citizens_decode(sim_card, name, sex, nation, city, long_term):
    decoded = card.decode(sim_card.text, sim_card.photo, today=TODAY)
    assert (decoded.name, decoded.sex, decoded.nation) == (name, sex, nation)
    assert city in decoded.address
    assert decoded.long_term is long_term
    assert decoded.photo_wlt == sim_card.photo
    assert decoded.id_number[6:14] == f"{decoded.birth:%Y%m%d}"


def test_x_check_character_is_kept_upper_case():
    assert card.decode(LI_XIUYING.text, today=TODAY).id_number.endswith("X")
    lower = hand_block(number="11010519491231002x")
    assert card.decode(lower, today=TODAY).id_number == "11010519491231002X"


def test_repr_and_str_show_masked_values_only():
    decoded = card.decode(ZHANG_WEI.text, ZHANG_WEI.photo, today=TODAY)
    for shown in (repr(decoded), str(decoded), f"{decoded}"):
        assert "张伟" not in shown and decoded.id_number not in shown
        assert decoded.address not in shown and "张*" in shown


def test_expired_card():
    old = resident_card(
        label="expired", name="周杰", sex_code="1", nation_code="01",
        birth=dt.date(1980, 1, 1), address="江苏省无锡市滨湖区太湖大道1号",
        number=id_number_for("320211", dt.date(1980, 1, 1), 11),
        authority="无锡市公安局滨湖分局", valid_from=dt.date(2005, 1, 1),
        valid_to=dt.date(2025, 1, 1),
    )
    assert card.decode(old.text, today=TODAY).expired(TODAY)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"number": "110105194912310021"}, "check character"),
        ({"birth": "19491230"}, "does not match"),
        ({"number": "11010519491331002X"}, "birth date inside"),
        ({"sex": "3"}, "sex code"),
        ({"nation": "57"}, "nation code"),
        ({"nation": "9"}, "nation code"),
        ({"birth": "1949123"}, "YYYYMMDD"),
        ({"birth": "19490230"}, "real date"),
        ({"from": "2010010X"}, "YYYYMMDD"),
        ({"to": "20050101"}, "not after"),
        ({"name": ""}, "name is empty"),
        ({"address": "   "}, "address is empty"),
        ({"name": "张\x07伟"}, "control characters"),
        ({"number": "1101051949123100"}, "18 characters"),
    ],
)
def test_inconsistent_cards_are_invalid_without_saying_the_value(override, reason):
    with pytest.raises(InvalidCard) as info:
        card.decode(hand_block(**override), today=TODAY)
    error = info.value
    assert reason in error.reason
    assert (error.code, error.kind, error.action) == (
        "sam.invalid_card", ErrorKind.USER, OperatorAction.NONE,
    )
    assert error.message_key == "device.idcard.invalid_card"
    for value in ("赵敏", "11010519491231002", "北京市朝阳区", *override.values()):
        if len(value.strip()) > 2:
            assert value not in str(error)


def test_birth_in_the_future_is_invalid():
    with pytest.raises(InvalidCard):
        card.decode(hand_block(), today=dt.date(1949, 1, 1))


def test_lone_surrogate_is_invalid_ucs2():
    block = bytearray(hand_block())
    block[0:2] = b"\x00\xd8"
    with pytest.raises(InvalidCard, match="UCS-2"):
        card.decode(bytes(block), today=TODAY)


def test_wrong_sizes_are_invalid():
    with pytest.raises(InvalidCard):
        card.decode(hand_block()[:254] + b"\x20", today=TODAY)  # odd length, no type mark
    with pytest.raises(InvalidCard):
        card.decode(hand_block(), b"\x00" * 100, today=TODAY)


@pytest.mark.parametrize(
    ("sim_card", "kind"),
    [
        (sam.foreigner_card("I"), "foreigner_permanent_residence"),
        (sam.foreigner_card("Y"), "foreigner_permanent_residence"),
        (sam.residence_permit_card(), "hk_macau_taiwan_residence_permit"),
        (sam.foreigner_card("Q"), "unknown"),
    ],
)
def test_other_card_types_are_unsupported(sim_card, kind):
    assert card.card_type_of(sim_card.text) == kind
    with pytest.raises(UnsupportedCard) as info:
        card.decode(sim_card.text, sim_card.photo, today=TODAY)
    assert info.value.card_type == kind
    assert info.value.message_key == "device.idcard.unsupported_card"
    assert info.value.action is OperatorAction.NONE


def test_nation_table():
    assert len(card.NATIONS) == 58
    assert card.NATIONS["01"] == "汉族" and card.NATIONS["56"] == "基诺族"
    assert card.NATIONS["97"] == "其他" and card.NATIONS["98"] == "外国血统"


# -- property tests --------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=256, max_size=256) | st.binary(max_size=300))
def test_junk_blocks_raise_only_typed_errors(block):
    try:
        card.decode(block, today=TODAY)
    except (InvalidCard, UnsupportedCard) as error:
        assert isinstance(error, IdCardFailure)


FIELD_SPANS = [(0, 30), (30, 2), (32, 4), (36, 16), (52, 70), (122, 36), (158, 30), (188, 16),
               (204, 16), (220, 36)]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FIELD_SPANS),
    st.text(max_size=40),
)
def test_any_text_in_any_field_gives_a_card_or_a_typed_error(span, value):
    start, size = span
    raw = value.encode("utf-16-le", errors="surrogatepass")[:size]
    raw += b"\x20\x00" * ((size - len(raw)) // 2) + b"\x00" * ((size - len(raw)) % 2)
    block = bytearray(ZHANG_WEI.text)
    block[start : start + size] = raw
    try:
        decoded = card.decode(bytes(block), today=TODAY)
    except (InvalidCard, UnsupportedCard):
        return
    assert decoded.id_number[6:14] == f"{decoded.birth:%Y%m%d}"
