"""Path confinement: every file a built-in tool touches must really live inside the workspace.

Two layers, because either alone is not enough:

1. :meth:`Workspace.resolve` rejects absolute paths and resolves the rest to a real path (``..`` and
   every symlink followed), which must be ``is_relative_to`` the resolved root. Comparing resolved
   paths, not string prefixes, is what stops ``../workspace2`` and links that point outside.
2. Files and directories are then opened by walking that resolved path one component at a time from
   a descriptor of the root with ``O_NOFOLLOW`` (``openat`` style). The resolved path contains no
   symlinks, so meeting one means the tree changed after the check (a race) and the call is refused.
   Opened files must be regular (no devices, FIFOs or sockets) and, for writing and reading, have a
   single hard link (a hard link could alias a file outside the workspace).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InvalidRequestError, NotFoundError, PermissionDeniedError

_PERSONA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Workspace:
    """A directory the built-in tools are confined to. Paths given to tools are relative to it."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        path = Path(root).expanduser()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        resolved = path.resolve(strict=True)
        if not resolved.is_dir():
            raise NotADirectoryError(f"workspace root {resolved} is not a directory")
        self.root = resolved

    @classmethod
    def for_persona(cls, base: str | os.PathLike[str], persona: str) -> Workspace:
        """The persona's own subdirectory of ``EP_WORKSPACE_ROOT`` (created on first use)."""
        if not _PERSONA.match(persona) or persona in (".", ".."):
            raise InvalidRequestError(f"persona name '{persona}' cannot be used as a workspace directory")
        return cls(Path(base) / persona)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- path checks ----------------------------------------------------------------------------
    def resolve(self, path: str) -> Path:
        """The real path of ``path`` (relative to the root); refused unless it stays inside the root."""
        if not isinstance(path, str):
            raise InvalidRequestError("path must be a string", param="path")
        if "\x00" in path:
            raise PermissionDeniedError("path contains a NUL byte", param="path", code="sandbox_refused")
        if os.path.isabs(path) or path.startswith("~"):
            raise PermissionDeniedError(
                f"absolute path '{path}' refused: paths are relative to the workspace",
                param="path",
                code="sandbox_refused",
            )
        resolved = Path(os.path.realpath(self.root / (path or ".")))
        if not resolved.is_relative_to(self.root):
            raise PermissionDeniedError(
                f"path '{path}' resolves outside the workspace", param="path", code="sandbox_refused"
            )
        return resolved

    def relative(self, path: Path) -> str:
        """``path`` as the tools show it: relative to the root, POSIX separators."""
        rel = path.relative_to(self.root).as_posix()
        return rel or "."

    def parts(self, path: str) -> tuple[Path, tuple[str, ...]]:
        resolved = self.resolve(path)
        return resolved, resolved.relative_to(self.root).parts

    # -- race-safe opening ----------------------------------------------------------------------
    @contextmanager
    def open_dir(self, path: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory at ``path``, reached without following any symlink."""
        _, parts = self.parts(path)
        fd = self._walk(parts, create=create, display=path)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def open_file(self, path: str, *, write: bool = False, create_dirs: bool = False) -> Iterator[int]:
        """A descriptor of the regular file at ``path`` (created when writing), never via a symlink."""
        _resolved, parts = self.parts(path)
        if not parts:
            raise InvalidRequestError(f"'{path or '.'}' is the workspace directory, not a file", param="path")
        if write and self.final_is_link(path):
            raise PermissionDeniedError(
                f"refusing to write through the symlink '{path}'", param="path", code="sandbox_refused"
            )
        parent = self._walk(parts[:-1], create=write and create_dirs, display=path)
        try:
            flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            flags |= (os.O_WRONLY | os.O_CREAT) if write else os.O_RDONLY
            try:
                fd = os.open(parts[-1], flags, 0o644, dir_fd=parent)
            except OSError as exc:
                raise _os_error(exc, path) from None
        finally:
            os.close(parent)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise InvalidRequestError(f"'{path}' is a directory, not a file", param="path")
            if not stat.S_ISREG(st.st_mode):
                raise PermissionDeniedError(
                    f"'{path}' is not a regular file (device, FIFO or socket); refused",
                    param="path",
                    code="sandbox_refused",
                )
            if st.st_nlink > 1:
                raise PermissionDeniedError(
                    f"'{path}' has {st.st_nlink} hard links and may alias a file outside the workspace; refused",
                    param="path",
                    code="sandbox_refused",
                )
        except BaseException:
            os.close(fd)
            raise
        try:
            yield fd
        finally:
            os.close(fd)

    def final_is_link(self, path: str) -> bool:
        """Whether the last component of ``path`` (trailing slashes ignored) is itself a symlink."""
        head, name = os.path.split(path.rstrip("/"))
        if name in ("", ".", ".."):
            return False
        return os.path.islink(Path(os.path.realpath(self.root / head)) / name)

    def _walk(self, parts: tuple[str, ...], *, create: bool, display: str) -> int:
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for name in parts:
                if create:
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    except OSError as exc:
                        raise _os_error(exc, display) from None
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(name, fd):
                        exc = OSError(errno.ELOOP, "symlink")  # O_DIRECTORY reports ENOTDIR for links
                    raise _os_error(exc, display) from None
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _os_error(exc: OSError, path: str) -> Exception:
    """A clear taxonomy error for what went wrong opening ``path``."""
    code = exc.errno
    if code == errno.ENOENT:
        return NotFoundError(f"'{path}' does not exist in the workspace", param="path", code="file_not_found")
    if code == errno.ELOOP:
        return PermissionDeniedError(
            f"'{path}' changed into a symlink while being opened; refused", param="path", code="sandbox_refused"
        )
    if code == errno.ENOTDIR:
        return InvalidRequestError(f"a component of '{path}' is not a directory", param="path")
    if code == errno.EISDIR:
        return InvalidRequestError(f"'{path}' is a directory, not a file", param="path")
    if code in (errno.ENXIO, errno.ENODEV):
        return PermissionDeniedError(
            f"'{path}' is not a regular file (device, FIFO or socket); refused", param="path", code="sandbox_refused"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDeniedError(f"'{path}': permission denied", param="path")
    return InvalidRequestError(f"'{path}': {exc.strerror or exc}", param="path")
