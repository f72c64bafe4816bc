"""Writing files so that a crash, a full disk or a killed process never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


class SaveError(OSError):
    """A file could not be written (disk full, read-only folder, folder gone); the message says what to do."""


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free space on the disk that holds folder (or its nearest existing parent); None when unknown."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def _mb(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**20:,.0f} MB"


def save_error(path: str | os.PathLike, error: BaseException, needed: int | None = None) -> SaveError:
    """One sentence naming the folder, what went wrong, the free space (and what was needed) and what to do."""
    folder = Path(path).parent
    need = f", about {_mb(needed)} needed" if needed else ""
    return SaveError(f"Could not write {Path(path).name} in {folder} ({error}); free space there is "
                     f"{_mb(free_bytes(folder))}{need}. Free some space or choose another output folder, then try "
                     "again; files saved before are unchanged.")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on any failure it is removed.

    torch.save raises RuntimeError (not OSError) on a full disk, so every exception cleans up; OSError and
    RuntimeError from the writer become a SaveError that names the folder and the free space.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        if isinstance(e, SaveError):
            raise
        if isinstance(e, (OSError, RuntimeError)) and not isinstance(e, (FileNotFoundError, NotImplementedError)):
            raise save_error(path, e) from e
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None], mode: str = "w",
                 encoding: str | None = "utf-8") -> None:
    """Open a temporary file beside path, let write(f) fill it, then replace path with it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        kwargs = {"encoding": encoding} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the file


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def unwritable_reason(folder: str | os.PathLike) -> str | None:
    """Create folder if needed and try to write a file in it: None when that works, else why not.

    A real temporary file is the only sure test: permissions, read-only disks and ACLs all show up (os.access
    says yes to root on a read-only mount).
    """
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def ensure_writable_folder(folder: str | os.PathLike, what: str = "the output") -> Path:
    """Create folder if needed and prove a file can be written in it; else SaveError naming it, in one sentence."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise SaveError(f"{what}: {folder} is a file, not a folder; give a folder.")
    if why := unwritable_reason(folder):
        raise SaveError(f"{what}: cannot write in {folder} ({why}); choose a folder you can write to.")
    return folder


def ensure_writable_file(path: str | os.PathLike, what: str = "the output file") -> Path:
    """Check, before any work, that path can be written: not a folder, and its folder writable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise SaveError(f"{what}: {path} is a folder; give a file name, e.g. {path / 'out.json'}.")
    ensure_writable_folder(path.parent if str(path.parent) else Path("."), what)
    return path


def new_lines(path: str | os.PathLike, offset: int) -> tuple[list[str], int]:
    """The complete lines written to a file since byte `offset` (a file another process appends to), and the
    offset after them; a line still being written waits for the next read. A missing file has no lines yet."""
    try:
        with Path(path).open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()], offset + end
