"""The sandbox's item catalogue (高频事项) and the Ed25519 key that signs it.

The key is made at first start and kept in the data dir (PKCS#8 PEM, mode 0600); its key id
is the first 16 hex digits of SHA-256 over the raw public key. The same key signs the
certificate files (detached signatures). A real platform signs with SM2 (GB/T 38540 seals);
Python's `cryptography` has no SM2, so the sandbox uses Ed25519 and says so everywhere.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.platform.api import CertificateType
from kiosk.platform.wire import CatalogueEntryWire, CataloguePayload, canonical_json

CATALOGUE_VERSION = 1
ALGORITHM = "Ed25519"


@dataclass(frozen=True)
class Item:
    item_id: str  # the kiosk's item folder name
    item_code: str  # the (sandbox's) government item code
    kind: str  # print | query | submit
    name_zh: str
    name_en: str
    certificate_types: tuple[CertificateType, ...] = ()  # what a verified 苏服码 authorises
    version: str = "1.0.0"


_ALL_TYPES = tuple(CertificateType)

ITEMS: tuple[Item, ...] = (
    Item("ssc_participation_cert", "320000-SB-DY-0001", "print", "社保参保证明打印",
         "Print social insurance participation certificate",
         (CertificateType.SSC_PARTICIPATION,)),
    Item("ssc_rights_record", "320000-SB-DY-0002", "print", "个人权益记录打印",
         "Print personal social insurance rights record", (CertificateType.SSC_RIGHTS_RECORD,)),
    Item("housing_fund_deposit_cert", "320000-GJJ-DY-0001", "print", "公积金缴存证明打印",
         "Print housing fund deposit certificate", (CertificateType.HOUSING_FUND_DEPOSIT,)),
    Item("real_estate_info", "320000-BDC-CX-0001", "print", "不动产登记信息查询（无房证明）",
         "Real estate registration information (no-property certificate)",
         (CertificateType.REAL_ESTATE_INFO,)),
    Item("household_register_cert", "320000-GA-DY-0001", "print", "户籍证明打印",
         "Print household registration certificate", (CertificateType.HOUSEHOLD_REGISTER,)),
    Item("e_licence_print", "320000-ZZ-DY-0001", "print", "电子证照打印",
         "Print an e-certificate", _ALL_TYPES),
    Item("ssc_payment_records", "320000-SB-CX-0001", "query", "社保缴费记录查询",
         "Social insurance payment records"),
    Item("housing_fund_balance", "320000-GJJ-CX-0001", "query", "公积金账户余额查询",
         "Housing fund account balance"),
    Item("case_progress", "320000-ZH-CX-0001", "query", "办件进度查询",
         "Case progress"),
    Item("flexible_employment_enrol", "320000-SB-DJ-0101", "submit",
         "灵活就业人员参保登记", "Social insurance registration for flexible employment"),
)


def item_by_code(item_code: str) -> Item | None:
    return next((item for item in ITEMS if item.item_code == item_code), None)


def item_by_id(item_id: str) -> Item | None:
    return next((item for item in ITEMS if item.item_id == item_id), None)


class SigningKey:
    """An Ed25519 key pair with its key id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key_bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id_of(self.public_key_bytes)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> SigningKey:
        """The key from the data dir, made on first start."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        signing_key = cls.generate()
        pem = signing_key._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return signing_key

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def key_id_of(public_key_bytes: bytes) -> str:
    return hashlib.sha256(public_key_bytes).hexdigest()[:16]


def verify(public_key_bytes: bytes, data: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key_bytes).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def catalogue_payload(issued_at: float, version: int = CATALOGUE_VERSION) -> bytes:
    """The exact bytes the catalogue signature covers."""
    payload = CataloguePayload(
        version=version,
        issued_at=issued_at,
        entries=[
            CatalogueEntryWire(
                item_id=item.item_id,
                item_code=item.item_code,
                version=item.version,
                enabled=True,
                kind=item.kind,
                name_zh=item.name_zh,
                name_en=item.name_en,
                certificate_types=[str(t) for t in item.certificate_types],
            )
            for item in ITEMS
        ],
    )
    return canonical_json(payload.model_dump(mode="json"))
