"""Documents the kiosk hands out, rendered as images: pure Python, no device and no Kivy."""

from kiosk.documents.receipt import Receipt, ReceiptLine, render_receipt

__all__ = ["Receipt", "ReceiptLine", "render_receipt"]
