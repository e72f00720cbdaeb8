"""File rules for the device's private material: keys, certificates, enrolment, bundles.

One rule for everything provisioning writes: the directory is 0700, every file in it is 0600,
both belong to the user the kiosk runs as, and a file is replaced atomically (temporary file
created 0600, written, fsynced, renamed over the target, directory fsynced), so a power cut
leaves the old file or the new one, never half of either, and a key is never readable by
anyone else, not even for an instant.

`check_private_dir` is what the doctor and `DeviceIdentity.load` use to say what is wrong.
(The outbox keeps its AES keys in its own store, kiosk/outbox/keystore.py, under the same
rules.) No TPM/HSM here: docs/security.md says where one would plug in.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


class KeystoreError(OSError):
    """A private file or directory cannot be created, written or read. Never carries key
    material, only the path and the operating system's reason."""


def ensure_private_dir(path: Path | str) -> Path:
    """Create `path` (and its parents) if needed and make it 0700. Returns it as a Path."""
    directory = Path(path)
    try:
        directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(directory, DIR_MODE)
    except OSError as exc:
        raise KeystoreError(
            f"cannot create the private directory {directory} ({exc.strerror})"
        ) from None
    return directory


def write_private(path: Path | str, data: bytes | str) -> None:
    """Replace `path` with `data` atomically, mode 0600, fsynced (file and directory).

    The parent directory is created 0700 if it does not exist; an existing parent keeps its
    mode (check it with `check_private_dir`).
    """
    target = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not target.parent.exists():
        ensure_private_dir(target.parent)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        # O_EXCL + 0600 from the start; fchmod undoes a permissive umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        sync_directory(target.parent)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise KeystoreError(f"cannot write {target} ({exc.strerror or exc})") from None


def remove_private(path: Path | str) -> None:
    """Delete a file if it exists and fsync its directory (so the deletion survives a crash)."""
    target = Path(path)
    try:
        target.unlink(missing_ok=True)
        if target.parent.is_dir():
            sync_directory(target.parent)
    except OSError as exc:
        raise KeystoreError(f"cannot remove {target} ({exc.strerror})") from None


def read_private(path: Path | str) -> bytes:
    """Read a private file, refusing a symlink (someone may point it at another file)."""
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeystoreError(f"cannot read {target} ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def sync_directory(directory: Path | str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def group_or_other_can_read(path: Path | str) -> bool:
    """True when anyone but the owner may read the file (a private key must never be)."""
    mode = os.lstat(path).st_mode
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def check_private_dir(path: Path | str) -> list[str]:
    """What is wrong with a private directory, one sentence per problem; [] when all is well.

    Checked: the directory exists, is a real directory (not a symlink), is mode 0700 and
    belongs to the current user; every entry in it is a regular file (no symlinks, no
    devices), mode 0600, owned by the current user. Sub-directories are checked the same way.
    """
    directory = Path(path)
    problems: list[str] = []
    uid = os.geteuid()
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return [f"{directory} does not exist"]
    except OSError as exc:
        return [f"{directory} cannot be inspected ({exc.strerror})"]
    if stat.S_ISLNK(st.st_mode):
        return [f"{directory} is a symlink, not a directory"]
    if not stat.S_ISDIR(st.st_mode):
        return [f"{directory} is not a directory"]
    _check_mode_owner(directory, st, DIR_MODE, uid, problems)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        return problems + [f"{directory} cannot be listed ({exc.strerror})"]
    for entry in entries:
        entry_path = Path(entry.path)
        try:
            est = os.lstat(entry_path)
        except OSError:
            continue  # removed while we looked
        if stat.S_ISLNK(est.st_mode):
            problems.append(f"{entry_path} is a symlink (private files must be regular files)")
        elif stat.S_ISDIR(est.st_mode):
            problems.extend(check_private_dir(entry_path))
        elif not stat.S_ISREG(est.st_mode):
            problems.append(f"{entry_path} is not a regular file")
        else:
            _check_mode_owner(entry_path, est, FILE_MODE, uid, problems)
    return problems


def _check_mode_owner(
    path: Path, st: os.stat_result, want_mode: int, uid: int, problems: list[str]
) -> None:
    mode = stat.S_IMODE(st.st_mode)
    if mode != want_mode:
        problems.append(f"{path} has mode {mode:04o}, expected {want_mode:04o}")
    if st.st_uid != uid:
        problems.append(f"{path} belongs to uid {st.st_uid}, expected {uid} (the kiosk's user)")
