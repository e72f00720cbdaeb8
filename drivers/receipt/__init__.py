"""The receipt printer (凭条打印机): ESC/POS over TCP 9100, USB or serial (DESIGN §4).

`status` parses the real-time status answers (DLE EOT) and says what they mean for the
shared status model; `printer` is the `ReceiptPrinter` device on python-escpos and
`create()`, which starts the TCP emulator (`drivers/sim/escpos_printer.py`) for "sim".
Receipts themselves are rendered by `kiosk.documents.receipt`.
"""

from drivers.receipt.printer import PrintResult, ReceiptPrinter, create, encode_job
from drivers.receipt.status import (
    ReceiptCoverOpen,
    ReceiptPaperOut,
    ReceiptPrinterFailure,
    ReceiptPrinterHardwareError,
    ReceiptPrinterOffline,
)

__all__ = [
    "PrintResult",
    "ReceiptCoverOpen",
    "ReceiptPaperOut",
    "ReceiptPrinter",
    "ReceiptPrinterFailure",
    "ReceiptPrinterHardwareError",
    "ReceiptPrinterOffline",
    "create",
    "encode_job",
]
