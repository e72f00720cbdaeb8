"""Enrolment, device keys and certificates, the fleet CA, signed requests, signed bundles and
maintenance credentials (DESIGN §9; docs/security.md explains the design).

    ca.py           the fleet CA (server side): issues device certificates from CSRs
    tokens.py       one-time enrolment tokens (kenr_...), stored as hashes
    signing.py      signed requests (headers, verification, the kiosk's request counter)
    device.py       the kiosk side of enrolment and its state directory (DeviceIdentity)
    bundles.py      signed, versioned catalogue/config bundles and the kiosk's BundleStore
    credentials.py  ops credentials (QR + PIN) for the maintenance screen, checked offline
    keystore.py     file rules for private material (0700/0600, atomic writes)
    cli.py          `kiosk provision ...`
"""
