"""Fake Railway GraphQL (https://backboard.railway.com/graphql/v2), answering the
operations deployctl sends, by `operationName`, from the simulated world.

Failure modes: the API down (503), rate limited (429 + Retry-After), a wrong
token (GraphQL error "Not Authorized", as Railway answers).
"""

from __future__ import annotations

from typing import Any

from deployctl.clock import format_timestamp, parse_timestamp

from .server import Request, Response
from .world import SimDeployment, World

TOKEN = "railway-test-token-0000"
RETRY_AFTER_SECONDS = 3


class FakeRailway:
    def __init__(self, world: World, token: str = TOKEN) -> None:
        self.world = world
        self.token = token
        self.calls: list[str] = []

    def __call__(self, request: Request) -> Response:
        world = self.world
        if world.railway_down:
            return Response(503, {"error": "upstream unavailable"})
        if world.railway_rate_limited > 0:
            world.railway_rate_limited -= 1
            return Response(429, {"errors": [{"message": "rate limited"}]}, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(200, {"errors": [{"message": "Not Authorized"}], "data": None})
        payload = request.json()
        operation = payload["operationName"]
        variables = payload.get("variables") or {}
        assert f"{operation}(" in payload["query"], f"query text does not call {operation}"
        self.calls.append(operation)
        with world.lock:
            data = getattr(self, f"_{operation}")(variables)
        return Response(200, {"data": data})

    def _node(self, deployment: SimDeployment) -> dict[str, Any]:
        return {
            "id": deployment.id,
            "status": deployment.status(self.world.clock.now()),
            "createdAt": format_timestamp(deployment.created_at),
            "meta": {"commitHash": deployment.commit, "branch": "main"},
            "canRollback": deployment.can_rollback,
            "canRedeploy": deployment.can_redeploy,
            "url": None,
            "serviceId": self.world.services[deployment.service],
            "environmentId": self.world.environments[deployment.environment],
        }

    def _project(self, variables: dict[str, Any]) -> dict[str, Any]:
        if variables["id"] != self.world.project_id:
            return {"project": None}
        return {
            "project": {
                "id": self.world.project_id,
                "name": "nanobanana",
                "services": {"edges": [{"node": {"id": i, "name": n}} for n, i in self.world.services.items()]},
                "environments": {"edges": [{"node": {"id": i, "name": n}} for n, i in self.world.environments.items()]},
            }
        }

    def _deployments(self, variables: dict[str, Any]) -> dict[str, Any]:
        spec = variables["input"]
        services = {i: n for n, i in self.world.services.items()}
        environments = {i: n for n, i in self.world.environments.items()}
        now = self.world.clock.now()
        found = [
            d
            for d in self.world.deployments
            if d.service == services.get(spec["serviceId"])
            and d.environment == environments.get(spec["environmentId"])
            and d.created_at <= now
        ]
        found.sort(key=lambda d: d.created_at, reverse=True)
        return {"deployments": {"edges": [{"node": self._node(d)} for d in found[: variables.get("first") or 20]]}}

    def _deployment(self, variables: dict[str, Any]) -> dict[str, Any]:
        deployment = self.world.find(variables["id"])
        return {"deployment": self._node(deployment) if deployment else None}

    def _window(self, variables: dict[str, Any]) -> tuple[SimDeployment, float, float]:
        deployment = self.world.find(variables["deploymentId"])
        assert deployment is not None, "unknown deployment"
        start = parse_timestamp(variables["startDate"]) if variables.get("startDate") else 0.0
        end = parse_timestamp(variables["endDate"]) if variables.get("endDate") else float("inf")
        return deployment, start, end

    def _deploymentLogs(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 (GraphQL name)
        deployment, start, end = self._window(variables)
        lines = self.world.log_lines(deployment, start, end)[: variables.get("limit") or 5000]
        return {
            "deploymentLogs": [
                {
                    "message": line["message"],
                    "timestamp": format_timestamp(line["_t"]),
                    "severity": line["severity"],
                    "attributes": [],
                }
                for line in lines
            ]
        }

    def _httpLogs(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 (GraphQL name)
        deployment, start, end = self._window(variables)
        rows = self.world.http_requests(deployment, start, end)[: variables.get("limit") or 5000]
        return {"httpLogs": [{"timestamp": format_timestamp(t), "httpStatus": s, "path": p} for t, s, p in rows]}

    def _deploymentRollback(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 (GraphQL name)
        self.world.mutations.append(("deploymentRollback", dict(variables)))
        source = self.world.find(variables["id"])
        if source is None or not source.can_rollback:
            return {"deploymentRollback": False}
        self.world.rollback(source.id)
        return {"deploymentRollback": True}

    def _deploymentRedeploy(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802 (GraphQL name)
        self.world.mutations.append(("deploymentRedeploy", dict(variables)))
        rebuild = not variables.get("usePreviousImageTag")
        created = self.world.rollback(variables["id"], rebuild=rebuild)
        return {"deploymentRedeploy": {"id": created.id, "status": "BUILDING"}}
