"""Reading a YAML or JSON document that a person wrote, within limits, or refusing it plainly.

Used for the spec and usable for any such text. A document is refused (``DocumentError``, a message
naming the source, the line and the problem, never a traceback) when it is larger than 1 MiB, not
UTF-8, holds a key twice in one mapping, uses an alias (``*name``: one 2 KB file of aliases expands
to gigabytes), nests deeper than 32 levels, holds more than 50,000 values, or is not YAML at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_NODES = 50_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DocumentError(ValueError):
    """A document that cannot be read or is refused; the message says where and why."""


class _Refused(yaml.YAMLError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that counts what it builds and refuses aliases and repeated keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else 0
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, "aliases (*name) are not allowed: write the value out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES} values")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the safe constructor refuses it below
            if repeated:
                shown = key if isinstance(key, int | float | bool) or key is None else str(key)[:60]
                raise _Refused(key_node.start_mark.line + 1, f"the key {shown!r} appears twice in one mapping")
        return super().construct_mapping(node, deep)


def parse_document(text: str, source: str = "the document") -> Any:
    """The data of one YAML (or JSON) document, within the limits; DocumentError otherwise."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text.removeprefix("\ufeff"))  # the reader refuses NUL and the like here
        return loader.get_single_data()
    except _Refused as refused:
        raise DocumentError(f"{source}, line {refused.line}: {refused.problem}") from None
    except yaml.reader.ReaderError as error:
        character = f"U+{error.character:04X}" if isinstance(error.character, int) else "a byte"
        raise DocumentError(
            f"{source} holds a character YAML does not allow ({character}) at offset {error.position}"
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DocumentError(f"{source} is not valid YAML or JSON{where}: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise DocumentError(f"{source} is not valid YAML or JSON: {error}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # A value the safe constructor cannot build (a 5000-digit integer, 2026-02-30, ...).
        raise DocumentError(
            f"{source} holds a value that cannot be read (an impossible date, a huge number, ...): "
            f"{type(error).__name__}"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def decode_document(data: bytes, source: str = "the document") -> str:
    """UTF-8 text (a byte-order mark is allowed), or DocumentError naming the first bad byte."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentError(
            f"{source} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def read_document(path: Path) -> Any:
    """Read a YAML or JSON file within the limits: its data, or DocumentError naming the file."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise DocumentError(f"cannot read {path}: {error.strerror or error}") from None
    return parse_document(decode_document(data, str(path)), str(path))
