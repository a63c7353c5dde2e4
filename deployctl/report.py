"""A plain result for commands whose output is a few lines (status, webhook,
protect, release, notify, journal): the same `to_json` / `to_markdown` shape
as the monitor and rollback reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from deployctl.verdict import Verdict


class Report(Protocol):
    def to_json(self) -> dict[str, Any]: ...

    def to_markdown(self) -> str: ...


@dataclass
class Result:
    command: str
    verdict: Verdict
    title: str
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "verdict": self.verdict.value,
            "title": self.title,
            "lines": self.lines,
            **self.data,
        }

    def to_markdown(self) -> str:
        body = "".join(f"- {line}\n" for line in self.lines)
        return f"### {self.title}: **{self.verdict.value}**\n\n{body}"
