"""Parsing response bodies into documents that compiled expressions evaluate.

Every failure, whatever the parser raised, becomes a ``DocumentError`` whose
message names the kind and the problem (``body is not valid JSON: …``).
XML is parsed with entity substitution, DTD loading and network access off, so
an XXE body cannot read files and an entity bomb does not expand.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from typing import Any

import orjson
from lxml import etree, html

from monitord.expressions.errors import DocumentError
from monitord.model import TextKind

_BOM = b"\xef\xbb\xbf"
# lxml appends where the text came from, which says nothing to an operator.
_LXML_ORIGIN = re.compile(r" \(<string>, line \d+\)$")
_MAX_DETAIL = 300
_JSON = TextKind.JSON  # read once (see model.py): a document is parsed per run and payload


def parse_document(kind: TextKind, body: bytes, charset: str | None) -> Any:
    """``body`` parsed as ``kind``: JSON values, or the root element for HTML and XML.

    ``charset`` (the one the response declared, if any) decodes JSON and HTML,
    and overrides the encoding an XML body declares (RFC 7303); a charset
    Python does not know is ignored. Raises ``DocumentError``.
    """
    known_charset = None if charset is None else _known_charset(charset)
    if kind is _JSON:
        return _parse_json(body, known_charset)
    if kind is TextKind.XML:
        return _parse_xml(body, known_charset)
    return _parse_html(body, known_charset)


@functools.lru_cache(maxsize=64)  # responses declare a handful of charsets, each looked up once
def _known_charset(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip())
    except LookupError:
        return None
    # Codecs such as rot13, hex or zlib are no character sets; a body never declares them.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _is_blank(body: bytes) -> bool:
    return not body.removeprefix(_BOM).strip()


def _detail(exc: BaseException) -> str:
    message = _LXML_ORIGIN.sub("", str(exc).strip()) or type(exc).__name__
    if len(message) > _MAX_DETAIL:
        message = message[: _MAX_DETAIL - 1] + "…"
    return message


# orjson reads integers beyond 64 bits (19 digits or more) as floats, and the standard
# library refuses nesting near Python's recursion limit (1,000): bodies that could hold
# either are read by the standard library only.
_DIGITS_AS_ONES = bytes(ord("1") if byte in b"0123456789" else ord("0") for byte in range(256))
_LONG_DIGITS = b"1" * 19
_FAST_CONTAINERS = 500


def _parse_json(body: bytes, charset: str | None) -> Any:
    # orjson parses in a quarter of json.loads' time (with the scans that guard it, this
    # path takes 60 % of the standard library's), and a busy receiver reads a document
    # per payload. It is used where it must read what the standard library reads: strict
    # UTF-8 it accepts, no run of 19 digits, at most _FAST_CONTAINERS brackets. Everything
    # else (other charsets, a BOM, lone surrogates, errors and their messages) is read as
    # before.
    if (charset is None or charset == "utf-8") and _orjson_reads_alike(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    if _is_blank(body):
        raise DocumentError("body is empty")
    try:
        if charset is not None:
            return json.loads(body.decode(charset).removeprefix("\ufeff"))
        # Without a declared charset, UTF-8, -16 or -32 as JSON tells them apart, decoded
        # strictly (json.loads on bytes would let an encoded lone surrogate through).
        unmarked = body.removeprefix(_BOM)
        return json.loads(unmarked.decode(json.detect_encoding(unmarked)))
    except RecursionError as exc:
        raise DocumentError("body is not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise DocumentError(f"body is not valid JSON: {_detail(exc)}") from exc


def _orjson_reads_alike(body: bytes) -> bool:
    """Whether orjson, when it reads ``body``, reads what the standard library reads: no run
    of 19 digits (an integer beyond 64 bits, which orjson reads as a float), and no more
    containers than the standard library can nest."""
    # A document nests at most half its length deep (each level opens and closes), so
    # only longer bodies need their brackets counted.
    if len(body) > 2 * _FAST_CONTAINERS and body.count(b"[") + body.count(b"{") > _FAST_CONTAINERS:
        return False
    return _LONG_DIGITS not in body.translate(_DIGITS_AS_ONES)


def _xml_parser(charset: str | None) -> etree.XMLParser:
    # A new parser per body: parser objects are not meant to be shared by threads.
    return etree.XMLParser(
        encoding=charset,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )


def _parse_xml(body: bytes, charset: str | None) -> Any:
    if _is_blank(body):
        raise DocumentError("body is empty")
    try:
        return etree.fromstring(body, _xml_parser(charset))
    except (etree.LxmlError, ValueError, LookupError, RecursionError) as exc:
        raise DocumentError(f"body is not valid XML: {_detail(exc)}") from exc


def _parse_html(body: bytes, charset: str | None) -> Any:
    if _is_blank(body):
        raise DocumentError("body is empty")
    parser = html.HTMLParser(encoding=charset, recover=True, no_network=True)
    try:
        return html.document_fromstring(body, parser=parser)
    except (etree.LxmlError, ValueError, LookupError, RecursionError) as exc:
        raise DocumentError(f"body is not valid HTML: {_detail(exc)}") from exc
