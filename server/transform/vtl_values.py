"""Values as VTL prints them on AWS: Java's ``{key=value}`` maps and ``[a, b]`` lists,
``true``/``false``, a null as nothing (reference §7.3). Pure core: imports no I/O library."""

from __future__ import annotations

from typing import Any

__all__ = ["JavaList", "JavaMap", "java"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class JavaMap(dict[str, Any]):
    """A JSON object as VTL sees it: prints ``{key=value, ...}``, has Java's map methods."""

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key}={_text(value)}" for key, value in self.items()) + "}"

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def containsKey(self, key: str) -> bool:
        return key in self

    def keySet(self) -> list[str]:
        return list(self.keys())

    def entrySet(self) -> list[JavaMap]:
        return [JavaMap(key=key, value=value) for key, value in self.items()]

    def put(self, key: str, value: Any) -> None:
        self[key] = value


class JavaList(list[Any]):
    """A JSON array as VTL sees it: prints ``[a, b]``."""

    def __str__(self) -> str:
        return "[" + ", ".join(_text(value) for value in self) + "]"

    def size(self) -> int:
        return len(self)

    def isEmpty(self) -> bool:
        return not self

    def get(self, index: int) -> Any:
        return self[index]


def java(value: Any) -> Any:
    """Parsed JSON -> the Java-printing equivalents, recursively."""
    if isinstance(value, dict):
        return JavaMap({str(key): java(item) for key, item in value.items()})
    if isinstance(value, list):
        return JavaList(java(item) for item in value)
    return value
