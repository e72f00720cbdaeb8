"""Typed application keys: everything a request handler may reach, opened in app.py."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from fleet.server.credentials import RevokedCredentials
from fleet.server.db import Database
from fleet.server.device_auth import DeviceKeys
from fleet.server.evaluator import AlertEvaluator
from fleet.server.ingest import Ingest
from fleet.server.settings import ServerSettings
from provisioning.ca import FleetCA

SETTINGS = web.AppKey("fleet_settings", ServerSettings)
CLOCK = web.AppKey("fleet_clock", Callable[[], float])
DB = web.AppKey("fleet_db", Database)
CA = web.AppKey("fleet_ca", FleetCA)
KEYS = web.AppKey("fleet_device_keys", DeviceKeys)
INGEST = web.AppKey("fleet_ingest", Ingest)
EVALUATOR = web.AppKey("fleet_evaluator", AlertEvaluator)

REVOKED_CREDENTIALS = web.AppKey("fleet_revoked_credentials", RevokedCredentials)
