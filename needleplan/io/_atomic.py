"""Atomic file output: write to a temporary file in the same folder, then ``os.replace``.

A reader (or a crash) never sees a half-written output file: either the old file (or no
file) is there, or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

from needleplan.errors import OutputError

__all__ = ["atomic_write", "atomic_path", "prepare_out_dir"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _full_suffix(path: Path) -> str:
    """``'.nii.gz'`` for ``a.nii.gz``; writers such as SimpleITK pick the format from it."""
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in (".gz", ".bz2", ".xz"):
        return "".join(suffixes[-2:])
    return path.suffix


def _check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"cannot write '{path}': folder '{folder}' does not exist", path=path)
    if not folder.is_dir():
        raise OutputError(f"cannot write '{path}': '{folder}' is not a folder", path=path)
    if path.is_dir():
        raise OutputError(f"cannot write '{path}': it is a folder", path=path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension); move it into place on success.

    Use this for writers that want a file name (SimpleITK, reportlab, matplotlib's
    ``savefig``).  On an exception inside the block the temporary file is deleted and
    ``path`` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The final output file.  Its folder must exist.

    Yields
    ------
    pathlib.Path
        Where to write; hidden (dot) name in the same folder, same full suffix.

    Raises
    ------
    needleplan.errors.OutputError
        The folder is missing or not writable, or the final rename fails.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("done")
    >>> out.read_text()
    'done'
    """
    path = Path(path)
    _check_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + _full_suffix(path),
                                        dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    with contextlib.suppress(OSError):  # mkstemp makes 0600; give the usual permissions
        os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"cannot write '{path}': the writer produced no file", path=path)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *,
                 encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; replace ``path`` with it on success.

    Parameters
    ----------
    path : str or os.PathLike
        The final output file.  Its folder must exist.
    mode : {'wb', 'w'}
        Binary or text mode.
    encoding : str, optional
        Text encoding (default UTF-8 in text mode).

    Yields
    ------
    file object
        Flushed and fsync'ed before the rename.

    Raises
    ------
    needleplan.errors.OutputError
        The folder is missing or not writable.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "plan.json"
    >>> with atomic_write(out, "w") as f:
    ...     _ = f.write("{}")
    >>> out.read_text()
    '{}'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp:
        try:
            f = open(tmp, mode, encoding=encoding)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}", path=path) from exc
        with f:
            yield f
            f.flush()
            with contextlib.suppress(OSError):
                os.fsync(f.fileno())


def prepare_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` if needed and check that files can be written into it.

    Raises
    ------
    needleplan.errors.OutputError
        One line naming the folder when it cannot be created or written.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write the plan into '{out}': it is a file, not a folder", path=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder '{out}': {exc.strerror or exc}", path=out) from exc
    try:
        with tempfile.NamedTemporaryFile(dir=out, prefix=".needleplan-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write into the output folder '{out}': {exc.strerror or exc}", path=out) from exc
    return out
