"""The release PR `staging -> main`: opened or updated with notes built from
the PRs merged into staging since the last release. Never merges."""

from __future__ import annotations

from typing import Any

from deployctl.clients.github import GitHubClient, ensure_pr_url
from deployctl.report import Result
from deployctl.verdict import Verdict


def last_release_at(github: GitHubClient, *, head: str, base: str) -> str | None:
    """When the last `head -> base` PR was merged (ISO timestamps sort as text)."""
    merged = [str(p["merged_at"]) for p in github.closed_pulls(base=base, head=head) if p.get("merged_at")]
    return max(merged, default=None)


def release_notes(pulls: list[dict[str, Any]]) -> str:
    lines = [f"- {p['title']} (#{p['number']}, @{(p.get('user') or {}).get('login', '?')})" for p in pulls]
    body = "\n".join(lines) or "- (no merged PRs found; see the commits)"
    return (
        "## Changes since the last release\n\n"
        f"{body}\n\n"
        "Merge by hand after trying staging. The post-deploy monitor watches production after the merge."
    )


def release_open(github: GitHubClient, *, head: str = "staging", base: str = "main") -> Result:
    """Open or update the release PR; do nothing when `head` has nothing new."""
    ahead = github.ahead_by(base, head)
    if ahead == 0:
        return Result("release open", Verdict.PASS, f"Nothing to release: {head} has no commits {base} lacks")
    since = last_release_at(github, head=head, base=base)
    merged = [
        p
        for p in github.closed_pulls(base=head)
        if p.get("merged_at") and (since is None or str(p["merged_at"]) > since)
    ]
    merged.sort(key=lambda p: str(p["merged_at"]))
    title = f"Release {head} -> {base}: {len(merged)} change{'s' if len(merged) != 1 else ''}"
    body = release_notes(merged)
    existing = github.open_pulls(head=head, base=base)
    if existing:
        pull = github.update_pull(int(existing[0]["number"]), title=title, body=body)
        action = "updated"
    else:
        pull = github.create_pull(title=title, head=head, base=base, body=body)
        action = "opened"
    url = ensure_pr_url(pull)
    lines = [f"{action} {url}", f"{ahead} commits ahead; {len(merged)} PRs since {since or 'the beginning'}"]
    return Result(
        "release open",
        Verdict.PASS,
        f"Release PR {action}",
        lines,
        {"url": url, "action": action, "pulls": [p["number"] for p in merged]},
    )
