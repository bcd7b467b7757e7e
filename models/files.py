"""Writing result files all or nothing: the kit's one way to put files and folders in place.

Everything is first written beside its target under a hidden temporary name (`.name.XXXX`) and moved in
by rename once complete, so a failure midway never leaves a half-written file where a good one was:

- `atomic_path(path)`: one file;
- `atomic_files(paths)`: several files that are replaced together or not at all (a failure while
  moving them in puts the old ones back);
- `atomic_folder(path)`: a whole folder (e.g. a model bundle), built beside it and swapped in.

New files and folders get the mode a plain `open()` / `mkdir()` would give them (0o666 / 0o777 less the
umask), not the private 0o600 / 0o700 of `tempfile`. Temporaries are removed on any exception; run a
command's work under `exit_on_sigterm()` so that SIGTERM unwinds (and cleans up) the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's umask (read by setting it and setting it back: the only portable way)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def temporary_sibling(path: str | os.PathLike, folder: bool = False) -> Path:
    """A new, hidden temporary file (or folder) beside `path`, same suffix, with the umask's mode."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{target.name}.", "" if folder else target.suffix
    if folder:
        tmp = tempfile.mkdtemp(prefix=prefix, dir=target.parent)
        os.chmod(tmp, 0o777 & ~umask())
    else:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~umask())
    return Path(tmp)


def check_out_folder(name: str, path: str | os.PathLike) -> Path:
    """`path` as a Path if it is a folder, or a path where one can be made, that this process may write
    into; ValueError naming `name` otherwise (a regular file, a path under a file, no write permission)."""
    out = Path(path)
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{name} must be a folder (or a path where one can be made); {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name} must be writable; got {str(out)!r} ({existing} is not writable)")
    return out


def remove(path: Path) -> None:
    """Remove a file or a folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


@contextmanager
def atomic_files(paths: Mapping[str, str | os.PathLike]) -> Iterator[dict[str, Path]]:
    """Yield {key: temporary path} beside each of `paths`; on success all replace their targets together:
    the old targets are first set aside, then the new files moved in; a failure at any point puts the old
    files back, so either every target is new or every target is as it was."""
    targets = {key: Path(p) for key, p in paths.items()}
    temporaries: dict[str, Path] = {}
    try:
        for key, target in targets.items():
            temporaries[key] = temporary_sibling(target)
        yield dict(temporaries)
        for tmp in temporaries.values():  # a writer may have replaced the file (safetensors: mode 0o600)
            if tmp.is_file() and not tmp.is_symlink():
                os.chmod(tmp, 0o666 & ~umask())
        move_into_place([(temporaries[key], targets[key]) for key in targets])
    finally:
        for tmp in temporaries.values():
            remove(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    with atomic_files({"file": path}) as tmp:
        yield tmp["file"]


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary folder beside `path`; on success it replaces the folder `path` (whose
    old contents are then deleted); on failure `path` is left as it was and the temporary is removed."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"path must be a folder or not exist; {target} is a file")
    tmp = temporary_sibling(target, folder=True)
    try:
        yield tmp
        for path in tmp.rglob("*"):  # writers that replace their files (safetensors) leave 0o600
            if not path.is_symlink():
                os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask())
        move_into_place([(tmp, target)])
    finally:
        remove(tmp)


def move_into_place(pairs: list[tuple[Path, Path]]) -> None:
    """Move each new path onto its target, all or nothing: the old targets are set aside first, and a
    failure removes what was moved in and puts them back. (A folder renames onto an empty folder.)
    SIGTERM waits until the renames are done or undone (it is blocked meanwhile)."""
    with _sigterm_blocked():
        _move_into_place(pairs)


@contextmanager
def _sigterm_blocked() -> Iterator[None]:
    """SIGTERM held back for the block (delivered right after it), where the platform allows it."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _move_into_place(pairs: list[tuple[Path, Path]]) -> None:
    set_aside: list[tuple[Path, Path]] = []  # (backup, target)
    moved: list[Path] = []
    try:
        for _, target in pairs:
            if os.path.lexists(target):
                backup = temporary_sibling(target, folder=target.is_dir() and not target.is_symlink())
                os.replace(target, backup)
                set_aside.append((backup, target))
        for new, target in pairs:
            os.replace(new, target)
            moved.append(target)
    except BaseException:
        for target in moved:
            remove(target)
        for backup, target in set_aside:
            os.replace(backup, target)
        raise
    for backup, _ in set_aside:
        remove(backup)


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM under `exit_on_sigterm`; exits with status 128 + 15."""


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into a `Terminated` exception for the block, so that every `finally` (and so every
    temporary file's removal) runs before the process exits; the previous handler comes back after."""

    def handler(signum, frame) -> None:
        raise Terminated(128 + signum)

    try:
        previous, installed = signal.signal(signal.SIGTERM, handler), True
    except ValueError:  # not the main thread: signals cannot be handled here, leave them as they are
        previous, installed = None, False
    if not installed:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
