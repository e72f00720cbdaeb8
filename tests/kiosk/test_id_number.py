import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.identity import id_number
from kiosk.identity.id_number import InvalidIdNumber

PUBLIC_EXAMPLES = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("number", PUBLIC_EXAMPLES)
def test_public_examples_are_valid(number):
    assert id_number.validate(number) == number


def test_lower_case_x_is_normalised():
    assert id_number.validate("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    "number, reason",
    [
        ("110105194912310021", "check character"),
        ("11010519491231002", "18 characters"),
        ("1101051949123100211", "18 characters"),
        ("11010519491331002X", "birth date"),  # month 13
        ("11010519490230002X", "birth date"),  # 30 February
        ("1101051949123100A1", "digits"),
        ("11010519491231002Y", "last character"),
        ("11010530001231002X", "out of range"),  # born in 3000
        ("１１０１０５１９４９１２３１００２Ｘ", "digits"),  # full-width digits
    ],
)
def test_invalid_numbers_say_why(number, reason):
    with pytest.raises(InvalidIdNumber, match=reason):
        id_number.validate(number)


def test_birth_date():
    assert id_number.birth_date("11010519491231002X") == dt.date(1949, 12, 31)


@given(
    region=st.integers(110000, 659999),
    born=st.dates(dt.date(1900, 1, 1), dt.date(2024, 12, 31)),
    seq=st.integers(0, 999),
)
def test_generated_numbers_validate(region, born, seq):
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    number = first17 + id_number.check_char(first17)
    assert id_number.validate(number) == number
    assert id_number.SHAPE.fullmatch(number)
    # Changing the check character always breaks it (MOD 11-2 detects single errors).
    wrong = next(c for c in "0123456789X" if c != number[-1])
    assert not id_number.is_valid(first17 + wrong)


@given(st.text(max_size=40))
def test_junk_raises_only_the_typed_error(text):
    try:
        id_number.validate(text)
    except InvalidIdNumber:
        pass
