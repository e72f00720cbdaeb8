"""Enrolment, device keys and certificates, the fleet CA, signed bundles (DESIGN §9).

Not built yet: the fleet issue adds enrolment; the hardening issue adds signed bundles.
"""
