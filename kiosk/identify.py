"""What a device read becomes: an `Identity` (kiosk/identity/model.py).

The ID card's chip data and the 社保卡's holder records are mapped here; a 苏服码 needs no
mapping (the platform's answer already is an Identity). The ID number is validated again
by `Identity.create`, and the card's own sex field wins over the one derived from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.identity.model import Identity, IdentitySource, Sex

if TYPE_CHECKING:  # the readers' packages load pyscard and pyserial: only where they run
    from drivers.idcard.card import ResidentIdCard
    from drivers.ssc.card import SscCardData


def _nation_name(nation: str | None) -> str | None:
    # Cards print 汉族; the model keeps the short form people use (汉).
    return nation.removesuffix("族") if nation else None


def from_id_card(card: ResidentIdCard) -> Identity:
    return Identity.create(
        IdentitySource.ID_CARD,
        card.id_number,
        card.name,
        sex=Sex(card.sex_code) if card.sex_code in ("1", "2") else None,
        birth_date=card.birth,
        nation=_nation_name(card.nation),
    )


def from_ssc_card(card: SscCardData) -> Identity:
    if not card.social_security_number or not card.name:
        raise ValueError("the card did not give a social security number and a name")
    return Identity.create(
        IdentitySource.SSC,
        card.social_security_number,
        card.name,
        sex=Sex(card.sex) if card.sex in ("1", "2") else None,
        birth_date=card.birth_date,
        nation=_nation_name(card.nation),
        ssc_card_number=card.card_number,
    )
