"""Fake of the app's health contract (`GET /api/health[?deep=1]`), serving
whatever version the simulated world has live for the web service."""

from __future__ import annotations

from typing import Any

from .server import Request, Response
from .world import World

HEARTBEAT_LIMIT = 120.0


class FakeApp:
    def __init__(self, world: World, environment: str = "production") -> None:
        self.world = world
        self.environment = environment

    def __call__(self, request: Request) -> Response:
        if request.path != "/api/health":
            return Response(404, {"detail": "not found"})
        with self.world.lock:
            web = self.world.serving(self.environment, "web")
            if web is None or self.world.behaviours[web.commit].crash:
                return Response(502, {"status": "error", "message": "Application failed to respond"})
            if request.query.get("deep") != "1":
                return Response(200, {"ok": True, "version": web.commit})
            checks = self._deep()
        ok = all(check["ok"] for check in checks.values())
        return Response(200 if ok else 503, {"ok": ok, "version": web.commit, "checks": checks})

    def _deep(self) -> dict[str, Any]:
        checks: dict[str, Any] = {name: {"ok": True, "detail": "ok"} for name in ("database", "broker", "storage")}
        checks["inbox_backlog"] = {"ok": True, "count": 0, "detail": "ok"}
        for service, key in (("worker", "worker_heartbeat"), ("beat", "beat_heartbeat")):
            behaviour = self.world.behaviour_of(self.environment, service)
            if behaviour is None or behaviour.crash:
                checks[key] = {"ok": False, "age_seconds": None, "detail": f"no {service} heartbeat"}
                continue
            age = behaviour.worker_heartbeat_age if service == "worker" else behaviour.beat_heartbeat_age
            checks[key] = {"ok": age < HEARTBEAT_LIMIT, "age_seconds": age, "detail": f"{age:.0f} s ago"}
        return checks
