"""A file replaced atomically: written beside it under a temporary name, then renamed over it (shared)."""

import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path


def replace_atomically(
    target: Path, text: Iterable[str], *, new_mode: int = 0o666, keep_mode: bool = True, durable: bool = True
) -> None:
    """`target` is the old file or the whole new one (OSError when it cannot be written).

    A new file gets `new_mode` less the umask; with `keep_mode` a replaced one keeps its permissions;
    `durable`: on disk before the rename.
    """
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    mode = stat.S_IMODE(target.stat().st_mode) if keep_mode and target.exists() else None
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), new_mode)
    try:
        with open(descriptor, "w", encoding="utf-8") as stream:
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            stream.writelines(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
