"""Files the library writes appear complete or not at all, and output paths are checked first.

:func:`atomic_path` gives a temporary name beside the target; the target is replaced by a
rename only when the block finishes, and the temporary file is removed when it fails or is
interrupted (Ctrl-C, or SIGTERM in the CLI, which turns it into an exception). A ``kill -9``
can leave a ``.<name>.*.tmp`` file behind, never a half-written target.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "check_output_path"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in ``path``'s folder (created if missing); on success it is renamed
    to ``path`` (replacing it), on any exception it is deleted, and so are the folders created
    for it (a failed run leaves no empty folder behind).

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out" / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['a.txt'])
    >>> oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # not mkstemp's private 0600
    True
    """
    path = Path(path)
    created = _missing_folders(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = False
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        try:
            yield tmp
            # mkstemp makes the file private (0600): give it the mode an ordinary new file gets, or
            # the mode of the file it replaces.
            os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
            os.replace(tmp, path)
            done = True
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        for folder in [] if done else created:  # deepest first; one another process filled stays
            with contextlib.suppress(OSError):
                folder.rmdir()


def _missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, the deepest first."""
    missing, folder = [], path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it back at once
    os.umask(mask)
    return mask


def check_output_path(path: str | os.PathLike, *, force: bool = False, flag: str = "--force", inputs=()) -> Path:
    """Refuse, before any work starts, an output that is a folder, exists (unless ``force``), is
    one of the command's ``inputs`` (even with ``force``: it would be lost) or cannot be created.
    Nothing is created: :func:`atomic_path` makes a missing folder when the output is written.

    Examples
    --------
    >>> import tempfile
    >>> check_output_path(Path(tempfile.mkdtemp()) / "new" / "p.csv").parent.exists()
    False
    >>> check_output_path(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ValueError: ... is a folder; pass the name of the file to write.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the name of the file to write.")
    for source in inputs:
        if source is not None and path.exists() and Path(source).exists() and os.path.samefile(source, path):
            raise ValueError(f"{path} is also an input of this command: writing it would destroy it; name another.")
    if path.exists() and not force:
        raise ValueError(f"{path} already exists; pass {flag} to overwrite it.")
    missing = _missing_folders(path)
    existing = missing[-1].parent if missing else path.parent
    if not existing.is_dir():
        raise ValueError(f"Cannot create the folder for {path}: {existing} is a file.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write to {existing} (permission denied).")
    return path
