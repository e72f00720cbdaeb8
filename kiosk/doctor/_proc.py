"""Running the small system tools the checks ask (fc-match, espeak-ng, lpstat): bounded
in time, never through a shell, output decoded leniently."""

from __future__ import annotations

import asyncio
import contextlib
import shutil


class ToolMissing(Exception):
    pass


async def run_tool(*argv: str, timeout: float = 3.0, stdin: bytes | None = None
                   ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr). Raises ToolMissing when argv[0] is not installed and
    TimeoutError when it does not finish in `timeout` seconds (it is killed)."""
    if shutil.which(argv[0]) is None:
        raise ToolMissing(argv[0])
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
