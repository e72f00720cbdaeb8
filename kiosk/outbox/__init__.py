"""The outbox (DESIGN §7): submissions stored durably and encrypted before the citizen is told
"submitted", then sent to the platform exactly once by `OutboxSender`. See docs/outbox.md."""

from kiosk.outbox.crypto import RecordUnreadable, UnserializableFields
from kiosk.outbox.keystore import Keystore, KeystoreError, UnknownKey
from kiosk.outbox.sender import OutboxSender, SubmissionRefused, backoff_delay
from kiosk.outbox.store import (
    Claim,
    Outbox,
    OutboxError,
    OutboxRecord,
    OutboxUnavailable,
    RotationResult,
    SubmissionState,
)

__all__ = [
    "Claim",
    "Keystore",
    "KeystoreError",
    "Outbox",
    "OutboxError",
    "OutboxRecord",
    "OutboxSender",
    "OutboxUnavailable",
    "RecordUnreadable",
    "RotationResult",
    "SubmissionRefused",
    "SubmissionState",
    "UnknownKey",
    "UnserializableFields",
    "backoff_delay",
]
