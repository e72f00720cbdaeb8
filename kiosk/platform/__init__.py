"""The kiosk's side of the province's integrated platform (一体化平台), DESIGN §5.

`api.py` is the contract: domain types, the async `PlatformClient` interface and its typed
errors. Implementations: the HTTP client for a gateway (and for the sandbox, which speaks
the same API), and the sandbox service itself.
"""
