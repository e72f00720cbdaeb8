"""Signed bundles, as the kiosk installs them (catalogue and config via the fleet).

`bundle_apply` hands `BundleStore.apply` (and then `installed`/`previous`) bundles made by
`make_bundle` with a trusted Ed25519 key: valid ones, ones whose fields were mutated and then
re-signed (so the checks after the signature run: payload base64, sha256, version floor,
kind), ones mutated without re-signing, unsigned, signed by an untrusted key, re-applied
older versions (rollback), JSON mutations and random bytes. Each input gets a fresh store
directory, sometimes with a bundle already installed. Documented error: `BundleError`.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning import bundles
from provisioning.bundles import BundleError, BundleStore
from tests.fuzz import mutate
from tests.fuzz.engine import Target

# -- bundles -------------------------------------------------------------------------------------

_TRUSTED = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
_UNTRUSTED = Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34)))
_CREATED = dt.datetime(2026, 11, 22, 14, 0, tzinfo=dt.timezone.utc)


def _payload(rng: random.Random) -> bytes:
    return json.dumps({"entries": [{"item_id": "ssc_payment_records", "enabled": True}],
                       "n": rng.randint(0, 9)}).encode() if rng.random() < 0.8 else rng.randbytes(rng.randint(0, 64))


def _resign(fields: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    try:
        message = bundles.canonical_bytes(fields)
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        return fields  # not JSON-encodable the canonical way: send it unsigned-for-real
    fields["signature"] = base64.urlsafe_b64encode(key.sign(message)).rstrip(b"=").decode()
    return fields


def _bundle_input(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(bundles.KINDS)
    version = rng.choice((1, 2, 5, 7, bundles.MAX_VERSION))
    bundle: Any = bundles.make_bundle(kind, version, _payload(rng),
                                      _TRUSTED if rng.random() < 0.9 else _UNTRUSTED,
                                      created_at=_CREATED)
    roll = rng.random()
    if roll < 0.25:
        body: Any = bundle
    elif roll < 0.6:  # fields mutated, signed again: the checks after the signature run
        fields = mutate.mutate_tree(rng, {k: v for k, v in bundle.items() if k != "signature"})
        body = _resign(fields, _TRUSTED) if isinstance(fields, dict) else fields
    elif roll < 0.75:
        body = mutate.mutate_tree(rng, bundle)
    elif roll < 0.85:
        body = mutate.mutate_bytes(rng, bundles.encode_bundle(bundle))
    elif roll < 0.9:
        body = rng.choice((mutate.deep_json(rng), mutate.deep_json(rng).encode()))
    elif roll < 0.95:
        body = {k: v for k, v in bundle.items() if k != "signature"} if rng.random() < 0.5 else \
            dict(bundle, signature="")
    else:
        body = mutate.random_bytes(rng, 80)
    if isinstance(body, dict) and rng.random() < 0.3:
        body = mutate.to_json(rng, body) if rng.random() < 0.5 else mutate.to_json(rng, body).decode("utf-8", "replace")
    installed = rng.choice((None, None, 1, 5, bundles.MAX_VERSION))
    return {"bundle": body, "kind": rng.choice((None, kind, "catalogue", "config")),
            "installed": installed, "installed_kind": kind}


_workdir: Path | None = None


def _store_root() -> Path:
    global _workdir
    if _workdir is None:
        _workdir = Path(tempfile.mkdtemp(prefix="fuzz-bundles-", dir=mutate.scratch_dir()))
        atexit.register(shutil.rmtree, _workdir, True)
    return _workdir


def apply_bundle(value: dict[str, Any]) -> str:
    directory = _store_root() / "store"
    shutil.rmtree(directory, ignore_errors=True)
    store = BundleStore(directory, [_TRUSTED.public_key()])
    if value["installed"] is not None:
        store.apply(bundles.make_bundle(value["installed_kind"], value["installed"], b"{}",
                                        _TRUSTED, created_at=_CREATED))
    try:
        body = value["bundle"]
        installed = store.apply(body, kind=value["kind"])
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise AssertionError(f"apply let {type(exc).__name__} out") from exc
    again = store.installed(installed.kind)
    assert again == installed, "the installed bundle does not read back"
    if value["installed"] is not None and value["installed_kind"] == installed.kind:
        assert store.previous(installed.kind) is not None
    return f"installed {installed.kind}"


BUNDLE_APPLY = Target(
    name="bundle_apply",
    parser="provisioning/bundles.py: BundleStore.apply (verify_bundle: JSON, fields, signature, "
           "payload, sha256, kind, version floor), installed, previous",
    generate=_bundle_input,
    run=apply_bundle,
    documented=(BundleError,),
    short_examples=2_000,
)

TARGETS = (BUNDLE_APPLY,)
