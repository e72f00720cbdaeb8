"""Permissions: the kiosk's files belong to the user that runs it, and keys are private.

- the data dir (outbox, logs, sandbox) and everything in it: owned by the kiosk user, not
  writable by others. A file created by root (a `kiosk outbox drain` run with sudo) makes
  the app fail at its next write, so ownership is checked file by file;
- the outbox key store (`<data_dir>/keys`): directory 0700, each key file 0600;
- the fleet state dir (`device.key`, `device.crt`, `ca.crt`, `enrolment.json`): owned by the
  agent's user, directory 0700, every file 0600 (provisioning/keystore.py's rule).
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

from kiosk.doctor.context import STATE_FILES, DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "permissions"
_WALK_LIMIT = 5000  # entries looked at in the data dir; a kiosk has a few dozen


def _uid(user: str) -> int | None:
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _walk(root: Path, skip: Path) -> Iterator[Path]:
    count = 0
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        dirs[:] = [d for d in dirs if here / d != skip]
        for name in dirs + files:
            count += 1
            if count > _WALK_LIMIT:
                return
            yield here / name


def _mode(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid


def check_data_dir(ctx: DoctorContext, uid: int | None) -> list[CheckResult]:
    user = ctx.options.user
    data = ctx.data_dir
    if not data.is_dir():
        return [fail("permissions.data_dir", f"{data} does not exist",
                     f"install -d -o {user} -g {user} -m 0750 {data}  (the kiosk-app unit's "
                     "StateDirectory= creates it too)")]
    results = []
    mode, owner = _mode(data)
    problems = []
    if uid is not None and owner != uid:
        problems.append(f"owned by {_owner(owner)}")
    if mode & 0o002:
        problems.append(f"writable by everyone (mode {mode:04o})")
    if problems:
        results.append(fail("permissions.data_dir", f"{data}: " + ", ".join(problems),
                            f"chown -R {user}:{user} {data} && chmod 0750 {data}"))
    elif mode & 0o007:
        results.append(warn("permissions.data_dir", f"{data}: readable by everyone "
                            f"(mode {mode:04o})", f"chmod 0750 {data}"))
    else:
        results.append(ok("permissions.data_dir", f"{data}: mode {mode:04o}, owner "
                          f"{_owner(owner)}"))
    foreign, open_ = [], []
    for path in _walk(data, skip=ctx.state_dir):
        try:
            mode, owner = _mode(path)
        except OSError:
            continue
        if uid is not None and owner != uid:
            foreign.append(f"{path} ({_owner(owner)})")
        elif mode & 0o002 and not stat.S_ISLNK(path.lstat().st_mode):
            open_.append(str(path))
    if foreign:
        results.append(fail(
            "permissions.data_files",
            f"{len(foreign)} file(s) not owned by {user}: " + ", ".join(foreign[:3]),
            f"chown -R {user}:{user} {data}  (run kiosk commands as {user}: "
            f"sudo -u {user} kiosk ...)",
        ))
    if open_:
        results.append(fail("permissions.data_files",
                            f"{len(open_)} file(s) writable by everyone: " + ", ".join(open_[:3]),
                            f"chmod -R o-w {data}"))
    return results


def check_private_dir(name: str, directory: Path, user: str, uid: int | None,
                      key_files: list[Path], other_files: list[Path]) -> list[CheckResult]:
    """Directory 0700, `key_files` 0600, `other_files` not writable by group or others, all
    owned by `uid`."""
    problems: list[str] = []
    fixes: list[str] = []
    if directory.is_symlink():
        return [fail(name, f"{directory} is a symlink", f"mv {directory} {directory}.link && install -d -o {user} -m 0700 {directory} "
                     f"&& cp -p {directory}.link/* {directory}/")]
    mode, owner = _mode(directory)
    if uid is not None and owner != uid:
        problems.append(f"{directory} owned by {_owner(owner)}")
    if mode != 0o700:
        problems.append(f"{directory} has mode {mode:04o}, not 0700")
        fixes.append(f"chmod 0700 {directory}")
    for path in key_files + other_files:
        try:
            mode, owner = _mode(path)
        except FileNotFoundError:
            continue
        if uid is not None and owner != uid:
            problems.append(f"{path.name} owned by {_owner(owner)}")
        if path in key_files and mode != 0o600:
            problems.append(f"{path.name} has mode {mode:04o}, not 0600")
            fixes.append(f"chmod 0600 {path}")
        elif path not in key_files and mode & 0o022:
            problems.append(f"{path.name} is writable by others (mode {mode:04o})")
            fixes.append(f"chmod 0600 {path}")
    if uid is not None and any("owned by" in p for p in problems):
        fixes.insert(0, f"chown -R {user}: {directory}")
    if problems:
        return [fail(name, "; ".join(problems), " && ".join(dict.fromkeys(fixes)))]
    return [ok(name, f"{directory}: 0700, {len(key_files)} key file(s) 0600, owner "
               f"{_owner(_mode(directory)[1])}")]


def check_log_file(ctx: DoctorContext, uid: int | None) -> list[CheckResult]:
    """`[logging] file`, when set: the kiosk user must be able to append to it."""
    if not ctx.config.logging.file:
        return []
    user = ctx.options.user
    log = ctx.config.resolve(ctx.config.logging.file).absolute()
    if not log.parent.is_dir():
        return [fail("permissions.log_file", f"the log folder {log.parent} does not exist",
                     f"install -d -o {user} -g {user} -m 0750 {log.parent}")]
    target = log if log.exists() else log.parent
    mode, owner = _mode(target)
    if uid is not None and owner != uid:
        return [fail("permissions.log_file", f"{target} is owned by {_owner(owner)}: the app "
                     f"cannot write its log", f"chown {user}:{user} {target}")]
    if mode & 0o002:
        return [fail("permissions.log_file", f"{target} is writable by everyone",
                     f"chmod o-w {target}")]
    return [ok("permissions.log_file", f"{log}: writable by {user}")]


async def run(ctx: DoctorContext) -> list[CheckResult]:
    o = ctx.options
    results: list[CheckResult] = []
    uid, agent_uid = _uid(o.user), _uid(o.agent_user)
    for user, known in ((o.user, uid), (o.agent_user, agent_uid)):
        if known is None:
            results.append(warn(
                f"permissions.user.{user}", f"there is no user {user!r}: ownership not checked",
                "create it as in docs/lockdown.md (useradd --system ...), or pass --user / "
                "--agent-user with the users this kiosk runs as",
            ))
    results += check_data_dir(ctx, uid)
    results += check_log_file(ctx, uid)
    keys = ctx.keys_dir
    if keys.is_dir():
        key_files = sorted(p for p in keys.iterdir() if p.suffix == ".key" or p.name == "current")
        results += check_private_dir("permissions.outbox_keys", keys, o.user, uid, key_files, [])
    else:
        results.append(ok("permissions.outbox_keys", f"{keys} not created yet (the app creates "
                          "it 0700 with the first submission)"))
    state = ctx.state_dir
    if state.is_dir():
        files = [state / name for name in STATE_FILES]
        # Every file 0600, as provisioning/keystore.py writes them (certificates too: the
        # directory is the agent's alone).
        results += check_private_dir("permissions.fleet_state", state, o.agent_user, agent_uid,
                                     files, [])
    else:
        results.append(ok("permissions.fleet_state", f"{state} does not exist (see enrolment)"))
    return results
