"""Reading releases from files and folders.

Supported: Markdown with YAML front matter (read as the text a reader sees: ``qa.ingest.markdown``),
plain text, HTML, PDF, JSON and JSONL.
A file that cannot be read becomes a ``Skipped`` entry with a one-line reason,
so one bad file never costs the rest of a batch.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from qa.ingest.markdown import render_markdown
from qa.types import Release, content_hash

logger = logging.getLogger(__name__)

SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".json", ".jsonl")
MAX_BYTES = 50 * 1024 * 1024
"""Files above this size (50 MiB) are refused before a byte is read: a release is rarely
over 1 MB and a whole archive as one JSONL file is rarely over a few MB, while a file
read whole may cost several times its size in memory while it is parsed."""
MAX_FRONT_MATTER = 64 * 1024
"""Front matter is a handful of fields; more than this is not a release's header."""

_KNOWN_KEYS = ("title", "date", "source", "url", "text")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


class ReleaseError(ValueError):
    """A file (or record) that cannot be read as a release; the message says why."""


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str
    reason: str
    duplicate: bool = False
    """True when the file was read but its text is already in the batch under another name."""

    def __str__(self) -> str:
        """One line, whatever the file is called: control characters in a name (a newline would
        forge another line of a report) are shown escaped."""
        return f"{printable(self.path)}: {printable(self.reason)}"


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped as Python writes it (``\\n``)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True, slots=True)
class ReadReport:
    releases: tuple[Release, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class FileRead:
    """What reading one file gave: its releases, and what of it was skipped (the whole file
    when it could not be read, else bad lines of a JSONL file)."""

    name: str
    releases: tuple[Release, ...]
    skipped: tuple[Skipped, ...] = ()


FileReader = Callable[[Sequence[tuple[Path, str]]], Iterable[FileRead]]
"""Reads (file, name) pairs, yielding one ``FileRead`` per pair in the same order: ``read_path``
in this process, or spread over workers (``qa.index.ray_build``)."""


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes, name: str = "<bytes>") -> str:
    """UTF-8 first; otherwise the encoding charset-normalizer detects.

    Binary data (NUL bytes, or mostly control characters) is refused.
    """
    if not data.strip():
        raise ReleaseError("empty file")
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReleaseError("binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise ReleaseError("not text: no character encoding fits its bytes") from None
        encoding = best.encoding
        # Short Western texts are ambiguous among single-byte code pages; releases in
        # English come from Windows far more often than from Central Europe.
        if encoding.startswith(("cp125", "iso8859", "latin", "mac_")):
            try:
                text, encoding = data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError:
                text = str(best)
        else:
            text = str(best)
        logger.warning("%s: not UTF-8, decoded as %s", name, encoding)
    controls = sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > 0.05 * min(len(text), 4096):
        raise ReleaseError("binary file (mostly control characters), not text")
    return _normalize(text)


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return text.strip()


def _parse_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ReleaseError(f"date {value!r} is not a date (expected YYYY-MM-DD)")


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def make_release(
    text: str,
    *,
    path: str,
    title: str | None = None,
    date: Any = None,
    source: Any = None,
    url: Any = None,
    metadata: dict[str, Any] | None = None,
) -> Release:
    """Build a validated ``Release``; its id is a hash of its text."""
    text = _normalize(text)
    if not text:
        raise ReleaseError("no text")
    if title is None or not str(title).strip():
        first = next(line for line in text.split("\n") if line.strip())
        title = first.strip().lstrip("#").strip()[:200]
    url_s = _str_or_none(url)
    if url_s is not None and not re.match(r"^https?://", url_s, re.I):
        logger.warning("%s: url %r is not http(s); dropped", path, url_s)
        url_s = None
    meta = tuple(sorted((str(k), _meta_value(v)) for k, v in (metadata or {}).items()))
    return Release(
        id=content_hash(text),
        text=text,
        title=" ".join(str(title).split()),
        path=path,
        date=_parse_date(date),
        source=_str_or_none(source),
        url=url_s,
        metadata=meta,
    )


def _meta_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


# ---------------------------------------------------------------- formats


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader without aliases: front matter never needs them, and nested aliases
    ("billion laughs") expand to gigabytes once the metadata is serialized."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise ReleaseError("front matter uses YAML aliases (*name), which are not allowed")
        return super().compose_node(parent, index)


def _load_front_matter(text: str) -> Any:
    if len(text) > MAX_FRONT_MATTER:
        raise ReleaseError(f"front matter is over {MAX_FRONT_MATTER // 1024} KB")
    try:
        return yaml.load(text, Loader=_FrontMatterLoader)  # a SafeLoader: no Python objects
    except ReleaseError:
        raise
    except yaml.YAMLError as e:
        reason = str(e).splitlines()[0]
        raise ReleaseError(f"front matter is not valid YAML ({reason})") from None
    except RecursionError:
        raise ReleaseError("front matter is nested too deeply") from None
    except ValueError as e:  # a timestamp that is no date, e.g. 2021-13-45
        raise ReleaseError(f"front matter has an invalid value ({e})") from None


def _read_markdown(data: bytes, name: str) -> list[Release]:
    text = decode_bytes(data, name)
    fields: dict[str, Any] = {}
    m = _FRONT_MATTER.match(text)
    if m:
        loaded = _load_front_matter(m.group(1))
        if loaded is not None and not isinstance(loaded, dict):
            raise ReleaseError("front matter is not a YAML mapping of keys to values")
        fields = loaded or {}
        text = text[m.end() :]
    rendered = render_markdown(text)
    if rendered.links and "links" not in fields:
        fields = {**fields, "links": [[link.text, link.url] for link in rendered.links]}
    return [_from_fields(fields, rendered.text, name)]


def _from_fields(fields: dict[str, Any], text: str, name: str) -> Release:
    extra = {k: v for k, v in fields.items() if k not in _KNOWN_KEYS}
    return make_release(
        text,
        path=name,
        title=_str_or_none(fields.get("title")),
        date=fields.get("date"),
        source=fields.get("source"),
        url=fields.get("url"),
        metadata=extra,
    )


def _read_text(data: bytes, name: str) -> list[Release]:
    return [make_release(decode_bytes(data, name), path=name)]


MAX_HTML_DEPTH = 1000
"""HTML nested deeper than this is refused: the parser gives up on it silently (no text), and no
real page nests a thousand elements deep."""
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())  # noqa: SIM905


def html_depth(html: str, limit: int = MAX_HTML_DEPTH) -> int:
    """How deep the elements nest (a quick count of open and close tags, stopping past ``limit``)."""
    depth = deepest = 0
    for m in _TAG.finditer(html):
        closing, tag, selfclosing = m.group(1), m.group(2).lower(), m.group(3)
        if tag in _VOID or selfclosing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _read_html(data: bytes, name: str) -> list[Release]:
    import trafilatura

    html = decode_bytes(data, name)
    if html_depth(html) > MAX_HTML_DEPTH:
        raise ReleaseError(f"HTML is nested too deeply (over {MAX_HTML_DEPTH} levels) to be read")
    text = trafilatura.extract(
        html, include_comments=False, include_tables=True, favor_recall=True, deduplicate=False
    )
    if not text or not text.strip():
        raise ReleaseError("HTML holds no readable text (only scripts, styles or markup)")
    meta = trafilatura.extract_metadata(html)
    title = meta.title if meta is not None else None
    date = meta.date if meta is not None else None
    url = meta.url if meta is not None else None
    source = (meta.sitename or meta.author) if meta is not None else None
    try:
        date_value = _parse_date(date)
    except ReleaseError:
        date_value = None
    return [make_release(text, path=name, title=title, date=date_value, source=source, url=url)]


def _read_pdf(data: bytes, name: str) -> list[Release]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ReleaseError("PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
    except ReleaseError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise ReleaseError(f"not a readable PDF ({e})") from None
    except Exception as e:  # pypdf raises many kinds on broken files
        if "crypt" in str(e).lower():
            raise ReleaseError("PDF is encrypted") from None
        raise ReleaseError(f"not a readable PDF ({type(e).__name__}: {e})") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise ReleaseError("PDF has no extractable text (image-only or scanned?)")
    title = getattr(info, "title", None) if info is not None else None
    return [make_release(text, path=name, title=title)]


def _records_from_json(obj: Any, name: str) -> list[Release]:
    records = obj if isinstance(obj, list) else [obj]
    out = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            raise ReleaseError(f"record {i} is not an object with a 'text' string")
        out.append(_from_fields(rec, rec["text"], f"{name}#{i}" if len(records) > 1 else name))
    return out


def _read_json(data: bytes, name: str) -> list[Release]:
    try:
        obj = json.loads(decode_bytes(data, name))
    except json.JSONDecodeError as e:
        raise ReleaseError(f"invalid JSON ({e})") from None
    except RecursionError:
        raise ReleaseError("JSON is nested too deeply") from None
    return _records_from_json(obj, name)


_READERS = {
    ".md": _read_markdown,
    ".markdown": _read_markdown,
    ".txt": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".json": _read_json,
}


def read_bytes(data: bytes, name: str) -> list[Release]:
    """Read releases from the bytes of one file named ``name`` (its suffix picks the format)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".jsonl":
        releases, skipped = _read_jsonl(data, name)
        if skipped:
            raise ReleaseError("; ".join(s.reason for s in skipped))
        return releases
    reader = _READERS.get(suffix)
    if reader is None:
        raise ReleaseError(f"unsupported file type {suffix!r} (supported: {', '.join(SUFFIXES)})")
    try:
        return reader(data, name)
    except ReleaseError:
        raise
    except Exception as e:  # a parser's surprise must cost one file, never the batch
        logger.debug("%s: unexpected error while reading", name, exc_info=True)
        raise ReleaseError(f"cannot be read ({type(e).__name__}: {e})") from None


def _read_jsonl(data: bytes, name: str) -> tuple[list[Release], list[Skipped]]:
    """JSONL: a broken line skips that line only."""
    text = decode_bytes(data, name)
    releases: list[Release] = []
    skipped: list[Skipped] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{name}#L{lineno}"
        try:
            rec = json.loads(line)
            releases.extend(_records_from_json(rec, where))
        except json.JSONDecodeError as e:
            skipped.append(Skipped(where, f"line {lineno} is not valid JSON ({e.msg})"))
        except RecursionError:
            skipped.append(Skipped(where, f"line {lineno}: JSON is nested too deeply"))
        except ReleaseError as e:
            skipped.append(Skipped(where, f"line {lineno}: {e}"))
    if not releases and not skipped:
        raise ReleaseError("empty file")
    return releases, skipped


def _load(p: Path) -> bytes:
    """The bytes of a regular file, refusing one over ``MAX_BYTES`` before reading it.

    Opened without blocking and checked on the open descriptor, so a FIFO or a device in the
    corpus is refused at once instead of hanging the reader (and the writer lock it holds).
    """
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ReleaseError("not a regular file (a FIFO, socket or device), not read")
            if st.st_size > MAX_BYTES:
                raise ReleaseError(
                    f"file is {st.st_size / 2**20:.0f} MB, over the {MAX_BYTES // 2**20} MB limit"
                )
            os.set_blocking(f.fileno(), True)
            data = f.read(MAX_BYTES + 1)  # the file may have grown since stat
    except OSError as e:
        raise ReleaseError(f"cannot read ({e.strerror or e})") from None
    if len(data) > MAX_BYTES:
        raise ReleaseError(f"file is over the {MAX_BYTES // 2**20} MB limit")
    return data


def read_file(path: str | os.PathLike[str], name: str | None = None) -> list[Release]:
    """Read one file; raises ``ReleaseError`` saying why it cannot be read."""
    p = Path(path)
    return read_bytes(_load(p), name if name is not None else p.name)


# ---------------------------------------------------------------- folders


def iter_files(
    paths: Iterable[str | os.PathLike[str]],
    on_skip: Callable[[str, str], None] | None = None,
) -> Iterator[tuple[Path, str]]:
    """Yield (file, name) for supported files under ``paths``, sorted.

    Symlinked folders are not followed (no loops); a symlinked file is read only when it points
    at a regular file inside the folder being read (a link elsewhere, say to /etc/passwd, is not);
    FIFOs, sockets and devices are never read. Each is reported to ``on_skip(name, reason)``,
    like folders that cannot be listed. The walk keeps its own stack, so
    nesting depth is bounded by the file system, not by Python's recursion limit.
    ``name`` is the path relative to the root's parent, so ``corpus/a.md`` stays
    ``corpus/a.md`` wherever the command runs.
    """
    for root in paths:
        r = Path(root)
        if r.is_file():
            yield r, r.name
            continue
        if not r.is_dir():
            raise FileNotFoundError(f"no such file or folder: {str(root)!r}")
        inside = r.resolve()
        base = Path(inside.name)
        stack = [(r, base)]
        while stack:
            folder, name = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as e:
                if on_skip is not None:
                    on_skip(name.as_posix(), f"cannot list folder ({e.strerror or e})")
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                child = name / entry.name
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append((Path(entry.path), child))
                elif _is_linked_folder(entry):
                    if on_skip is not None:
                        on_skip(child.as_posix(), "symlinked folder, not followed (it could loop)")
                elif Path(entry.name).suffix.lower() in SUFFIXES:
                    why = _unreadable(entry, inside)
                    if why is None:
                        yield Path(entry.path), child.as_posix()
                    elif on_skip is not None:
                        on_skip(child.as_posix(), why)
            stack.extend(reversed(subfolders))


def _unreadable(entry: os.DirEntry[str], inside: Path) -> str | None:
    """Why a file of the walk is not read (None: it is)."""
    try:
        if entry.is_symlink():
            os.stat(entry.path)  # a loop or a dangling link: "cannot read (...)" below
            target = Path(os.path.realpath(entry.path))
            if not target.is_relative_to(inside):
                return "symlink to a file outside the folder being read, not followed"
            if not target.is_file():
                return "symlink to something that is not a regular file, not followed"
            return None
        if not entry.is_file(follow_symlinks=False):
            return "not a regular file (a FIFO, socket or device), not read"
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    return None


def _is_linked_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_symlink() and entry.is_dir()
    except OSError:  # a symlink loop: not a folder; reading it as a file says why
        return False


def read_path(fp: Path, name: str) -> FileRead:
    """Read one file of a walk; never raises: a file that cannot be read is a skip."""
    try:
        if fp.suffix.lower() == ".jsonl":
            got, bad = _read_jsonl_file(fp, name)
            return FileRead(name, tuple(got), tuple(bad))
        return FileRead(name, tuple(read_file(fp, name)))
    except ReleaseError as e:
        return FileRead(name, (), (Skipped(name, str(e)),))
    except OSError as e:
        return FileRead(name, (), (Skipped(name, f"cannot read ({e.strerror or e})"),))


def read_locally(files: Sequence[tuple[Path, str]]) -> Iterator[FileRead]:
    """The default ``FileReader``: one file after another, in this process."""
    for fp, name in files:
        yield read_path(fp, name)


def read_releases(
    paths: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    progress: bool = False,
    reader: FileReader = read_locally,
) -> ReadReport:
    """Read every release under ``paths``. Duplicates (same text) are kept once.

    With ``strict`` the first unreadable file raises ``ReleaseError``. ``reader`` reads the
    files (the walk and the duplicate check stay here, so any reader gives the same report).
    """
    releases: dict[str, Release] = {}
    skipped: list[Skipped] = []

    def skip(s: Skipped) -> None:
        if strict:
            raise ReleaseError(f"{s.path}: {s.reason}")
        logger.warning("skipped %s", s)
        skipped.append(s)

    def note(name: str, reason: str) -> None:  # a folder not walked: reported, never fatal
        logger.warning("skipped %s", Skipped(name, reason))
        skipped.append(Skipped(name, reason))

    files = list(iter_files(paths, note))
    results: Iterable[FileRead] = reader(files)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(files), desc="reading", unit="file")
    for got in results:
        for s in got.skipped:
            skip(s)
        for rel in got.releases:
            if rel.id in releases:
                skip(Skipped(rel.path, f"duplicate of {releases[rel.id].path} (same text)", duplicate=True))
            else:
                releases[rel.id] = rel
    return ReadReport(tuple(releases.values()), tuple(skipped))


def _read_jsonl_file(fp: Path, name: str) -> tuple[list[Release], list[Skipped]]:
    try:
        return _read_jsonl(_load(fp), name)
    except ReleaseError:
        raise
    except Exception as e:  # as in read_bytes: one file, never the batch
        logger.debug("%s: unexpected error while reading", name, exc_info=True)
        raise ReleaseError(f"cannot be read ({type(e).__name__}: {e})") from None
