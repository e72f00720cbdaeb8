"""Bundles through the command channel's last hop: the app's health endpoint (a real Unix
socket) with `apply_bundle`, verified by the kiosk against the fleet key from its enrolment.
Crafted forged, tampered, rolled-back and wrong-kind bundles are refused and the last good
catalogue stays in use."""

from __future__ import annotations

import base64
import copy
import json
import time

import aiohttp
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.bundles import BundleRefused, KioskBundles, catalogue_payload, parse_catalogue
from kiosk.health import CommandOutcome, HealthServer
from provisioning.bundles import make_bundle

ENTRIES = [{"item_id": "case_progress", "item_code": "320000-ZH-CX-0001", "version": "1.0.0", "enabled": True}]


class Source:
    """The app side of the health endpoint, applying bundles with the real store."""

    def __init__(self, bundles: KioskBundles) -> None:
        self.bundles = bundles
        self.catalogue = None

    async def snapshot(self):
        return {}

    async def command(self, name, args):
        if name != "apply_bundle":
            return CommandOutcome("rejected", "not here")
        try:
            version, catalogue = self.bundles.apply(args["kind"], args["bundle"])
        except BundleRefused as exc:
            return CommandOutcome("failed", exc.code)
        if catalogue is not None:
            self.catalogue = catalogue  # used at once; a config waits for the restart
        return CommandOutcome("done", f"v{version}", {"version": str(version)})


@pytest.fixture
def fleet_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundles(tmp_path, fleet_key):
    return KioskBundles(tmp_path / "bundles", tmp_path / "state", [fleet_key.public_key()])


def catalogue_bundle(key, version, entries=ENTRIES):
    return make_bundle("catalogue", version, catalogue_payload(version, time.time(), entries), key)


async def send(socket, bundle, kind="catalogue"):
    connector = aiohttp.UnixConnector(path=str(socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post("http://kiosk/commands/apply_bundle",
                                json={"kind": kind, "bundle": bundle}) as answer:
            return await answer.json()


@pytest.mark.asyncio
async def test_good_bundle_installs_and_crafted_ones_are_refused(tmp_path, bundles, fleet_key):
    source = Source(bundles)
    server = HealthServer(source, tmp_path / "health.sock")
    await server.start()
    try:
        good = catalogue_bundle(fleet_key, 3)
        answer = await send(server.socket_path, good)
        assert answer["status"] == "done" and source.catalogue.version == 3
        assert source.catalogue.entries[0].item_id == "case_progress"

        forged = catalogue_bundle(Ed25519PrivateKey.generate(), 4)  # another key
        assert (await send(server.socket_path, forged))["detail"] in ("unknown_key", "bad_signature")

        tampered = copy.deepcopy(catalogue_bundle(fleet_key, 5))
        payload = json.loads(base64.b64decode(tampered["payload"]))
        payload["entries"][0]["enabled"] = False
        tampered["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
        assert (await send(server.socket_path, tampered))["detail"] == "tampered"

        unsigned = {k: v for k, v in catalogue_bundle(fleet_key, 6).items() if k != "signature"}
        assert (await send(server.socket_path, unsigned))["detail"] in ("unsigned", "malformed")

        rolled_back = catalogue_bundle(fleet_key, 2)  # older than the installed 3
        assert (await send(server.socket_path, rolled_back))["detail"] == "rollback"
        replayed = catalogue_bundle(fleet_key, 3)  # the same version again
        assert (await send(server.socket_path, replayed))["detail"] == "rollback"

        wrong_kind = make_bundle("config", 7, b"[kiosk]\n", fleet_key)
        assert (await send(server.socket_path, wrong_kind))["detail"] == "wrong_kind"

        # The last good catalogue is still the one in use, and the one installed on disk.
        assert source.catalogue.version == 3
        assert bundles.installed_catalogue().version == 3
    finally:
        await server.stop()


def test_a_signed_but_unusable_catalogue_does_not_replace_the_good_one(bundles, fleet_key):
    bundles.apply("catalogue", catalogue_bundle(fleet_key, 1))
    broken = make_bundle("catalogue", 2, b'{"version": 2}', fleet_key)  # no entries
    with pytest.raises(BundleRefused) as refused:
        bundles.apply("catalogue", broken)
    assert refused.value.code == "bad_catalogue"
    assert bundles.installed_catalogue().version == 1


def test_without_enrolment_nothing_is_trusted(tmp_path, fleet_key):
    bundles = KioskBundles(tmp_path / "bundles", tmp_path / "no-state")
    with pytest.raises(BundleRefused) as refused:
        bundles.apply("catalogue", catalogue_bundle(fleet_key, 1))
    assert refused.value.code == "not_enrolled"


@given(st.binary(max_size=400) | st.builds(
    lambda v: json.dumps(v).encode(),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                     st.sampled_from(["version", "issued_at", "entries", "item_id", "item_code",
                                      "enabled", "x"]), inner, max_size=5),
                 max_leaves=20)))
@example(b'{"version": Infinity, "issued_at": 1, "entries": []}')
@example(b'{"version": 1, "issued_at": NaN, "entries": []}')
@settings(max_examples=300, deadline=None)
def test_catalogue_payload_junk_is_refused_cleanly(payload):
    """A catalogue payload is outside bytes (signed, but from elsewhere): junk is a
    BundleRefused, never another exception."""
    try:
        catalogue = parse_catalogue(payload)
    except BundleRefused as exc:
        assert exc.code == "bad_catalogue"
    else:
        assert isinstance(catalogue.version, int) and isinstance(catalogue.entries, tuple)
