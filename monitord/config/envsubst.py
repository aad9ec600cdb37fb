"""``${NAME}`` substitution in scenario urls, headers and request bodies.

One pass, left to right: a substituted value is never scanned again, so a value
containing ``${...}`` cannot pull in further variables. ``$${`` stands for a
literal ``${``. An unset variable, a malformed name or an unclosed ``${`` is an
error, never an empty string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"\$\$\{|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SubstitutionError(ValueError):
    pass


def substitute(text: str, environ: Mapping[str, str]) -> str:
    out: list[str] = []
    position = 0
    while True:
        match = _TOKEN.search(text, position)
        if match is None:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position : match.start()])
        if match.group() == "$${":
            out.append("${")
            position = match.end()
            continue
        close = text.find("}", match.end())
        if close < 0:
            raise SubstitutionError("unclosed '${' (write '$${' for a literal '${')")
        name = text[match.end() : close]
        if not _NAME.fullmatch(name):
            raise SubstitutionError(f"invalid variable name {name[:40]!r} in '${{...}}'")
        if name not in environ:
            raise SubstitutionError(f"environment variable {name} is not set")
        out.append(environ[name])
        position = close + 1


def references(text: str) -> list[str]:
    """The variable names ``text`` refers to (for fingerprints), in order."""
    names = []
    for match in re.finditer(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text):
        if match.group(1):
            names.append(match.group(1))
    return names
