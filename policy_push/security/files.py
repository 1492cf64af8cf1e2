"""Files that hold personal data (the SQLite database, exports, import reports) are created owner-only
(0600, directories 0700) and never through a symbolic link: a link planted at ``FILE.rejected.jsonl``
must not make the service overwrite its target (issue 10)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TextIO

__all__ = ["open_private", "private_dir", "touch_private"]

_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_private(path: Path, *, overwrite: bool = True) -> TextIO:
    """``path`` opened for writing UTF-8 text, created 0600; refuses (``OSError``) a symbolic link, and
    an existing file unless ``overwrite``.  An existing file is made 0600 before it is written."""
    flags = _FLAGS | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        return io.open(fd, "w", encoding="utf-8", closefd=True)  # noqa: UP020 - from a descriptor
    except BaseException:
        os.close(fd)
        raise


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) created 0700; an existing directory is left as it is."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def touch_private(path: Path) -> None:
    """Create ``path`` empty and 0600 unless it exists (SQLite then keeps the mode, and gives its -wal
    and -shm files the same); a symbolic link in its place is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        if path.is_symlink():
            raise OSError(f"{path} is a symbolic link; refusing to use it as the database") from None
        return
    os.close(fd)
