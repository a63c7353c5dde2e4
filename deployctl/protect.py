"""Branch protection from a YAML file in the repository, applied and read back.

File shape (`.github/branch-protection.yml`)::

    branches:
      main:
        required_checks: [lint, test]
        strict: true
        required_approving_review_count: 0
        enforce_admins: true
        required_linear_history: true
        allow_force_pushes: false
        allow_deletions: false
        required_conversation_resolution: true

Docs: https://docs.github.com/en/rest/branches/branch-protection
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployctl.clients.github import GitHubClient
from deployctl.errors import ConfigError
from deployctl.report import Result
from deployctl.verdict import Verdict


@dataclass(frozen=True)
class BranchRules:
    branch: str
    required_checks: tuple[str, ...]
    strict: bool = True
    required_approving_review_count: int = 0
    enforce_admins: bool = True
    required_linear_history: bool = True
    allow_force_pushes: bool = False
    allow_deletions: bool = False
    required_conversation_resolution: bool = True

    def body(self) -> dict[str, Any]:
        """The PUT body: pull requests only, required checks, no force push or deletion."""
        return {
            "required_status_checks": {"strict": self.strict, "checks": [{"context": c} for c in self.required_checks]},
            "enforce_admins": self.enforce_admins,
            "required_pull_request_reviews": {
                "required_approving_review_count": self.required_approving_review_count,
                "dismiss_stale_reviews": True,
            },
            "restrictions": None,
            "required_linear_history": self.required_linear_history,
            "allow_force_pushes": self.allow_force_pushes,
            "allow_deletions": self.allow_deletions,
            "required_conversation_resolution": self.required_conversation_resolution,
        }


def load_rules(path: Path) -> list[BranchRules]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    branches = document.get("branches") if isinstance(document, dict) else None
    if not isinstance(branches, dict) or not branches:
        raise ConfigError(f"{path} has no `branches` mapping")
    rules = []
    for branch, spec in branches.items():
        if not isinstance(spec, dict) or not spec.get("required_checks"):
            raise ConfigError(f"{path}: branch {branch} needs a non-empty `required_checks` list")
        known = set(BranchRules.__dataclass_fields__) - {"branch"}
        unknown = set(spec) - known
        if unknown:
            raise ConfigError(f"{path}: branch {branch} has unknown keys: {', '.join(sorted(unknown))}")
        rules.append(BranchRules(branch=str(branch), **{**spec, "required_checks": tuple(spec["required_checks"])}))
    return rules


def _enabled(protection: dict[str, Any], key: str) -> bool:
    value = protection.get(key)
    return bool(value.get("enabled")) if isinstance(value, dict) else bool(value)


def drift(rules: BranchRules, protection: dict[str, Any] | None) -> list[str]:
    """Differences between the wanted rules and what GitHub reports, one line each."""
    name = rules.branch
    if protection is None:
        return [f"{name}: not protected"]
    found: list[str] = []
    checks = protection.get("required_status_checks") or {}
    have = {c.get("context") for c in checks.get("checks") or []} | set(checks.get("contexts") or [])
    want = set(rules.required_checks)
    if want - have:
        found.append(f"{name}: required checks missing: {', '.join(sorted(want - have))}")
    if have - want:
        found.append(f"{name}: unexpected required checks: {', '.join(sorted(str(c) for c in have - want))}")
    if bool(checks.get("strict")) != rules.strict:
        found.append(f"{name}: strict is {checks.get('strict')}, want {rules.strict}")
    reviews = protection.get("required_pull_request_reviews")
    if reviews is None:
        found.append(f"{name}: pull requests are not required")
    elif reviews.get("required_approving_review_count", 0) != rules.required_approving_review_count:
        found.append(
            f"{name}: required approvals {reviews.get('required_approving_review_count')}, "
            f"want {rules.required_approving_review_count}"
        )
    for key in (
        "enforce_admins",
        "required_linear_history",
        "allow_force_pushes",
        "allow_deletions",
        "required_conversation_resolution",
    ):
        wanted = getattr(rules, key)
        if _enabled(protection, key) != wanted:
            found.append(f"{name}: {key} is {_enabled(protection, key)}, want {wanted}")
    return found


def protect_apply(github: GitHubClient, rules: list[BranchRules]) -> Result:
    """PUT each branch's rules, then read them back."""
    for rule in rules:
        github.put_protection(rule.branch, rule.body())
    result = protect_verify(github, rules)
    result.command, result.title = "protect apply", "Branch protection applied"
    return result


def protect_verify(github: GitHubClient, rules: list[BranchRules]) -> Result:
    """Read each branch's protection back; any drift fails."""
    found: list[str] = []
    for rule in rules:
        found += drift(rule, github.get_protection(rule.branch))
    branches = ", ".join(rule.branch for rule in rules)
    lines = found or [f"{branches}: as in the file"]
    return Result(
        "protect verify", Verdict.FAIL if found else Verdict.PASS, "Branch protection", lines, {"drift": found}
    )
