"""Writing files whole or not at all (used by ``nn.save`` and ``viz.render``)."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from typing import IO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], op: str = "") -> str:
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk, then rename it over
    ``path``. If anything fails on the way, ``path`` keeps its old content (or stays absent) and
    the temporary file is removed. An existing file keeps its mode; a new one gets the mode a plain
    ``open(path, "wb")`` would give. ``op``, the public function writing, starts the messages of
    the errors raised here (a path naming a directory, or in a directory that does not exist).
    """
    path = os.fsdecode(path)  # str, bytes or os.PathLike
    where = f"{op}: " if op else ""
    if not path:
        raise _os_error(FileNotFoundError, errno.ENOENT, f"{where}cannot write '': the path is empty")
    if "\0" in path:
        raise ValueError(f"{where}cannot write {path!r}: the path contains a NUL byte")
    if os.path.isdir(path) or path.endswith((os.sep, os.altsep or os.sep)):
        raise _os_error(IsADirectoryError, errno.EISDIR,
                        f"{where}cannot write {path!r}: it names a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        if os.path.exists(directory):  # "model.npz/x": a file where the directory should be
            raise _os_error(NotADirectoryError, errno.ENOTDIR,
                            f"{where}cannot write {path!r}: {directory!r} is not a directory")
        raise _os_error(FileNotFoundError, errno.ENOENT,
                        f"{where}cannot write {path!r}: the directory {directory!r} does not exist")
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp makes the file private
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _os_error(cls: type[OSError], code: int, message: str) -> OSError:
    """``cls(message)`` with ``errno`` set; its text is just ``message`` (``cls(code, message, path)``
    would print "[Errno 2] message: 'path'", not starting with the function's name)."""
    error = cls(message)
    error.errno = code
    return error


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
