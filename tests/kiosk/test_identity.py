import datetime as dt

import pytest

from kiosk.identity.id_number import InvalidIdNumber
from kiosk.identity.model import Assurance, Authorization, Identity, IdentitySource, Sex

NUMBER = "11010519491231002X"


def test_create_validates_and_derives_sex_and_birth_date():
    ident = Identity.create(IdentitySource.SUFU_CODE, NUMBER.lower(), " 王芳 ")
    assert ident.id_number == NUMBER and ident.name == "王芳"
    assert ident.birth_date == dt.date(1949, 12, 31)
    assert ident.sex is Sex.FEMALE  # 17th digit 2 is even
    assert ident.assurance is Assurance.HIGH
    assert ident.age_on(dt.date(2026, 11, 22)) == 76


def test_social_security_card_is_medium_assurance():
    ident = Identity.create(IdentitySource.SSC, "440524188001010014", "李雷")
    assert ident.assurance is Assurance.MEDIUM and ident.sex is Sex.MALE


def test_invalid_number_is_refused():
    with pytest.raises(InvalidIdNumber):
        Identity.create(IdentitySource.ID_CARD, "110105194912310021", "王芳")


def test_repr_and_str_never_show_personal_data():
    auth = Authorization("tok-SECRET-123", expires_at=1.0, certificate_types=("ssc_cert",))
    ident = Identity.create(IdentitySource.SUFU_CODE, NUMBER, "王芳", authorization=auth)
    for text in (repr(ident), str(ident), f"{ident}", repr([ident])):
        assert NUMBER not in text and "王芳" not in text and "tok-SECRET-123" not in text
        assert "1101**********002X" in text and "王*" in text
    assert set(ident.secrets()) == {"王芳", NUMBER, "tok-SECRET-123"}
