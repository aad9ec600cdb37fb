"""Command line: ``monitord run | check | probe``. Parsing, printing and exit codes only."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from monitord import __version__, authoring, daemon
from monitord.config.errors import ConfigError
from monitord.config.scenarios import load_scenarios
from monitord.config.settings import Config
from monitord.logs import LOG_FORMATS, setup_logging
from monitord.model import Outcome, Result

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=argparse.SUPPRESS,
        help="log line format on stderr (default: text)",
    )
    common.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=argparse.SUPPRESS,
        help="lowest level logged (default: INFO for run, WARNING otherwise)",
    )
    parser = argparse.ArgumentParser(
        prog="monitord",
        description="Synthetic-monitoring daemon for API, TCP, UDP and BATCH scenarios.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"monitord {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run the daemon in the foreground until SIGTERM/SIGINT",
        description="Run the scenarios on their schedules until SIGTERM or SIGINT. "
        "Exit 0 on a clean shutdown, 2 when the configuration cannot be loaded.",
    )
    run.add_argument("--config", metavar="FILE", help="configuration file")

    check = commands.add_parser(
        "check",
        parents=[common],
        help="validate the configuration and scenario files",
        description="Validate the configuration and every scenario file (or only PATHs). "
        "Errors go to stderr as FILE:LINE: FIELD: message; a summary to stdout. "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    check.add_argument("--config", metavar="FILE", help="configuration file")
    check.add_argument("paths", nargs="*", metavar="PATH", help="scenario files or folders")

    probe = commands.add_parser(
        "probe",
        parents=[common],
        help="run scenarios once, now, and print the results",
        description="Run the scenarios in PATH once and print each result. "
        "Exit 0 when all succeed (or are suppressed), 1 on any failure, 2 on invalid input.",
    )
    probe.add_argument("path", metavar="PATH", help="a scenario file or folder")
    probe.add_argument("--scenario", metavar="NAME_OR_ID", help="only this scenario")
    probe.add_argument("--json", action="store_true", help="one JSON result object per line")
    probe.add_argument("--config", metavar="FILE", help="configuration file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The daemon logs its runs; the authoring commands only what needs attention.
    default_level = "INFO" if args.command == "run" else "WARNING"
    setup_logging(getattr(args, "log_format", "text"), getattr(args, "log_level", default_level))
    if args.command == "run":
        return _run(args.config)
    if args.command == "check":
        return _check(args.config, args.paths)
    if args.command == "probe":
        return _probe(args.path, args.scenario, args.json, args.config)
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects others


def _config_or_report(config_path: str | None) -> Config | None:
    """The configuration, or None after printing why it cannot be loaded."""
    try:
        return authoring.read_config(config_path, os.environ)
    except ConfigError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return None


def _run(config_path: str | None) -> int:
    config = _config_or_report(config_path)
    if config is None:
        return EXIT_INVALID
    # Until the daemon installs its own handler, a SIGHUP (a reload asked for
    # too early) must not end the process, which is its default action.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        asyncio.run(daemon.serve(config, os.environ))
    except daemon.StartupError as exc:
        print(f"monitord: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _check(config_path: str | None, paths: list[str]) -> int:
    report = authoring.check(config_path, paths, os.environ)
    for error in report.errors:
        print(error, file=sys.stderr)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_INVALID


def _probe(path: str, scenario: str | None, as_json: bool, config_path: str | None) -> int:
    config = _config_or_report(config_path)
    if config is None:
        return EXIT_INVALID
    loaded = load_scenarios([Path(path)], config, os.environ)
    if loaded.errors:
        for error in loaded.errors:
            print(error, file=sys.stderr)
        return EXIT_INVALID
    chosen = authoring.select(loaded.scenarios, scenario)
    if scenario is not None and not chosen:
        print(f"monitord: no scenario named or with id {scenario!r} in {path}", file=sys.stderr)
        return EXIT_INVALID
    runnable, batch = authoring.split_probeable(chosen)
    for skipped in batch:
        print(
            f"monitord: skipping BATCH scenario {skipped.name!r}: it receives payloads, "
            "it is not probed",
            file=sys.stderr,
        )
    if not runnable:
        print(f"monitord: no API, TCP or UDP scenario to probe in {path}", file=sys.stderr)
        return EXIT_INVALID
    results = asyncio.run(authoring.probe_all(runnable, config))
    for result in results:
        if as_json:
            print(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            _print_result(result, sys.stdout)
    failed = any(r.outcome is Outcome.FAILURE for r in results)
    return EXIT_FAILURE if failed else EXIT_OK


_LABELS = {Outcome.SUCCESS: "OK", Outcome.FAILURE: "FAIL", Outcome.SUPPRESSED: "SUPPRESSED"}


def _print_result(result: Result, out: TextIO) -> None:
    details = [result.scenario_type.value]
    if result.status_code is not None:
        details.append(f"status {result.status_code}")
    if result.response_bytes is not None:
        details.append(f"{result.response_bytes} bytes")
    details.append(f"{result.duration_ms:.1f} ms")
    print(f"{_LABELS[result.outcome]:<10} {result.scenario_name} ({', '.join(details)})", file=out)
    for reason in result.reasons:
        print(f"           - {reason}", file=out)
