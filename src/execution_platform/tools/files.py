"""File built-ins: read, write, list, glob, stat and text search, all confined to a :class:`Workspace`.

The methods' docstrings and signatures are what the model sees as tool descriptions and schemas.
Every size the model can influence is capped, so one call cannot exhaust memory or the context.

Patterns (``search`` regexes and globs) are compiled with RE2, whose matching time is linear in the
input: Python's backtracking ``re`` needs seconds for ``(a+)+$`` on a short line and holds the GIL
meanwhile, which freezes the gateway's event loop even from a worker thread. A pattern RE2 cannot
express (backreferences, lookaround) is a clear invalid-request error, never a fallback to ``re``.
The methods are synchronous: the registry runs them in a worker thread, and each walk is bounded.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import re2

from ..errors import InvalidRequestError, NotFoundError, PayloadTooLargeError, PermissionDeniedError
from .sandbox import Workspace


@dataclass(frozen=True)
class FileLimits:
    max_read_bytes: int = 1_000_000
    max_write_bytes: int = 5_000_000
    max_entries: int = 1_000
    max_matches: int = 200
    max_search_file_bytes: int = 2_000_000
    max_line_chars: int = 400
    max_search_total_bytes: int = 50_000_000  # a search stops (truncated) after reading this much


def _options(*, literal: bool = False, ignore_case: bool = False) -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is reported to the caller, not printed to stderr
    options.literal = literal
    options.case_sensitive = not ignore_case
    return options


def compile_pattern(pattern: str, *, literal: bool = False, ignore_case: bool = False, param: str = "query") -> Any:
    """An RE2 pattern (linear-time matching); invalid or unsupported syntax is a 400 naming ``param``."""
    try:
        return re2.compile(pattern, _options(literal=literal, ignore_case=ignore_case))
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidRequestError(
            f"invalid regular expression: {detail} (the RE2 syntax is used: no backreferences or lookaround)",
            param=param,
        ) from None


def glob_regex(pattern: str) -> Any:
    """Compile a glob over POSIX relative paths: ``*`` and ``?`` stay in one segment, ``**`` spans them."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re2.escape("["))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end + 1
        else:
            out.append(re2.escape(pattern[i]))
            i += 1
    return compile_pattern("".join(out) + r"\z", param="glob")


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


class FileTools:
    """The file tools of one workspace."""

    def __init__(self, workspace: Workspace, limits: FileLimits | None = None) -> None:
        self.workspace = workspace
        self.limits = limits or FileLimits()

    def read_file(self, path: str, offset: int = 0, limit: int | None = None) -> str:
        """Read a text file from the workspace.

        Args:
            path: File path relative to the workspace.
            offset: Byte offset to start reading at.
            limit: Maximum number of bytes to read (default and maximum: the read limit).
        """
        cap = self.limits.max_read_bytes
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidRequestError("offset and limit must not be negative", param="offset")
        if limit is not None and limit > cap:
            raise PayloadTooLargeError(f"limit {limit} is over the read limit of {cap} bytes", param="limit")
        with self.workspace.open_file(path) as fd:
            size = os.fstat(fd).st_size
            if limit is None and size - offset > cap:
                raise PayloadTooLargeError(
                    f"'{path}' is {size} bytes, over the read limit of {cap} bytes; read it in parts "
                    "with offset and limit",
                    param="path",
                )
            want = cap if limit is None else limit
            chunks, got = [], 0
            while got < want:
                chunk = os.pread(fd, min(65536, want - got), offset + got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def write_file(self, path: str, content: str, append: bool = False) -> dict[str, Any]:
        """Write a text file in the workspace (parent directories are created).

        Args:
            path: File path relative to the workspace.
            content: The text to write.
            append: Append to the file instead of replacing its content.
        """
        data = content.encode("utf-8")
        if len(data) > self.limits.max_write_bytes:
            raise PayloadTooLargeError(
                f"content is {len(data)} bytes, over the write limit of {self.limits.max_write_bytes} bytes",
                param="content",
            )
        with self.workspace.open_file(path, write=True, create_dirs=True) as fd:
            if append:
                os.lseek(fd, 0, os.SEEK_END)
            else:
                os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            size = os.fstat(fd).st_size
        return {"path": self.workspace.relative(self.workspace.resolve(path)), "bytes_written": len(data), "size": size}

    def list_dir(self, path: str = ".") -> dict[str, Any]:
        """List a directory of the workspace: names, kinds and sizes.

        Args:
            path: Directory path relative to the workspace.
        """
        entries: list[dict[str, Any]] = []
        truncated = False
        with self.workspace.open_dir(path) as fd, os.scandir(fd) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if len(entries) >= self.limits.max_entries:
                    truncated = True
                    break
                st = entry.stat(follow_symlinks=False)
                item: dict[str, Any] = {"name": entry.name, "type": _kind(st.st_mode)}
                if stat.S_ISREG(st.st_mode):
                    item["size"] = st.st_size
                entries.append(item)
        return {"path": self.workspace.relative(self.workspace.resolve(path)), "entries": entries, "truncated": truncated}

    def glob(self, pattern: str, path: str = ".") -> dict[str, Any]:
        """Find files and directories whose workspace-relative path matches a glob (``**`` spans directories).

        Args:
            pattern: Glob such as ``*.py`` or ``src/**/*.md``, relative to ``path``.
            path: Directory to search under, relative to the workspace.
        """
        if os.path.isabs(pattern) or ".." in pattern.split("/"):
            raise PermissionDeniedError(
                f"glob pattern '{pattern}' must be relative and must not contain '..'",
                param="pattern",
                code="sandbox_refused",
            )
        regex = glob_regex(pattern)
        base = self.workspace.resolve(path)
        if not base.is_dir():
            raise NotFoundError(f"'{path}' is not a directory in the workspace", param="path")
        matches: list[str] = []
        truncated = False
        for rel in self._walk(base):
            if regex.match(rel):
                if len(matches) >= self.limits.max_entries:
                    truncated = True
                    break
                matches.append(self.workspace.relative(base / rel))
        return {"matches": matches, "truncated": truncated}

    def stat(self, path: str) -> dict[str, Any]:
        """Metadata of a workspace path: type, size, modification time, permissions.

        Args:
            path: Path relative to the workspace.
        """
        resolved = self.workspace.resolve(path)
        try:
            st = os.stat(resolved, follow_symlinks=False)
        except FileNotFoundError:
            raise NotFoundError(f"'{path}' does not exist in the workspace", param="path") from None
        return {
            "path": self.workspace.relative(resolved),
            "type": _kind(st.st_mode),
            "size": st.st_size,
            "modified": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
            "mode": oct(stat.S_IMODE(st.st_mode)),
            "is_symlink": self.workspace.final_is_link(path),
        }

    def search(
        self,
        query: str,
        path: str = ".",
        glob: str | None = None,
        regex: bool = False,
        ignore_case: bool = False,
    ) -> dict[str, Any]:
        """Search text files in the workspace for a string (or a regular expression); returns matching lines.

        Args:
            query: Text to find (an RE2 regular expression when ``regex`` is true: no backreferences or lookaround).
            path: Directory (or single file) to search, relative to the workspace.
            glob: Only search files whose path relative to ``path`` matches this glob, e.g. ``**/*.py``.
            regex: Treat ``query`` as a regular expression.
            ignore_case: Case-insensitive matching.
        """
        if not query:
            raise InvalidRequestError("query must not be empty", param="query")
        if len(query) > 1000:
            raise InvalidRequestError("query is longer than 1000 characters", param="query")
        matcher = compile_pattern(query, literal=not regex, ignore_case=ignore_case)
        only = glob_regex(glob) if glob else None
        base = self.workspace.resolve(path)
        if base.is_file():
            candidates = [(self.workspace.relative(base), base.name)]
        elif base.is_dir():
            candidates = [(self.workspace.relative(base / rel), rel) for rel in self._walk(base, files_only=True)]
        else:
            raise NotFoundError(f"'{path}' does not exist in the workspace", param="path")
        matches: list[dict[str, Any]] = []
        budget = [self.limits.max_search_total_bytes]
        for shown, rel in candidates:
            if only is not None and not only.match(rel):
                continue
            if budget[0] <= 0:
                return {"matches": matches, "truncated": True}
            for number, line in self._lines(shown, budget):
                if matcher.search(line):
                    if len(matches) >= self.limits.max_matches:
                        return {"matches": matches, "truncated": True}
                    matches.append({"path": shown, "line": number, "text": line[: self.limits.max_line_chars]})
        return {"matches": matches, "truncated": False}

    # -- helpers --------------------------------------------------------------------------------
    def _walk(self, base: Any, *, files_only: bool = False) -> list[str]:
        """Paths under ``base`` relative to it; symlinks are listed but never followed."""
        found: list[str] = []
        seen = 0  # every entry visited counts, so a tree of empty directories is bounded too
        for current, dirs, files in os.walk(base, followlinks=False):
            dirs.sort()
            rel_dir = os.path.relpath(current, base)
            prefix = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            names = sorted(files) if files_only else sorted(dirs + files)
            found.extend(prefix + name for name in names)
            seen += len(dirs) + len(files)
            if seen > 50 * self.limits.max_entries:
                break
        return found

    def _lines(self, shown: str, budget: list[int]) -> list[tuple[int, str]]:
        """Lines of one searchable file; binaries, non-regular files and oversized files are skipped.

        ``budget`` holds the bytes the whole search may still read; this file's size is taken from it.
        """
        try:
            with self.workspace.open_file(shown) as fd:
                size = os.fstat(fd).st_size
                if size > self.limits.max_search_file_bytes:
                    return []
                budget[0] -= size
                data = os.pread(fd, size, 0)
        except (PermissionDeniedError, InvalidRequestError, NotFoundError):
            return []
        if b"\x00" in data[:8192]:
            return []
        text = data.decode("utf-8", errors="replace")
        return list(enumerate(text.splitlines(), start=1))
