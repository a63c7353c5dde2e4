"""GitHub REST: pull requests, git data (for revert commits) and branch protection.

Docs: https://docs.github.com/en/rest (pulls, git/refs, git/commits,
branches/branch-protection, repos/compare).
"""

from __future__ import annotations

from typing import Any

from deployctl.errors import ApiError
from deployctl.http import HttpClient

GITHUB_API_URL = "https://api.github.com"


class GitHubClient:
    """Typed calls over the REST API for one repository (`owner/name`)."""

    def __init__(self, http: HttpClient, repository: str) -> None:
        self.http = http
        self.repository = repository
        self.owner = repository.split("/", 1)[0]

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        label = f"{method} {path}"
        response = self.http.request(method, f"/repos/{self.repository}{path}", label=label, json=json, params=params)
        return self.http.json_or_error(response, label)

    def branch_head(self, branch: str) -> str:
        """The commit a branch points at."""
        return str(self._call("GET", f"/git/ref/heads/{branch}")["object"]["sha"])

    def commit_tree(self, sha: str) -> str:
        return str(self._call("GET", f"/git/commits/{sha}")["tree"]["sha"])

    def create_commit(self, *, message: str, tree: str, parents: list[str]) -> str:
        payload = {"message": message, "tree": tree, "parents": parents}
        return str(self._call("POST", "/git/commits", json=payload)["sha"])

    def create_branch(self, branch: str, sha: str) -> None:
        self._call("POST", "/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})

    def open_pulls(self, *, head: str, base: str) -> list[dict[str, Any]]:
        """Open PRs from `head` (a branch of this repository) into `base`."""
        params = {"state": "open", "head": f"{self.owner}:{head}", "base": base, "per_page": 100}
        result: list[dict[str, Any]] = self._call("GET", "/pulls", params=params)
        return result

    def closed_pulls(self, *, base: str, head: str | None = None, per_page: int = 100) -> list[dict[str, Any]]:
        """Closed PRs into `base`, most recently updated first."""
        params: dict[str, Any] = {"state": "closed", "base": base, "sort": "updated", "direction": "desc"}
        params["per_page"] = per_page
        if head:
            params["head"] = f"{self.owner}:{head}"
        result: list[dict[str, Any]] = self._call("GET", "/pulls", params=params)
        return result

    def create_pull(self, *, title: str, head: str, base: str, body: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "/pulls", json={"title": title, "head": head, "base": base, "body": body}
        )
        return result

    def update_pull(self, number: int, *, title: str, body: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PATCH", f"/pulls/{number}", json={"title": title, "body": body})
        return result

    def ahead_by(self, base: str, head: str) -> int:
        """How many commits `head` has that `base` lacks."""
        return int(self._call("GET", f"/compare/{base}...{head}")["ahead_by"])

    def get_protection(self, branch: str) -> dict[str, Any] | None:
        """The branch's protection, or None when it has none."""
        label = f"GET /branches/{branch}/protection"
        response = self.http.request("GET", f"/repos/{self.repository}/branches/{branch}/protection", label=label)
        if response.status_code == 404:
            return None
        result: dict[str, Any] = self.http.json_or_error(response, label)
        return result

    def put_protection(self, branch: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", f"/branches/{branch}/protection", json=body)
        return result


def ensure_pr_url(pull: dict[str, Any]) -> str:
    url = pull.get("html_url")
    if not isinstance(url, str):
        raise ApiError("github: the pull request has no html_url")
    return url
