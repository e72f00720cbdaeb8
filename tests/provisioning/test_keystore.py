"""Private files: 0700 directories, 0600 files, atomic replacement, and the checker the
doctor uses."""

from __future__ import annotations

import os
import stat

import pytest

from provisioning import keystore
from provisioning.keystore import KeystoreError, check_private_dir, write_private


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_write_private_creates_a_0700_directory_and_a_0600_file_even_with_umask_0(tmp_path):
    old = os.umask(0)
    try:
        write_private(tmp_path / "state" / "device.key", b"secret")
    finally:
        os.umask(old)
    assert mode(tmp_path / "state") == 0o700
    assert mode(tmp_path / "state" / "device.key") == 0o600
    assert (tmp_path / "state" / "device.key").read_bytes() == b"secret"
    assert check_private_dir(tmp_path / "state") == []


def test_write_private_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "f"
    write_private(target, "one")
    write_private(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "f"
    write_private(target, b"old")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keystore.os, "replace", no_rename)
    with pytest.raises(KeystoreError, match="No space left"):
        write_private(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_check_private_dir_names_every_problem(tmp_path):
    d = tmp_path / "state"
    write_private(d / "device.key", b"k")
    write_private(d / "ca.crt", b"c")
    os.chmod(d, 0o755)
    os.chmod(d / "ca.crt", 0o644)
    (d / "link").symlink_to(d / "device.key")
    problems = check_private_dir(d)
    assert any("0755" in p and p.startswith(str(d)) for p in problems)
    assert any("ca.crt has mode 0644" in p for p in problems)
    assert any("link is a symlink" in p for p in problems)
    assert not any("device.key" in p for p in problems)
    assert check_private_dir(tmp_path / "missing") == [f"{tmp_path / 'missing'} does not exist"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_check_private_dir_flags_files_of_another_user(tmp_path):
    write_private(tmp_path / "d" / "device.key", b"k")
    os.chown(tmp_path / "d" / "device.key", 12345, 12345)
    assert check_private_dir(tmp_path / "d") == [
        f"{tmp_path / 'd' / 'device.key'} belongs to uid 12345, expected 0 (the kiosk's user)"
    ]


def test_read_private_refuses_a_symlink(tmp_path):
    write_private(tmp_path / "real", b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(KeystoreError):
        keystore.read_private(tmp_path / "link")
