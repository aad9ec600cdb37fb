"""Scenario files: every load rule of SPEC §4, good files and a corpus of bad ones."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitord.config.scenarios import (
    DEFAULT_APP_KEY,
    SCENARIO_NAMESPACE,
    FileLoad,
    derive_scenario_id,
    load_document,
    load_file,
    load_scenarios,
    load_text,
)
from monitord.config.settings import Config, Defaults, Service
from monitord.model import (
    ByteCheck,
    Endian,
    EventType,
    HttpTarget,
    IntType,
    LengthCheck,
    Operator,
    ScenarioType,
    SocketTarget,
    TextKind,
)

TESTDATA = Path(__file__).parent / "testdata"
BAD = TESTDATA / "bad"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CONFIG = Config()


def load(text: str, config: Config = CONFIG, env: dict[str, str] | None = None) -> FileLoad:
    return load_text(text, "s.yaml", config, env or {}, NOW)


def errors(text: str, config: Config = CONFIG, env: dict[str, str] | None = None) -> list[str]:
    loaded = load(text, config, env)
    assert not loaded.scenarios
    return [f"{e.line}: {e.field}: {e.message}" for e in loaded.errors]


# --- the corpus of broken files: file -> exact errors (line: field: message) -----------

CORPUS: dict[str, list[str]] = {
    "yaml_syntax.yaml": ["3: yaml: mapping values are not allowed in this context"],
    "unknown_field.yaml": [
        "1: monitoringInterval: missing: give monitoringInterval or monitoringCron",
        "4: monitoringIntervall: unknown field (did you mean monitoringInterval?)",
    ],
    "wrong_types.yaml": [
        "4: port: must be an integer, got a string ('7000')",
        "5: monitoringInterval: must be an integer, got a string ('30s')",
        "6: errorLimitCount: must be at least 0, got -1",
        "7: monitoringRegion: must be a list, got a string ('KOR')",
        "9: validation.timeout: must be an integer, got a string ('3 seconds')",
    ],
    "missing_required.yaml": [
        "1: scenarioName: missing required field",
        "1: url: missing required field",
        "3: port: missing required field",
        "7: scenarioType: missing required field",
    ],
    "bad_url.yaml": [
        "3: url: must be an http:// or https:// URL with a host",
        "7: url: must be an http:// or https:// URL with a host",
        "11: url: must be an http:// or https:// URL with a host",
    ],
    "bad_cron.yaml": [
        "4: monitoringCron: invalid cron expression '61 * * * *': [61 * * * *] is not acceptable, out of range",
        "8: monitoringCron: invalid cron expression '0 0 12 ? * 0': day-of-week 0 is out of range 1-7 (1 = SUN)",
        "12: monitoringCron: invalid cron expression '0 0 30 2 *': never fires",
        "16: monitoringCron: invalid cron expression '* * * *': expected 5 fields (Unix) or 6-7 fields (Quartz, seconds first), got 4",
    ],
    "schedule_choice.yaml": [
        "5: monitoringCron: give monitoringInterval or monitoringCron, not both",
        "6: monitoringInterval: missing: give monitoringInterval or monitoringCron",
    ],
    "bad_expressions.yaml": [
        "9: validation.textValidation.textValidationInfos[0].expression: JSONPath does not parse: Parse error near the end of string!",
        "10: validation.textValidation.textValidationInfos[1].expression: unknown function first(); supported: length(), size(), min(), max(), avg(), sum(), stddev()",
        "19: validation.textValidation.textValidationInfos[0].expression: XPath does not parse: Invalid expression",
        "20: validation.textValidation.textValidationInfos[1].expression: XPath error: Undefined namespace prefix",
        "29: validation.textValidation.textValidationInfos[0].expression: JSONPath regular expression '(unclosed' is invalid: missing ) at position 9",
    ],
    "bad_operators.yaml": [
        "7: validation.textValidation.textValidationType: must be one of JSON, HTML, XML, got 'YAML'",
        "9: validation.textValidation.textValidationInfos[0].operator: must be one of CONTAINS, NOT_CONTAINS, EQ, NE, GT, GTE, LT, LTE, got 'EQUALS'",
        "10: validation.textValidation.textValidationInfos[1].operand: GT needs a number, got 'many'",
        "11: validation.textValidation.textValidationInfos[2].operator: must be one of CONTAINS, NOT_CONTAINS, EQ, NE, GT, GTE, LT, LTE, got 'eq'",
        "12: validation.textValidation.textValidationInfos[3].operand: missing required field",
    ],
    "duplicates.yaml": [
        "5: scenarioName: duplicate scenarioName 'same name' for appKey default (also in {path}:1)",
        "14: scenarioId: duplicate scenarioId 0c96cff0-edc2-11ea-9760-8d94f461e6d4 (also in {path}:9)",
    ],
    "unset_env.yaml": [
        "3: url: environment variable MONITORD_TEST_UNSET_HOST is not set",
        "5: headers.Authorization: environment variable MONITORD_TEST_UNSET_TOKEN is not set",
        "6: requestBody: invalid variable name 'MONITORD_TEST_UNSET_USER\"' in '${...}'",
    ],
    "bad_bytes.yaml": [
        "5: requestHex: must be pairs of hex digits (spaces allowed), e.g. 'de ad be ef'",
        "9: validation.responseValidation[0].position: must be at least 0, got -1",
        "10: validation.responseValidation[1]: give exactly one of validationText or validationHex",
        "11: validation.responseValidation[2]: give exactly one of validationText or validationHex",
        "12: validation.responseValidation[3]: must be a mapping, got a string ('position 0')",
        "13: validation.lengthValidation.EXTRA: unknown field",
        "13: validation.lengthValidation.ENDIAN: must be one of BIG, LITTLE, got 'MIDDLE'",
        "13: validation.lengthValidation.TYPE: must be one of BYTE, SHORT, INT, LONG, got 'WORD'",
        "13: validation.lengthValidation.POS: must be an integer, got 'four'",
        "13: validation.lengthValidation.BASE: must be an integer, got '1.5'",
    ],
    "wrong_type_fields.yaml": [
        "5: url: not a field of TCP scenarios (it belongs to API)",
        "6: httpMethod: not a field of TCP scenarios (it belongs to API)",
        "9: validation.responseCodes: not a validation field of TCP scenarios (it belongs to API)",
        "10: validation.textValidation: not a validation field of TCP scenarios (it belongs to API, BATCH)",
    ],
    "duplicate_key.yaml": ["5: yaml: duplicate key 'scenarioName'"],
    "not_scenarios.yaml": [
        "1: -: must be a scenario mapping or a list of them, got a string ('just a string')"
    ],
    "hostile_tag.yaml": [
        "1: yaml: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    ],
    "bad_http_fields.yaml": [
        "4: httpMethod: must be one of GET, POST, PUT, DELETE, HEAD, PATCH, got 'FETCH'",
        "6: headers: 'Bad Header' is not a valid header name",
        "7: headers.X-List: must be a string, got a list",
        "8: requestBody: must be a string, got a mapping",
        "9: followRedirects: must be true or false, got a string ('yes')",
        "10: monitoringInterval: must be at least 1, got 0",
        '12: validation.responseCodes[1]: must be an HTTP status code such as "200" or a class such as "2xx"',
        '12: validation.responseCodes[2]: must be an HTTP status code such as "200" or a class such as "2xx"',
        "13: validation.timeout: must be at most 600000, got 600001",
    ],
}


def test_corpus_covers_every_bad_file() -> None:
    assert sorted(CORPUS) == sorted(p.name for p in BAD.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_file_reports_every_error_with_line_and_field(name: str) -> None:
    path = BAD / name
    loaded = load_file(path, CONFIG, {}, NOW)
    assert loaded.scenarios == ()
    assert [str(e) for e in loaded.errors] == [
        f"{path}:{line}" for line in (x.replace("{path}", str(path)) for x in CORPUS[name])
    ]


def test_valid_files_beside_bad_ones_still_load(tmp_path: Path) -> None:
    for path in BAD.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "good.yaml").write_text(GOOD_TCP, encoding="utf-8")
    loaded = load_scenarios([tmp_path], CONFIG, {}, NOW)
    by_name = {Path(f.path).name: f for f in loaded.files}
    assert by_name["good.yaml"].ok
    assert [s.name for s in loaded.scenarios] == ["billing gateway"]
    assert sorted(n for n, f in by_name.items() if not f.ok) == sorted(CORPUS)


# --- good files --------------------------------------------------------------------------

GOOD_TCP = """
- scenarioName: billing gateway
  scenarioType: TCP
  ip: 127.0.0.1
  port: 7000
  request: "Hello World!"
  monitoringCron: "7 * * * * ? *"
  validation:
    timeout: 3000
    responseValidation:
      - {position: 0, validationText: "Hello World!"}
      - {position: 13, validationText: "It's new world!"}
    lengthValidation: {ENDIAN: BIG, POS: "4", TYPE: INT, BASE: "15"}
"""


def test_seed_tcp_example_loads() -> None:
    (scenario,) = load(GOOD_TCP).scenarios
    assert scenario.type is ScenarioType.TCP
    assert scenario.target == SocketTarget("127.0.0.1", 7000, b"Hello World!")
    assert scenario.validation.timeout_ms == 3000
    assert scenario.validation.byte_checks == (
        ByteCheck(0, b"Hello World!"),
        ByteCheck(13, b"It's new world!"),
    )
    assert scenario.validation.length == LengthCheck(Endian.BIG, 4, IntType.INT, 15)
    assert scenario.schedule is not None
    assert scenario.schedule.cron is not None
    assert scenario.schedule.cron.next_after(NOW) == datetime(2026, 11, 23, 10, 0, 7, tzinfo=UTC)
    assert scenario.source.line == 2


def test_seed_api_body_loads_as_yaml_and_as_json() -> None:
    seed_body = {
        "url": "http://toast.com",
        "httpMethod": "GET",
        "validation": {
            "textValidation": {
                "textValidationType": "JSON",
                "textValidationInfos": [
                    {"expression": "$.isSuccess", "operator": "EQ", "operand": "true"}
                ],
            },
            "responseCodes": ["200", "201"],
        },
        "browserOption": {"OPT_LOCALE": "ko"},
        "ip": "toast.com",
        "scenarioType": "API",
        "scenarioName": "API test",
        "description": "API test",
        "monitoringRegion": ["KOR"],
        "monitoringInterval": 30,
        "errorLimitCount": 0,
    }
    loaded = load_document(seed_body, "body", CONFIG, {}, NOW)
    assert loaded.ok, loaded.errors
    (scenario,) = loaded.scenarios
    assert scenario.target == HttpTarget("http://toast.com", "GET")
    assert scenario.validation.response_codes == ("200", "201")
    text = scenario.validation.text
    assert text is not None
    assert text.kind is TextKind.JSON
    assert [(c.expression.source, c.operator, c.operand) for c in text.checks] == [
        ("$.isSuccess", Operator.EQ, "true")
    ]
    assert scenario.regions == frozenset({"KOR"})


def test_defaults_and_derived_id() -> None:
    config = Config(
        services=(Service("81713f1cc96b4eae834f7535ec4fae7a", "shop"), Service("b", "b")),
        defaults=Defaults(timeout_ms=4321, error_limit_count=3),
    )
    (scenario,) = load(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n",
        config,
    ).scenarios
    assert scenario.app_key == "81713f1cc96b4eae834f7535ec4fae7a"  # the first service
    expected_id = str(uuid.uuid5(SCENARIO_NAMESPACE, "81713f1cc96b4eae834f7535ec4fae7a/n"))
    assert scenario.id == expected_id == derive_scenario_id(scenario.app_key, "n")
    assert uuid.UUID(scenario.id).version == 5
    assert scenario.validation.timeout_ms == 4321
    assert scenario.error_limit == 3
    assert scenario.target == HttpTarget("http://x.test/", "GET", (), None, False, True)
    assert scenario.regions == frozenset()
    assert scenario.runs_in("KOR")
    assert scenario.runs_in("US")


def test_ids_are_stable_across_loads_and_differ_by_app_key() -> None:
    text = "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
    first = load(text).scenarios[0]
    again = load(text).scenarios[0]
    other = load(text.replace("scenarioName: n", "scenarioName: n\nappKey: other")).scenarios[0]
    assert first.id == again.id
    assert first.fingerprint == again.fingerprint
    assert first.app_key == DEFAULT_APP_KEY
    assert other.id != first.id


def test_explicit_id_is_normalised() -> None:
    (scenario,) = load(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "scenarioId: 0C96CFF0-EDC2-11EA-9760-8D94F461E6D4\n"
    ).scenarios
    assert scenario.id == "0c96cff0-edc2-11ea-9760-8d94f461e6d4"


def test_timeout_zero_means_the_default() -> None:
    (scenario,) = load(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "validation: {timeout: 0}\n"
    ).scenarios
    assert scenario.validation.timeout_ms == CONFIG.defaults.timeout_ms


WITH_SECRETS = """
scenarioName: with secrets
scenarioType: API
url: https://${HOST}/v1?x=$${literal}
httpMethod: POST
headers: {Authorization: "Bearer ${TOKEN}", X-Count: 5}
requestBody: '{"user": "${USER}"}'
monitoringInterval: 30
"""


def test_env_substitution_in_url_headers_and_body() -> None:
    env = {"HOST": "api.test", "TOKEN": "s3cr3t", "USER": "bob"}
    (scenario,) = load(WITH_SECRETS, env=env).scenarios
    assert scenario.target == HttpTarget(
        "https://api.test/v1?x=${literal}",
        "POST",
        (("Authorization", "Bearer s3cr3t"), ("X-Count", "5")),
        b'{"user": "bob"}',
    )
    # A changed variable is a changed scenario (reload reschedules it).
    (changed,) = load(WITH_SECRETS, env={**env, "TOKEN": "rotated"}).scenarios
    assert changed.fingerprint != scenario.fingerprint


def test_substituted_values_are_not_rescanned_and_header_injection_is_refused() -> None:
    assert errors(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "headers: {X-A: '${EVIL}'}\n",
        env={"EVIL": "x\r\nX-Injected: 1"},
    ) == ["5: headers.X-A: must not contain line breaks or NUL"]
    (scenario,) = load(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "headers: {X-A: '${A}'}\n",
        env={"A": "${B}", "B": "no"},
    ).scenarios
    assert isinstance(scenario.target, HttpTarget)
    assert scenario.target.headers == (("X-A", "${B}"),)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            "{ENDIAN: LITTLE, POS: 2, TYPE: SHORT, BASE: 4}",
            LengthCheck(Endian.LITTLE, 2, IntType.SHORT, 4),
        ),
        (
            '{ENDIAN: "BIG", POS: "0", TYPE: "LONG", BASE: "0"}',
            LengthCheck(Endian.BIG, 0, IntType.LONG, 0),
        ),
        ("{POS: 1, TYPE: BYTE}", LengthCheck(Endian.BIG, 1, IntType.BYTE, 0)),
        ('{POS: "+3", TYPE: INT, BASE: "-2"}', LengthCheck(Endian.BIG, 3, IntType.INT, -2)),
    ],
)
def test_length_validation_values_as_strings_or_numbers(fields: str, expected: LengthCheck) -> None:
    (scenario,) = load(
        f"scenarioName: n\nscenarioType: UDP\nip: ::1\nport: 9\nmonitoringInterval: 5\n"
        f"validation:\n  lengthValidation: {fields}\n"
    ).scenarios
    assert scenario.validation.length == expected


def test_request_hex_and_validation_hex() -> None:
    (scenario,) = load(
        """
scenarioName: binary
scenarioType: TCP
ip: gateway.internal
port: 7000
requestHex: "de ad BE EF"
monitoringInterval: 5
validation:
  responseValidation:
    - {position: 2, validationHex: "00ff"}
"""
    ).scenarios
    assert scenario.target == SocketTarget("gateway.internal", 7000, b"\xde\xad\xbe\xef")
    assert scenario.validation.byte_checks == (ByteCheck(2, b"\x00\xff", is_hex=True),)


def test_operands_written_as_numbers_or_booleans_become_text() -> None:
    (scenario,) = load(
        """
scenarioName: operands
scenarioType: API
url: http://x.test/
monitoringInterval: 5
validation:
  responseCodes: [200, "2XX"]
  textValidation:
    textValidationType: JSON
    textValidationInfos:
      - {expression: $.a, operator: EQ, operand: true}
      - {expression: $.b, operator: LT, operand: 0.5}
      - {expression: $.c, operator: GTE, operand: 10}
      - {expression: $.d, operator: EQ, operand: ""}
"""
    ).scenarios
    text = scenario.validation.text
    assert text is not None
    assert [c.operand for c in text.checks] == ["true", "0.5", "10", ""]
    assert scenario.validation.response_codes == ("200", "2xx")


def test_region_filter_data() -> None:
    (scenario,) = load(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "monitoringRegion: [KOR, US]\n"
    ).scenarios
    assert scenario.regions == frozenset({"KOR", "US"})
    assert scenario.runs_in("US")
    assert not scenario.runs_in("JPN")


def test_event_fields_and_timezone() -> None:
    (scenario,) = load(
        """
scenarioName: n
scenarioType: API
url: http://x.test/
monitoringCron: "0 9 * * *"
timezone: Asia/Seoul
eventType: ERROR_EVENT
entitySelector: type(SERVICE),entityName.equals(shop)
description: |
  two
  lines
"""
    ).scenarios
    assert scenario.event_type is EventType.ERROR_EVENT
    assert scenario.entity_selector == "type(SERVICE),entityName.equals(shop)"
    assert scenario.description == "two\nlines\n"
    assert scenario.schedule is not None
    assert scenario.schedule.cron is not None
    assert scenario.schedule.cron.timezone == "Asia/Seoul"
    assert scenario.schedule.cron.next_after(NOW) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)


def test_batch_scenarios() -> None:
    (scenario,) = load(
        """
scenarioName: nightly export
scenarioType: BATCH
validation:
  textValidation:
    textValidationType: JSON
    textValidationInfos: [{expression: $.status, operator: EQ, operand: done}]
"""
    ).scenarios
    assert scenario.type is ScenarioType.BATCH
    assert scenario.schedule is None
    assert scenario.target is None
    assert errors(
        "scenarioName: b\nscenarioType: BATCH\ngraceSeconds: 5\n"
        "validation: {textValidation: {textValidationType: XML}}\n"
    ) == [
        "3: graceSeconds: only applies with monitoringInterval or monitoringCron",
        "4: validation.textValidation.textValidationType: BATCH payloads are JSON: must be JSON",
    ]
    assert errors("scenarioName: b\nscenarioType: BATCH\n") == [
        "1: validation: missing required field (BATCH needs textValidation)"
    ]


def test_app_key_must_be_a_configured_service_when_services_exist() -> None:
    config = Config(services=(Service("shop", "shop"),))
    assert errors(
        "scenarioName: n\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
        "appKey: shpo\n",
        config,
    ) == ["5: appKey: shpo is not a configured service (services: shop)"]


def test_merge_keys_share_common_fields() -> None:
    loaded = load(
        """
- &base
  scenarioName: a
  scenarioType: API
  url: http://x.test/a
  monitoringInterval: 30
- <<: *base
  scenarioName: b
  url: http://x.test/b
"""
    )
    assert [
        (s.name, s.target.url if isinstance(s.target, HttpTarget) else None)
        for s in loaded.scenarios
    ] == [
        ("a", "http://x.test/a"),
        ("b", "http://x.test/b"),
    ]


def test_duplicates_across_files_reject_the_later_file(tmp_path: Path) -> None:
    body = "scenarioName: same\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(body, encoding="utf-8")
    loaded = load_scenarios([tmp_path], CONFIG, {}, NOW)
    assert [f.ok for f in loaded.files] == [True, False]
    assert [str(e) for e in loaded.errors] == [
        f"{tmp_path / 'b.yaml'}:1: scenarioName: duplicate scenarioName 'same' for appKey"
        f" default (also in {tmp_path / 'a.yaml'}:1)"
    ]
    assert len(loaded.scenarios) == 1


def test_discovery_recurses_and_skips_hidden_and_backup_files(tmp_path: Path) -> None:
    body = "scenarioName: {}\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for rel in ["a.yaml", "sub/b.yml", ".hidden.yaml", ".git/c.yaml", "d.yaml~", "notes.txt"]:
        (tmp_path / rel).write_text(body.format(rel.replace("/", "-")), encoding="utf-8")
    loaded = load_scenarios([tmp_path], CONFIG, {}, NOW)
    assert sorted(s.name for s in loaded.scenarios) == ["a.yaml", "sub-b.yml"]
    globbed = load_scenarios([tmp_path / "sub" / "*.yml"], CONFIG, {}, NOW)
    assert [s.name for s in globbed.scenarios] == ["sub-b.yml"]
    missing = load_scenarios([tmp_path / "nope"], CONFIG, {}, NOW)
    assert [str(e) for e in missing.errors] == [f"{tmp_path / 'nope'}:0: -: no such file or folder"]


# --- empty, hostile and oversized input --------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "[]\n"])
def test_empty_files_hold_no_scenarios(text: str) -> None:
    loaded = load(text)
    assert loaded.ok
    assert loaded.scenarios == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{}\n",
            ["1: scenarioType: missing required field", "1: scenarioName: missing required field"],
        ),
        ("- null\n", ["1: [0]: must be a mapping, got null"]),
        ("- [a]\n", ["1: [0]: must be a mapping, got a list"]),
        ("? [a, b]\n: c\n", ["1: yaml: a mapping key must be a plain value"]),
        ("a: *nope\n", ["1: yaml: found undefined alias"]),
        (
            "a: b\n---\nc: d\n",
            ["2: yaml: but found another document (expected a single document in the stream)"],
        ),
        (
            "\t- x\n",
            [
                "1: yaml: found character that cannot start any token (while scanning for the next token)"
            ],
        ),
        ("[" * 10000 + "]" * 10000, ["1: yaml: document is nested too deeply"]),
        (
            "scenarioName: x\nscenarioType: API\nmonitoringInterval: 1" + "0" * 5000 + "\n",
            ["3: yaml: integer of more than 4300 digits"],
        ),
        (
            "1: x\nscenarioType: API\n",
            [
                "1: scenarioName: missing required field",
                "1: url: missing required field",
                "1: monitoringInterval: missing: give monitoringInterval or monitoringCron",
                "1: -: keys must be strings, got an integer",
            ],
        ),
    ],
)
def test_hostile_and_malformed_documents(text: str, expected: list[str]) -> None:
    assert sorted(errors(text)) == sorted(expected)


def test_alias_bomb_in_a_field_is_rejected_without_expanding() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    bomb = "\n".join(lines)
    text = (
        f"{bomb}\nscenarioName: bomb\nscenarioType: API\nurl: http://x.test/\n"
        "monitoringInterval: 5\nbrowserOption:\n  nested: *a8\n"
    )
    found = errors(text)  # 10**9 leaves if expanded; must answer at once
    assert "15: browserOption.nested: must map strings to strings" in found
    assert "1: a0: unknown field" in found
    assert len(found) == 10


def test_not_utf8_and_oversized_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert [str(e) for e in load_file(binary, CONFIG, {}).errors] == [
        f"{binary}:1: -: not UTF-8 text: invalid start byte"
    ]
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.write(b"# " + b"x" * (32 * 1024 * 1024) + b"\n")
    assert [str(e) for e in load_file(big, CONFIG, {}).errors] == [
        f"{big}:0: -: larger than 33554432 bytes"
    ]
    unreadable = tmp_path / "folder.yaml"
    unreadable.mkdir()
    assert load_file(unreadable, CONFIG, {}).errors[0].message.startswith("cannot read:")


def test_overlong_and_multiline_names_are_refused() -> None:
    assert errors(
        f"scenarioName: '{'n' * 201}'\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n"
    ) == ["1: scenarioName: is longer than 200 characters"]
    assert errors(
        'scenarioName: "a\\nb"\nscenarioType: API\nurl: http://x.test/\nmonitoringInterval: 5\n'
    ) == ["1: scenarioName: must be a single line"]


def test_example_scenarios_are_valid() -> None:
    examples = Path(__file__).parent.parent / "scenarios"
    config = Config(services=(Service("81713f1cc96b4eae834f7535ec4fae7a", "shop"),))
    loaded = load_scenarios([examples], config, {}, NOW)
    assert loaded.errors == ()
    kinds = {s.type for s in loaded.scenarios}
    assert kinds == {ScenarioType.API, ScenarioType.TCP, ScenarioType.UDP, ScenarioType.BATCH}
    text_kinds = {s.validation.text.kind for s in loaded.scenarios if s.validation.text}
    assert text_kinds == {TextKind.JSON, TextKind.HTML, TextKind.XML}


# --- no document is ever dropped silently --------------------------------------------------

_BASE_DOCUMENTS = [
    {
        "scenarioName": "api",
        "scenarioType": "API",
        "appKey": "default",
        "scenarioId": "0c96cff0-edc2-11ea-9760-8d94f461e6d4",
        "description": "d",
        "url": "http://x.test/",
        "httpMethod": "POST",
        "headers": {"A": "b"},
        "requestBody": "{}",
        "followRedirects": True,
        "tlsVerify": False,
        "monitoringInterval": 30,
        "monitoringRegion": ["KOR"],
        "errorLimitCount": 1,
        "eventType": "ERROR_EVENT",
        "entitySelector": "type(SERVICE)",
        "timezone": "UTC",
        "validation": {
            "timeout": 100,
            "responseCodes": ["200"],
            "avoidingValidationText": "m",
            "textValidation": {
                "textValidationType": "JSON",
                "textValidationInfos": [{"expression": "$.a", "operator": "EQ", "operand": "1"}],
            },
        },
    },
    {
        "scenarioName": "tcp",
        "scenarioType": "TCP",
        "ip": "127.0.0.1",
        "port": 7,
        "request": "x",
        "monitoringCron": "* * * * *",
        "validation": {
            "timeout": 100,
            "responseValidation": [{"position": 0, "validationText": "x"}],
            "lengthValidation": {"ENDIAN": "BIG", "POS": 0, "TYPE": "BYTE", "BASE": 1},
        },
    },
    {
        "scenarioName": "batch",
        "scenarioType": "BATCH",
        "monitoringInterval": 60,
        "graceSeconds": 5,
        "validation": {
            "textValidation": {
                "textValidationType": "JSON",
                "textValidationInfos": [{"expression": "$.a", "operator": "EQ", "operand": "1"}],
            }
        },
    },
]
_ODD_VALUES = [None, "", " ", 0, -1, 1.5, True, [], {}, ["x"], {"k": "v"}, "x" * 5000, "${X"]


def _paths(document: dict[str, object], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in document.items():
        paths.append((*prefix, key))
        if isinstance(value, dict):
            paths.extend(_paths(value, (*prefix, key)))
    return paths


def _with(document: dict[str, object], path: tuple[str, ...], value: object) -> dict[str, object]:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copy


@pytest.mark.parametrize("base", _BASE_DOCUMENTS, ids=lambda d: str(d["scenarioType"]))
def test_every_mutation_either_loads_or_says_why(base: dict[str, object]) -> None:
    assert load_document(base, "body", CONFIG, {}, NOW).ok
    for path in _paths(base):
        for value in _ODD_VALUES:
            loaded = load_document(_with(base, path, value), "body", CONFIG, {}, NOW)
            assert loaded.ok == (len(loaded.scenarios) == 1), (path, value, loaded)
            assert loaded.ok or loaded.errors, (path, value)
