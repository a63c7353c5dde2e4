"""The deploy journal: one record per deploy (what, when, which checks, the
verdict, links), appended as JSON Lines and as Markdown. Workflows keep the
directory as an artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deployctl.clock import format_timestamp

JSONL = "journal.jsonl"
MARKDOWN = "journal.md"


def build_record(
    *,
    when: float,
    environment: str,
    version: str | None,
    what: str,
    reports: list[dict[str, Any]],
    links: list[str],
) -> dict[str, Any]:
    """A record from the JSON reports of the commands that ran (monitor, rollback, smoke...)."""
    verdicts = {
        str(r.get("command")): r.get("verdict") or ("done" if r.get("rolled_back") else "failed") for r in reports
    }
    checks = [
        {"command": r.get("command"), "name": c.get("name"), "verdict": c.get("verdict")}
        for r in reports
        for c in r.get("checks") or []
    ]
    return {
        "at": format_timestamp(when),
        "environment": environment,
        "version": version,
        "what": what,
        "verdicts": verdicts,
        "checks": checks,
        "reports": reports,
        "links": links,
    }


def to_markdown(record: dict[str, Any]) -> str:
    verdicts = ", ".join(f"{command}: **{verdict}**" for command, verdict in record["verdicts"].items())
    lines = [f"## {record['at']} {record['environment']} {record['what']} `{record['version'] or '?'}`", ""]
    lines.append(f"- verdicts: {verdicts or 'none'}")
    failing = [f"{c['command']}/{c['name']}" for c in record["checks"] if c["verdict"] != "pass"]
    lines.append(f"- checks: {len(record['checks'])}, not passing: {', '.join(failing) or 'none'}")
    lines += [f"- {link}" for link in record["links"]]
    return "\n".join(lines) + "\n\n"


def append(directory: Path, record: dict[str, Any]) -> tuple[Path, Path]:
    """Append the record to both files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    jsonl, markdown = directory / JSONL, directory / MARKDOWN
    with jsonl.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    with markdown.open("a", encoding="utf-8") as handle:
        handle.write(to_markdown(record))
    return jsonl, markdown
