"""Masking of personal data for display and logs.

Display code masks the values it knows (`mask_id_number`, `mask_name`, `mask_phone`).
`Redactor` finds personal data in free text — ID numbers, mobile numbers, 苏服码 strings —
and masks it; it also masks exact values it has been told about for the current session
(`remember`), so a value that matches no pattern (an unusual code format, a name) is still
kept out of logs. The session wipe calls `forget_all`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from kiosk.identity import id_number

# Mainland mobile numbers: 11 digits starting 13–19, optionally +86 / 86 prefixed, optionally
# grouped 3-4-4 with spaces or hyphens.
_PHONE = r"(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}"
MASK = "*"


def mask_id_number(number: str) -> str:
    """`320102199003071234` → `3201**********1234` (first 4 and last 4 kept)."""
    if len(number) <= 8:
        return MASK * len(number)
    return number[:4] + MASK * (len(number) - 8) + number[-4:]


def mask_phone(phone: str) -> str:
    """`13812345678` → `138****5678` (separators and +86 dropped)."""
    digits = re.sub(r"\D", "", phone)[-11:]
    if len(digits) < 11:
        return MASK * len(phone)
    return digits[:3] + MASK * 4 + digits[-4:]


def mask_name(name: str) -> str:
    """`张三` → `张*`, `欧阳娜娜` → `欧***`; a one-character name becomes `*`."""
    name = name.strip()
    if len(name) <= 1:
        return MASK * len(name)
    return name[0] + MASK * (len(name) - 1)


def mask_code(code: str) -> str:
    """A 苏服码 string is never shown, not even in part: `苏服码[已隐藏 len=N]`."""
    return f"<code len={len(code)}>"


class Redactor:
    """Masks personal data in text. Thread-safe; cheap when nothing matches."""

    def __init__(self, code_patterns: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, str] = {}
        self._secret_re: re.Pattern[str] | None = None
        parts = [
            rf"(?P<id>(?<![\dA-Za-z]){id_number.SHAPE.pattern}(?![\dA-Za-z]))",
            rf"(?P<phone>(?<![\d]){_PHONE}(?!\d))",
        ]
        for i, pattern in enumerate(code_patterns):
            re.compile(pattern)  # fail early, naming the bad pattern
            parts.append(rf"(?P<code{i}>{pattern})")
        self._pattern = re.compile("|".join(parts))

    def remember(self, *values: str, kind: str = "secret") -> None:
        """Mask these exact values wherever they appear, until `forget_all`."""
        with self._lock:
            for value in values:
                if value and len(value) >= 2:
                    self._secrets[value] = kind
            self._rebuild()

    def forget_all(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._rebuild()

    def _rebuild(self) -> None:
        if not self._secrets:
            self._secret_re = None
            return
        ordered = sorted(self._secrets, key=len, reverse=True)  # longest first
        self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    def redact(self, text: str) -> str:
        secret_re = self._secret_re
        if secret_re is not None:
            text = secret_re.sub(lambda m: self._mask_secret(m.group(0)), text)
        return self._pattern.sub(self._mask_match, text)

    def _mask_secret(self, value: str) -> str:
        kind = self._secrets.get(value, "secret")
        if kind == "name":
            return mask_name(value)
        if kind == "code":
            return mask_code(value)
        return MASK * min(len(value), 8)

    @staticmethod
    def _mask_match(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        value = match.group(0)
        if kind == "id":
            return mask_id_number(value)
        if kind == "phone":
            return mask_phone(value)
        return mask_code(value)
