"""Reading typed fields out of a parsed YAML (or JSON) mapping, collecting every error.

A ``Section`` wraps one mapping with the file path, the dotted field prefix and a
shared error list. Getters return ``None`` after recording an error, so a loader
can read every field of a document and report all problems at once.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from monitord.config.errors import LoadError
from monitord.config.yamlsource import YamlList, YamlMap, line_of

E = TypeVar("E", bound=enum.Enum)


def type_name(value: Any) -> str:
    """The YAML/JSON name of a value's type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def unknown_field(key: str, allowed: Iterable[str], hint: str = "") -> str:
    """``unknown field``, with the closest known name when one is near."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return f"unknown field (did you mean {close[0]}?)" if close else f"unknown field{hint}"


class Section:
    def __init__(
        self, data: dict[Any, Any], path: str, prefix: str, errors: list[LoadError], line: int
    ) -> None:
        self.data = data
        self.path = path
        self.prefix = prefix
        self.errors = errors
        self.line = data.line if isinstance(data, YamlMap) else line

    # --- bookkeeping ---------------------------------------------------------------

    def field(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def line_of(self, key: str) -> int:
        return line_of(self.data, key, self.line)

    def error(self, key: str | None, message: str, line: int | None = None) -> None:
        field = self.field(key) if key is not None else (self.prefix or "-")
        where = line if line is not None else (self.line_of(key) if key else self.line)
        self.errors.append(LoadError(self.path, where, field, message))

    def has(self, key: str) -> bool:
        return key in self.data

    def reject_unknown(
        self,
        allowed: Iterable[str],
        hint: str = "",
        explain: Callable[[str], str] | None = None,
    ) -> None:
        """Record an error for each key outside ``allowed``; ``explain`` words it."""
        allowed_set = set(allowed)
        for key in self.data:
            if not isinstance(key, str):
                self.errors.append(
                    LoadError(
                        self.path,
                        self.line_of(key),
                        self.prefix or "-",
                        f"keys must be strings, got {type_name(key)}",
                    )
                )
            elif key not in allowed_set:
                self.error(key, explain(key) if explain else unknown_field(key, allowed_set, hint))

    # --- typed getters ---------------------------------------------------------------

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def require(self, key: str) -> bool:
        if key not in self.data or self.data[key] is None:
            self.error(key, "missing required field")
            return False
        return True

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        allow_empty: bool = False,
        max_length: int = 4096,
        single_line: bool = True,
    ) -> str | None:
        if key not in self.data or self.data[key] is None:
            if required:
                self.error(key, "missing required field")
            return None
        value = self.data[key]
        if not isinstance(value, str):
            self.error(key, f"must be a string, got {type_name(value)}")
            return None
        if not allow_empty and not value.strip():
            self.error(key, "must not be empty")
            return None
        if len(value) > max_length:
            self.error(key, f"is longer than {max_length} characters")
            return None
        if single_line and any(ch in value for ch in "\r\n\x00"):
            self.error(key, "must be a single line")
            return None
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
        allow_string: bool = False,
    ) -> int | None:
        if key not in self.data or self.data[key] is None:
            if required:
                self.error(key, "missing required field")
            return None
        value = self.data[key]
        if allow_string and isinstance(value, str):
            text = value.strip()
            digits = text[1:] if text[:1] in "+-" else text
            if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
                self.error(key, f"must be an integer, got {value!r}")
                return None
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be an integer, got {type_name(value)}")
            return None
        if minimum is not None and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return None
        if maximum is not None and value > maximum:
            self.error(key, f"must be at most {maximum}, got {value}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, got {type_name(value)}")
            return None
        return value

    def choice(self, key: str, enum_type: type[E], *, required: bool = False) -> E | None:
        text = self.string(key, required=required)
        if text is None:
            return None
        try:
            return enum_type(text)
        except ValueError:
            options = ", ".join(str(m.value) for m in enum_type)
            self.error(key, f"must be one of {options}, got {text!r}")
            return None

    def section(self, key: str, *, required: bool = False) -> Section | None:
        if key not in self.data or self.data[key] is None:
            if required:
                self.error(key, "missing required field")
            return None
        value = self.data[key]
        if not isinstance(value, dict):
            self.error(key, f"must be a mapping, got {type_name(value)}")
            return None
        return Section(value, self.path, self.field(key), self.errors, self.line_of(key))

    def items(self, key: str, *, required: bool = False) -> list[tuple[int, Any, str]] | None:
        """The items of a list field as ``(line, value, field)`` triples."""
        if key not in self.data or self.data[key] is None:
            if required:
                self.error(key, "missing required field")
            return None
        value = self.data[key]
        if not isinstance(value, list):
            self.error(key, f"must be a list, got {type_name(value)}")
            return None
        base_line = self.line_of(key)
        result = []
        for index, item in enumerate(value):
            line = value.item_lines[index] if isinstance(value, YamlList) else base_line
            result.append((line, item, f"{self.field(key)}[{index}]"))
        return result

    def item_section(self, line: int, item: Any, field: str) -> Section | None:
        if not isinstance(item, dict):
            self.errors.append(
                LoadError(self.path, line, field, f"must be a mapping, got {type_name(item)}")
            )
            return None
        return Section(item, self.path, field, self.errors, line)
