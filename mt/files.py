"""Writing files without losing anything: atomic replaces, and one clear error when a write fails.

A write that fails (no space left, a read-only folder, no permission) raises MTError naming the
path and the cause; the file it was replacing is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mt.errors import MTError


def cause(e: Exception) -> str:
    """The reason of a failed write in a few words ('No space left on device')."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e)  # safetensors: "Error while serializing: I/O error: No space left on device (os error 28)"
    return text.rsplit("I/O error: ", 1)[-1]


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn an OSError raised inside the block into one MTError naming `path`."""
    try:
        yield
    except OSError as e:
        raise MTError(f"cannot write {path}: {cause(e)}") from None


def _new_file_mode() -> int:
    """The mode open() gives a new file (0o666 less the umask); mkstemp's own is 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


NEW_FILE_MODE = _new_file_mode()  # read once, at import: os.umask is process-wide


def temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new temp file in path's folder, to be renamed onto `path`; its mode is the one open()
    would give `path` (mkstemp's own 0o600 would survive the rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=suffix)
    os.fchmod(fd, NEW_FILE_MODE)
    return fd, tmp


def write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (a temp file renamed into place)."""
    path = Path(path)
    tmp = None
    with writing(path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temp_beside(path)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)


def append_line(path: Path, line: str) -> None:
    """Append one line; a write that fails part-way is cut back so the file ends with a whole line."""
    path = Path(path)
    with writing(path), open(path, "ab") as f:
        start = f.tell()
        try:
            f.write((line + "\n").encode("utf-8"))
            f.flush()
        except OSError:
            f.truncate(start)
            raise


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Build a folder in a temp sibling; it replaces `folder` only if the block succeeds."""
    with writing(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    try:
        with writing(folder):
            yield tmp
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def decode_line(raw: bytes, path: Path, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MTError(f"{path}:{lineno}: invalid UTF-8 (byte {e.start})") from None


def read_lines(path: Path) -> Iterator[str]:
    """Yield decoded lines (without newline) with file:line errors on invalid UTF-8."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            yield decode_line(raw, path, n).rstrip("\r\n")


def count_lines(path: Path) -> int:
    """Lines in a file, counting a last line without a newline."""
    with open(path, "rb") as f:
        n = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            n += f.read(1) != b"\n"
    return n
