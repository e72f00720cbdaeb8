"""The kiosk runtime core: config, session state machine, identity, privacy, i18n, CLI.

Nothing in this package imports Kivy; the touch UI in `screens/` observes it.
"""

__version__ = "0.1.0"
