"""Parsing response bodies: clear reasons for bad bodies, and safe XML."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from monitord.expressions import DocumentError, compile_expression, parse_document
from monitord.model import TextKind

J = TextKind.JSON
HTML = TextKind.HTML
XML = TextKind.XML
BOM = b"\xef\xbb\xbf"

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">'
        % (level, (b"&lol%d;" % (level - 1) if level > 2 else b"&lol;") * 10)
        for level in range(2, 10)
    )
    + b"]><lolz>&lol9;</lolz>"
)


def values_of(kind: TextKind, source: str, document: Any) -> list[Any]:
    return compile_expression(kind, source).evaluate(document, time.monotonic() + 5)


@pytest.mark.parametrize(
    ("kind", "body", "charset", "message"),
    [
        (J, b"", None, "body is empty"),
        (J, b" \n\t\r ", None, "body is empty"),
        (J, BOM, None, "body is empty"),
        (J, BOM + b"  ", "utf-8", "body is empty"),
        (
            J,
            b"{",
            None,
            "body is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (J, b'{"a":1} x', None, "body is not valid JSON: Extra data: line 1 column 9 (char 8)"),
        (
            J,
            b"<html></html>",
            None,
            "body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        (J, b"[" * 100_000, None, "body is not valid JSON: nested too deeply"),
        (J, b"[" * 100_000 + b"]" * 100_000, None, "body is not valid JSON: nested too deeply"),
        (
            J,
            '{"a":"é"}'.encode("latin-1"),
            None,
            "body is not valid JSON: 'utf-8' codec can't decode byte 0xe9 in position 6: "
            "invalid continuation byte",
        ),
        (
            J,
            '{"a":"é"}'.encode("latin-1"),
            "utf-8",
            "body is not valid JSON: 'utf-8' codec can't decode byte 0xe9 in position 6: "
            "invalid continuation byte",
        ),
        (
            J,
            b'{"a":"\xed\xa0\x80"}',  # a lone surrogate encoded: not UTF-8
            None,
            "body is not valid JSON: 'utf-8' codec can't decode byte 0xed in position 6: "
            "invalid continuation byte",
        ),
        (XML, b"", None, "body is empty"),
        (XML, b"  \n ", None, "body is empty"),
        (XML, BOM, None, "body is empty"),
        (HTML, b"", None, "body is empty"),
        (HTML, b" \n ", None, "body is empty"),
        (HTML, BOM + b"\t", None, "body is empty"),
        (HTML, b"<!-- only a comment -->", None, "body is not valid HTML: Document is empty"),
    ],
)
def test_bodies_that_do_not_parse(
    kind: TextKind, body: bytes, charset: str | None, message: str
) -> None:
    with pytest.raises(DocumentError) as raised:
        parse_document(kind, body, charset)
    assert str(raised.value) == message


def test_json_number_with_too_many_digits_is_a_clear_reason() -> None:
    with pytest.raises(DocumentError) as raised:
        parse_document(J, b"1" * 5000, None)
    assert str(raised.value).startswith(
        "body is not valid JSON: Exceeds the limit (4300 digits) for integer string conversion"
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<a>", "Premature end of data in tag a line 1"),
        (b"<a></b>", "Opening and ending tag mismatch: a line 1 and b"),
        (b"not xml", "Start tag expected, '<' not found"),
        (b"<a>" * 100_000, "Excessive depth in document: 256"),
        (b"<a>&undefined;</a>", "Entity 'undefined' not defined"),
        (BILLION_LAUGHS, "entity amplification factor exceeded"),
    ],
)
def test_xml_that_does_not_parse(body: bytes, detail: str) -> None:
    started = time.monotonic()
    with pytest.raises(DocumentError) as raised:
        parse_document(XML, body, None)
    message = str(raised.value)
    assert message.startswith("body is not valid XML: ")
    assert detail in message
    assert "(<string>" not in message
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("kind", "body", "charset", "source", "expected"),
    [
        (J, BOM + b'{"a": 1}', None, "$.a", [1]),
        (J, BOM + b'{"a": 1}', "utf-8", "$.a", [1]),
        (J, b'  {"a": "x"}  \n', None, "$.a", ["x"]),
        (J, '{"a":"é"}'.encode("latin-1"), "iso-8859-1", "$.a", ["é"]),
        (J, '{"a":"é"}'.encode("utf-16"), None, "$.a", ["é"]),
        (J, b'{"a": 1}', "no-such-charset", "$.a", [1]),
        (J, b"[1, 2]", None, "$[1]", [2]),
        (J, b'"text"', None, "$", ["text"]),
        (J, b"null", None, "$", [None]),
        (XML, BOM + b"<a>x</a>", None, "/a", ["x"]),
        (XML, BOM + b"<a>x</a>", "utf-8", "/a", ["x"]),
        (XML, "<a>é</a>".encode("utf-16"), None, "/a", ["é"]),
        (HTML, BOM + b"<p>x</p>", "utf-8", "//p", ["x"]),
        (XML, '<?xml version="1.0" encoding="utf-8"?><a>é</a>'.encode(), None, "/a", ["é"]),
        (
            XML,
            '<?xml version="1.0" encoding="utf-8"?><a>é</a>'.encode("latin-1"),
            "iso-8859-1",
            "/a",
            ["é"],
        ),
        (XML, b"<a><![CDATA[<b>]]></a>", None, "/a", ["<b>"]),
        (HTML, BOM + b"<p>x</p>", None, "//p", ["x"]),
        (HTML, b"<p>hello <b>world<p>second", None, "//p", ["hello world", "second"]),
        (HTML, b"<table><tr><td>1<td>2</table>", None, "count(//td)", [2]),
        (HTML, b"plain text", None, "//body", ["plain text"]),
        (HTML, b"<p>\x00\x01garbage</p>", None, "contains(//p, 'garbage')", [True]),
        (HTML, "<p>é</p>".encode("cp1252"), "windows-1252", "//p", ["é"]),
        (HTML, "<p>é</p>".encode(), "utf-8", "//p", ["é"]),
    ],
)
def test_bodies_that_parse(
    kind: TextKind, body: bytes, charset: str | None, source: str, expected: list[Any]
) -> None:
    assert values_of(kind, source, parse_document(kind, body, charset)) == expected


def test_deeply_nested_html_is_parsed_leniently() -> None:
    document = parse_document(HTML, b"<div>" * 100_000 + b"deep", None)
    assert document.tag == "html"
    (count,) = values_of(HTML, "count(//div)", document)
    assert 0 < count < 100_000


def test_huge_bodies_parse() -> None:
    items = b",".join(b'{"id":%d,"name":"item"}' % index for index in range(200_000))
    document = parse_document(J, b'{"items":[' + items + b"]}", None)
    assert values_of(J, "$.items.length()", document) == [200_000]
    assert values_of(J, "$.items[-1].id", document) == [199_999]

    xml = parse_document(XML, b"<r>" + b"<i>x</i>" * 500_000 + b"</r>", None)
    assert values_of(XML, "count(/r/i)", xml) == [500_000]

    page = parse_document(HTML, b"<ul>" + b"<li>x" * 200_000, None)
    assert values_of(HTML, "count(//li)", page) == [200_000]


# --- XML safety ----------------------------------------------------------------------------

MARKER = "MONITORD-SECRET-7f3a"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(MARKER)
    return path


def everything_visible(document: Any) -> str:
    """All the text any XPath could see, plus the serialised tree."""
    seen: list[str] = []
    for source in ("string(/*)", "/*", "//text()", "//node()", "//@*"):
        seen.extend(str(value) for value in values_of(XML, source, document))
    seen.append(etree.tostring(document, encoding="unicode"))
    return "\n".join(seen)


def test_xxe_external_entity_is_not_resolved(secret_file: Path) -> None:
    body = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret_file}">]>'
        f"<x>before &e; after<y a='1'>&e;</y></x>"
    ).encode()
    document = parse_document(XML, body, None)
    assert MARKER not in everything_visible(document)
    assert values_of(XML, "/x/y/@a", document) == ["1"]


def test_xxe_parameter_entity_is_not_loaded(secret_file: Path) -> None:
    body = (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "file://{secret_file}"> %p;]>'
        f"<x>text</x>"
    ).encode()
    document = parse_document(XML, body, None)
    assert MARKER not in everything_visible(document)
    assert values_of(XML, "/x", document) == ["text"]


def test_external_dtd_is_not_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "entities.dtd"
    dtd.write_text(f'<!ENTITY e "{MARKER}"><!ATTLIST x injected CDATA "{MARKER}">')
    body = f'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file://{dtd}"><x>&e;</x>'.encode()
    document = parse_document(XML, body, None)
    assert MARKER not in everything_visible(document)
    assert values_of(XML, "/x/@injected", document) == []


def test_billion_laughs_does_not_expand() -> None:
    started = time.monotonic()
    with pytest.raises(DocumentError) as raised:
        parse_document(XML, BILLION_LAUGHS, None)
    assert str(raised.value).startswith("body is not valid XML: ")
    assert "lollollol" not in str(raised.value)
    assert time.monotonic() - started < 5


def test_html_does_not_fetch_external_resources(secret_file: Path) -> None:
    body = (
        f'<!DOCTYPE html SYSTEM "file://{secret_file}"><html><body>'
        f'<iframe src="file://{secret_file}"></iframe><p>x</p></body></html>'
    ).encode()
    document = parse_document(HTML, body, None)
    assert MARKER not in "".join(str(value) for value in values_of(HTML, "//text()", document))
    assert values_of(HTML, "//p", document) == ["x"]
