"""Pass / fail / inconclusive, with reasons: what every check returns."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from deployctl.errors import EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_PASS


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {Verdict.PASS: EXIT_PASS, Verdict.FAIL: EXIT_FAIL, Verdict.INCONCLUSIVE: EXIT_INCONCLUSIVE}[self]


@dataclass(frozen=True)
class CheckResult:
    """One measurement: its name, its verdict and why."""

    name: str
    verdict: Verdict
    reason: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict.value, "reason": self.reason, "data": self.data}


def passed(name: str, reason: str, **data: Any) -> CheckResult:
    return CheckResult(name, Verdict.PASS, reason, dict(data))


def failed(name: str, reason: str, **data: Any) -> CheckResult:
    return CheckResult(name, Verdict.FAIL, reason, dict(data))


def inconclusive(name: str, reason: str, **data: Any) -> CheckResult:
    return CheckResult(name, Verdict.INCONCLUSIVE, reason, dict(data))


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Any failure fails; otherwise any doubt is inconclusive; an empty set is inconclusive."""
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in seen or not seen:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
