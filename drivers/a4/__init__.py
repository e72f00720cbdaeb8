"""A4 printer over IPP (directly, or through a CUPS queue): `create()` builds it from the
`[devices.a4_printer]` section; `uri = "sim"` starts CUPS' ippeveprinter as its peer."""

from drivers.a4.printer import (
    A4Printer,
    PaperJam,
    PaperOut,
    PrinterFault,
    PrinterMisconfigured,
    PrinterOffline,
    PrintJobFailed,
    PrintResult,
    PrintTimeout,
    TonerOut,
    create,
)

__all__ = [
    "A4Printer",
    "PaperJam",
    "PaperOut",
    "PrintJobFailed",
    "PrintResult",
    "PrintTimeout",
    "PrinterFault",
    "PrinterMisconfigured",
    "PrinterOffline",
    "TonerOut",
    "create",
]
