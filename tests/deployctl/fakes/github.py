"""Fake GitHub REST for one repository: git refs and commits, pulls, compare
and branch protection, with the shapes the REST docs give. Failure modes:
down (503 on every call), wrong token (401)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .server import Request, Response
from .world import World

TOKEN = "github-test-token-0000"
REPOSITORY = "owner/nanobanana"


class FakeGitHub:
    def __init__(self, world: World, token: str = TOKEN, repository: str = REPOSITORY) -> None:
        self.world = world
        self.token = token
        self.repository = repository
        self.refs: dict[str, str] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.pulls: list[dict[str, Any]] = []
        self.protection: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.ahead: dict[tuple[str, str], int] = {}

    # --- scenario helpers ---------------------------------------------------
    def add_commit(self, sha: str, *, branch: str | None = None) -> None:
        self.commits[sha] = {"sha": sha, "tree": {"sha": f"tree-of-{sha}"}, "parents": []}
        if branch:
            self.refs[branch] = sha

    def add_merged_pull(self, number: int, title: str, *, base: str, head: str, merged_at: str) -> None:
        self.pulls.append(
            {
                "number": number,
                "title": title,
                "state": "closed",
                "merged_at": merged_at,
                "updated_at": merged_at,
                "base": {"ref": base},
                "head": {"ref": head},
                "user": {"login": "dev"},
                "html_url": f"https://github.test/{self.repository}/pull/{number}",
                "body": "",
            }
        )

    def open_pulls(self) -> list[dict[str, Any]]:
        return [pull for pull in self.pulls if pull["state"] == "open"]

    # --- HTTP ---------------------------------------------------------------
    def __call__(self, request: Request) -> Response:
        if self.world.github_down:
            return Response(503, {"message": "Service Unavailable"})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, {"message": "Bad credentials"})
        prefix = f"/repos/{self.repository}"
        if not request.path.startswith(prefix):
            return Response(404, {"message": "Not Found"})
        path = request.path[len(prefix) :]
        self.calls.append((request.method, path))
        for pattern, method, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and request.method == method:
                return handler(request, *match.groups())
        return Response(404, {"message": "Not Found"})

    def _routes(self) -> list[tuple[str, str, Any]]:
        return [
            (r"/git/ref/heads/(.+)", "GET", self._get_ref),
            (r"/git/commits/([0-9a-zA-Z-]+)", "GET", self._get_commit),
            (r"/git/commits", "POST", self._create_commit),
            (r"/git/refs", "POST", self._create_ref),
            (r"/pulls", "GET", self._list_pulls),
            (r"/pulls", "POST", self._create_pull),
            (r"/pulls/(\d+)", "PATCH", self._update_pull),
            (r"/compare/([^.]+)\.\.\.(.+)", "GET", self._compare),
            (r"/branches/([^/]+)/protection", "GET", self._get_protection),
            (r"/branches/([^/]+)/protection", "PUT", self._put_protection),
        ]

    def _get_ref(self, request: Request, branch: str) -> Response:
        if branch not in self.refs:
            return Response(404, {"message": "Not Found"})
        return Response(200, {"ref": f"refs/heads/{branch}", "object": {"sha": self.refs[branch], "type": "commit"}})

    def _get_commit(self, request: Request, sha: str) -> Response:
        return Response(200, self.commits[sha]) if sha in self.commits else Response(404, {"message": "Not Found"})

    def _create_commit(self, request: Request) -> Response:
        body = request.json()
        sha = hashlib.sha1(repr(body).encode(), usedforsecurity=False).hexdigest()
        self.commits[sha] = {
            "sha": sha,
            "tree": {"sha": body["tree"]},
            "parents": body["parents"],
            "message": body["message"],
        }
        return Response(201, self.commits[sha])

    def _create_ref(self, request: Request) -> Response:
        body = request.json()
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return Response(422, {"message": "Reference already exists"})
        if branch in {"main", "staging"}:
            raise AssertionError("deployctl must never write to a protected branch")
        self.refs[branch] = body["sha"]
        return Response(201, {"ref": body["ref"], "object": {"sha": body["sha"]}})

    def _list_pulls(self, request: Request) -> Response:
        query = request.query
        found = [
            pull
            for pull in self.pulls
            if pull["state"] == query.get("state", "open")
            and ("base" not in query or pull["base"]["ref"] == query["base"])
            and ("head" not in query or f"{self.repository.split('/')[0]}:{pull['head']['ref']}" == query["head"])
        ]
        found.sort(key=lambda pull: pull["updated_at"], reverse=True)
        return Response(200, found[: int(query.get("per_page", 30))])

    def _create_pull(self, request: Request) -> Response:
        body = request.json()
        if body["head"] not in self.refs and body["head"] != "staging":
            return Response(422, {"message": "Validation Failed"})
        number = len(self.pulls) + 100
        pull = {
            "number": number,
            "title": body["title"],
            "body": body["body"],
            "state": "open",
            "merged_at": None,
            "updated_at": "2030-01-01T00:00:00Z",
            "base": {"ref": body["base"]},
            "head": {"ref": body["head"]},
            "html_url": f"https://github.test/{self.repository}/pull/{number}",
            "user": {"login": "bot"},
        }
        self.pulls.append(pull)
        return Response(201, pull)

    def _update_pull(self, request: Request, number: str) -> Response:
        pull = next((p for p in self.pulls if p["number"] == int(number)), None)
        if pull is None:
            return Response(404, {"message": "Not Found"})
        pull.update(request.json())
        return Response(200, pull)

    def _compare(self, request: Request, base: str, head: str) -> Response:
        return Response(200, {"ahead_by": self.ahead.get((base, head), 0), "status": "ahead"})

    def _get_protection(self, request: Request, branch: str) -> Response:
        if branch not in self.protection:
            return Response(404, {"message": "Branch not protected"})
        return Response(200, self.protection[branch])

    def _put_protection(self, request: Request, branch: str) -> Response:
        """Store the PUT body and answer in the GET shape, as GitHub does."""
        body = request.json()
        checks = body["required_status_checks"]
        reviews = body["required_pull_request_reviews"]
        self.protection[branch] = {
            "required_status_checks": {
                "strict": checks["strict"],
                "checks": checks["checks"],
                "contexts": [c["context"] for c in checks["checks"]],
            },
            "enforce_admins": {"enabled": body["enforce_admins"]},
            "required_pull_request_reviews": {
                "required_approving_review_count": reviews["required_approving_review_count"],
                "dismiss_stale_reviews": reviews.get("dismiss_stale_reviews", False),
            },
            "required_linear_history": {"enabled": body["required_linear_history"]},
            "allow_force_pushes": {"enabled": body["allow_force_pushes"]},
            "allow_deletions": {"enabled": body["allow_deletions"]},
            "required_conversation_resolution": {"enabled": body["required_conversation_resolution"]},
        }
        return Response(200, self.protection[branch])
