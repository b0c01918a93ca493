"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
import contextlib
import os
import secrets
import tempfile
from pathlib import Path

NEW_FILE_MODE = 0o666  # what open() asks for; the operating system takes the umask off


def _create_exclusively(path, flags):
    """An opener for open(): create `path` (never an existing file) with mode 0o666 less the umask,
    as open() does for a new file (tempfile.mkstemp would give 0o600)."""
    return os.open(path, flags | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)


def new_file_mode():
    """The permissions a new file gets: 0o666 less the umask. Read without os.umask(), which
    would change the mask for every thread while it looks: from Linux's /proc/self/status, or
    elsewhere from a scratch file made the way atomic_write makes its files."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return NEW_FILE_MODE & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with tempfile.TemporaryDirectory() as folder:
        probe = os.path.join(folder, "probe")
        os.close(_create_exclusively(probe, os.O_WRONLY))
        return os.stat(probe).st_mode & 0o777


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Write through a temporary file beside `path`, renamed over `path` when the block succeeds.

        with atomic_write("model.h5") as stream:
            stream.write(data)

    If the block raises, the temporary file is removed and `path` is untouched. Inside
    the block, `stream.name` is the temporary file's path (to verify it before the rename).
    The file is made as open() makes one, with mode 0o666 less the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:   # a fresh random name; another writer's file is never reused
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            stream = open(temporary, mode, encoding=encoding, opener=_create_exclusively)
            break
        except FileExistsError:
            continue
    try:
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

