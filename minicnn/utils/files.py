"""Atomic file writes: a reader sees the old file or the new one, never half of one."""
import contextlib
import os
import tempfile
from pathlib import Path


def new_file_mode():
    """The permissions open() would give a new file: 0o666 less the umask (mkstemp gives 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Write through a temporary file beside `path`, renamed over `path` when the block succeeds.

        with atomic_write("model.h5") as stream:
            stream.write(data)

    If the block raises, the temporary file is removed and `path` is untouched. Inside
    the block, `stream.name` is the temporary file's path (to verify it before the rename).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)  # reopened by name, so that stream.name is the path
    try:
        with open(temporary, mode, encoding=encoding) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, new_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
