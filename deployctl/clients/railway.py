"""Railway's public GraphQL API: deployments, logs, rollback and redeploy.

Docs: https://docs.railway.com/reference/public-api (schema names as the
Railway CLI's introspected schema spells them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployctl.clock import parse_timestamp
from deployctl.errors import ApiError, ConfigError
from deployctl.http import HttpClient

RAILWAY_GRAPHQL_URL = "https://backboard.railway.com/graphql/v2"

# Statuses of a deployment that once served traffic or serves it now.
SERVED_STATUSES = frozenset({"SUCCESS", "REMOVED", "SLEEPING"})
# Statuses that mean a deployment is still on its way.
IN_PROGRESS_STATUSES = frozenset({"BUILDING", "DEPLOYING", "INITIALIZING", "QUEUED", "WAITING", "NEEDS_APPROVAL"})

_PROJECT = """
query project($id: String!) {
  project(id: $id) {
    id
    name
    services { edges { node { id name } } }
    environments { edges { node { id name } } }
  }
}"""

_DEPLOYMENT_FIELDS = "id status createdAt meta canRollback canRedeploy url"

_DEPLOYMENTS = f"""
query deployments($input: DeploymentListInput!, $first: Int) {{
  deployments(input: $input, first: $first) {{ edges {{ node {{ {_DEPLOYMENT_FIELDS} }} }} }}
}}"""

_DEPLOYMENT = f"""
query deployment($id: String!) {{
  deployment(id: $id) {{ {_DEPLOYMENT_FIELDS} serviceId environmentId }}
}}"""

_DEPLOYMENT_LOGS = """
query deploymentLogs($deploymentId: String!, $startDate: DateTime, $endDate: DateTime, $limit: Int) {
  deploymentLogs(deploymentId: $deploymentId, startDate: $startDate, endDate: $endDate, limit: $limit) {
    message timestamp severity attributes { key value }
  }
}"""

_HTTP_LOGS = """
query httpLogs($deploymentId: String!, $startDate: String, $endDate: String, $limit: Int) {
  httpLogs(deploymentId: $deploymentId, startDate: $startDate, endDate: $endDate, limit: $limit) {
    timestamp httpStatus path
  }
}"""

_ROLLBACK = """
mutation deploymentRollback($id: String!) { deploymentRollback(id: $id) }"""

_REDEPLOY = """
mutation deploymentRedeploy($id: String!, $usePreviousImageTag: Boolean) {
  deploymentRedeploy(id: $id, usePreviousImageTag: $usePreviousImageTag) { id status }
}"""

LOG_LIMIT = 5000


@dataclass(frozen=True)
class Deployment:
    """One Railway deployment of one service."""

    id: str
    service: str
    status: str
    created_at: float
    commit: str | None
    can_rollback: bool
    can_redeploy: bool
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "status": self.status,
            "created_at": self.created_at,
            "commit": self.commit,
            "can_rollback": self.can_rollback,
            "can_redeploy": self.can_redeploy,
            "url": self.url,
        }


@dataclass(frozen=True)
class LogLine:
    message: str
    timestamp: float
    severity: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class HttpLogLine:
    timestamp: float
    status: int
    path: str


@dataclass(frozen=True)
class Project:
    id: str
    services: dict[str, str]  # name -> id
    environments: dict[str, str]  # name -> id


class RailwayClient:
    """Typed calls over Railway GraphQL. Every method raises ApiError on failure."""

    def __init__(self, http: HttpClient, project_id: str) -> None:
        self.http = http
        self.project_id = project_id
        self._project: Project | None = None

    def _query(self, operation: str, query: str, variables: dict[str, Any], *, mutation: bool = False) -> Any:
        response = self.http.request(
            "POST",
            "",
            label=operation,
            json={"query": query, "variables": variables, "operationName": operation},
            idempotent=not mutation,
        )
        body = self.http.json_or_error(response, operation)
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            message = "; ".join(str(error.get("message", error)) for error in errors if isinstance(error, dict))
            raise self.http.error(operation, message or "GraphQL error")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise ApiError(f"{self.http.name}: {operation}: no data in the answer")
        return body["data"]

    def project(self) -> Project:
        """The project's services and environments by name (cached)."""
        if self._project is None:
            data = self._query("project", _PROJECT, {"id": self.project_id})["project"]
            if data is None:
                raise ConfigError("RAILWAY_PROJECT_ID does not name a project this token can read")
            self._project = Project(
                id=data["id"],
                services={edge["node"]["name"]: edge["node"]["id"] for edge in data["services"]["edges"]},
                environments={edge["node"]["name"]: edge["node"]["id"] for edge in data["environments"]["edges"]},
            )
        return self._project

    def environment_id(self, environment: str) -> str:
        environments = self.project().environments
        if environment not in environments:
            raise ConfigError(f"Railway has no environment named {environment!r} (known: {', '.join(environments)})")
        return environments[environment]

    def service_id(self, service: str) -> str:
        services = self.project().services
        if service not in services:
            raise ConfigError(f"Railway has no service named {service!r} (known: {', '.join(services)})")
        return services[service]

    def deployments(self, environment: str, service: str, *, first: int = 20) -> list[Deployment]:
        """The service's deployments in the environment, newest first."""
        variables = {
            "input": {
                "projectId": self.project_id,
                "environmentId": self.environment_id(environment),
                "serviceId": self.service_id(service),
            },
            "first": first,
        }
        edges = self._query("deployments", _DEPLOYMENTS, variables)["deployments"]["edges"]
        found = [_deployment(edge["node"], service) for edge in edges]
        return sorted(found, key=lambda deployment: deployment.created_at, reverse=True)

    def deployment(self, deployment_id: str) -> Deployment:
        data = self._query("deployment", _DEPLOYMENT, {"id": deployment_id})["deployment"]
        if data is None:
            raise ApiError(f"{self.http.name}: deployment {deployment_id} not found")
        names = {service_id: name for name, service_id in self.project().services.items()}
        return _deployment(data, names.get(str(data.get("serviceId")), "?"))

    def deployment_logs(self, deployment_id: str, *, start: str, end: str) -> list[LogLine]:
        """Log lines of one deployment between two ISO timestamps."""
        variables = {"deploymentId": deployment_id, "startDate": start, "endDate": end, "limit": LOG_LIMIT}
        rows = self._query("deploymentLogs", _DEPLOYMENT_LOGS, variables)["deploymentLogs"]
        return [
            LogLine(
                message=str(row.get("message", "")),
                timestamp=parse_timestamp(row["timestamp"]),
                severity=str(row.get("severity") or ""),
                attributes={str(a["key"]): str(a["value"]) for a in row.get("attributes") or []},
            )
            for row in rows
        ]

    def http_logs(self, deployment_id: str, *, start: str, end: str) -> list[HttpLogLine]:
        """HTTP requests answered by one deployment between two ISO timestamps."""
        variables = {"deploymentId": deployment_id, "startDate": start, "endDate": end, "limit": LOG_LIMIT}
        rows = self._query("httpLogs", _HTTP_LOGS, variables)["httpLogs"]
        return [
            HttpLogLine(timestamp=parse_timestamp(row["timestamp"]), status=int(row["httpStatus"]), path=row["path"])
            for row in rows
        ]

    def rollback(self, deployment_id: str) -> None:
        """Serve this (older) deployment's image and variables again, without a build."""
        if not self._query("deploymentRollback", _ROLLBACK, {"id": deployment_id}, mutation=True)["deploymentRollback"]:
            raise ApiError(f"{self.http.name}: deploymentRollback {deployment_id} was refused")

    def redeploy(self, deployment_id: str, *, use_previous_image: bool) -> str:
        """Deploy this deployment's source again; returns the new deployment's id."""
        variables = {"id": deployment_id, "usePreviousImageTag": use_previous_image}
        data = self._query("deploymentRedeploy", _REDEPLOY, variables, mutation=True)["deploymentRedeploy"]
        return str(data["id"])


def _deployment(node: dict[str, Any], service: str) -> Deployment:
    meta = node.get("meta") or {}
    commit = meta.get("commitHash") if isinstance(meta, dict) else None
    return Deployment(
        id=str(node["id"]),
        service=service,
        status=str(node["status"]),
        created_at=parse_timestamp(node["createdAt"]),
        commit=str(commit) if commit else None,
        can_rollback=bool(node.get("canRollback")),
        can_redeploy=bool(node.get("canRedeploy")),
        url=node.get("url"),
    )
