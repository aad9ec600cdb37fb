"""YAML with line numbers, parsed safely.

Plain dicts and lists are built by PyYAML's safe constructor (libyaml when it is
installed), except that mappings and sequences remember the line of each key and
item so that every load error can name its line. Duplicate keys are an error
instead of silently keeping the last one. The parsed document is only used while
loading; nothing keeps it afterwards.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlMap(dict[Any, Any]):
    """A mapping that knows its own line and the line of each of its keys."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}


class YamlList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class YamlError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _LineLoader(_Base):  # type: ignore[valid-type, misc]
    pass


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _construct_map(loader: Any, node: Node) -> YamlMap:
    if not isinstance(node, MappingNode):
        raise ConstructorError(None, None, "expected a mapping", node.start_mark)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if duplicate:
            raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)  # resolves "<<" merge keys; explicit keys win
    result = YamlMap(_line(node))
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = _line(key_node)
    return result


def _construct_list(loader: Any, node: Node) -> YamlList:
    if not isinstance(node, SequenceNode):
        raise ConstructorError(None, None, "expected a sequence", node.start_mark)
    result = YamlList(_line(node))
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.item_lines.append(_line(item))
    return result


def _construct_int(loader: Any, node: ScalarNode) -> int:
    try:
        value: int = _Base.construct_yaml_int(loader, node)
    except ValueError:  # more digits than Python turns into an int (a hostile file)
        raise ConstructorError(
            None,
            None,
            f"integer of more than {sys.get_int_max_str_digits()} digits",
            node.start_mark,
        ) from None
    return value


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)
_LineLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_yaml(text: str) -> Any:
    """Parse one YAML document; ``None`` for an empty one.

    Raises ``YamlError`` with the 1-based line of the problem.
    """
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        message = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise YamlError(line, message) from None
    except yaml.YAMLError as exc:
        raise YamlError(1, str(exc).splitlines()[0] if str(exc) else "invalid YAML") from None
    except RecursionError:
        raise YamlError(1, "document is nested too deeply") from None
    finally:
        loader.dispose()


def line_of(container: Any, key: Any, default: int) -> int:
    """The line of ``key`` in a YamlMap / index in a YamlList, else ``default``."""
    if isinstance(container, YamlMap):
        return container.key_lines.get(key, container.line)
    if isinstance(container, YamlList) and isinstance(key, int):
        if 0 <= key < len(container.item_lines):
            return container.item_lines[key]
        return container.line
    return default
