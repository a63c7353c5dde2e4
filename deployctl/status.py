"""Deployments per service in one environment, with their versions."""

from __future__ import annotations

from deployctl.clients.railway import RailwayClient
from deployctl.clock import format_timestamp
from deployctl.report import Result
from deployctl.rollback import serving
from deployctl.verdict import Verdict


def environment_status(
    railway: RailwayClient, *, environment: str, services: tuple[str, ...], limit: int = 5
) -> Result:
    """The newest deployments of each service, and which one serves."""
    lines: list[str] = []
    data: dict[str, object] = {}
    verdicts = []
    for service in services:
        deployments = railway.deployments(environment, service, first=limit)
        live = serving(deployments)
        verdicts.append(Verdict.PASS if live else Verdict.FAIL)
        lines.append(f"{service}: serving {live.commit[:12] if live and live.commit else 'nothing'}")
        lines += [
            f"  {d.id} {d.status:<9} {(d.commit or '?')[:12]} {format_timestamp(d.created_at)}"
            for d in deployments[:limit]
        ]
        data[service] = {"serving": live.to_json() if live else None, "deployments": [d.to_json() for d in deployments]}
    verdict = Verdict.FAIL if Verdict.FAIL in verdicts else Verdict.PASS
    return Result("status", verdict, f"Railway {environment}", lines, {"services": data})
