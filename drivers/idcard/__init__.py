"""Resident ID card reader (居民身份证) through a SAM module on a serial port (DESIGN §4).

`create(section, stack=, name=)` builds the driver from `[devices.id_card]`; with
`port = "sim"` it starts the SAM simulator (drivers/sim/sam.py) on a pty first.
"""

from drivers.idcard.card import InvalidCard, ResidentIdCard, UnsupportedCard
from drivers.idcard.frames import (
    CommandRejected,
    FrameError,
    IdCardFailure,
    NoCard,
    ReadFailed,
    SamFault,
    SamStatusError,
    SamTimeout,
    SelectFailed,
)
from drivers.idcard.reader import CardRemoved, IdCardReader, PortError, create

__all__ = [
    "CardRemoved",
    "CommandRejected",
    "FrameError",
    "IdCardFailure",
    "IdCardReader",
    "InvalidCard",
    "NoCard",
    "PortError",
    "ReadFailed",
    "ResidentIdCard",
    "SamFault",
    "SamStatusError",
    "SamTimeout",
    "SelectFailed",
    "UnsupportedCard",
    "create",
]
