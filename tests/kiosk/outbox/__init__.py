"""Outbox tests. Shared builders for applications with recognisable personal data."""

from __future__ import annotations

from kiosk.identity.model import Authorization, Identity, IdentitySource
from kiosk.platform.api import Application

NAME = "欧阳娜娜"
ID_NUMBER = "320202198004123513"
PHONE = "13912345678"
TOKEN = "auth-token-0f9e8d7c6b5a"

def make_application(n: int = 0, **fields) -> Application:
    applicant = Identity.create(
        IdentitySource.SUFU_CODE,
        ID_NUMBER,
        NAME,
        nation="汉",
        authorization=Authorization(TOKEN, 1_790_000_600.0, ("ssc_participation",)),
    )
    return Application(
        item_id="housing_fund_withdrawal",
        item_code="320200-GJJ-0042",
        applicant=applicant,
        fields={"phone": PHONE, "address": "无锡市梁溪区中山路1号", "n": n, **fields},
        commitment_accepted=True,
        created_at=1_790_000_000.0 + n,
    )

def personal_needles() -> list[bytes]:
    """Byte strings that must never appear in the database files."""
    return [
        NAME.encode("utf-8"),
        NAME.encode("utf-16-le"),
        ID_NUMBER.encode("ascii"),
        PHONE.encode("ascii"),
        TOKEN.encode("ascii"),
        "中山路".encode("utf-8"),
    ]
