"""The sandbox platform (`kiosk sandbox`): an aiohttp service on SQLite that speaks the same
API as a provincial gateway (kiosk/platform/wire.py), with test citizens, dynamic 苏服码,
e-certificate PDFs, cases, queries, ratings and a signed catalogue. For development, demos
and tests only; see docs/platform.md.
"""
