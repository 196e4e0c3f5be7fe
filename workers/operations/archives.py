"""One writer at a time in the archive directory (SHOESHOP_ARCHIVE_DIR).

The relay appends pruned rows to the day's archive files (``retention``); an erasure reads every
outbox archive, rewrites it and swaps the new file in (``erasure``). Were a batch appended
between the erasure's read and its swap, the swap would throw it away, after the relay had
already deleted those rows from the database: lost. Both take an exclusive ``flock`` on one lock
file of the directory around their work, so each sees the other's whole change. An advisory lock
of the operating system: it is released when its holder exits, however it exits, so a killed
relay never leaves the directory locked. The archive directory is a local one (the relay's host);
a network file system without working ``flock`` is not supported.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".archive.lock"


@contextmanager
def locked(archive_dir: Path) -> Iterator[None]:
    """Hold the archive directory's lock (waiting for it) while the block runs. Raises OSError
    when the directory cannot be made or the lock file opened."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    with (archive_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
