"""The fault proxy seen from the stack that runs it: the targets it fronts, and its admin API
(faults, counters, holds) over HTTP; `DevStack` inherits these, and tests and chaos call them."""

from __future__ import annotations

from typing import Any

import httpx

from charters.settings import Settings
from charters_dev.faultproxy.gate import HoldRule


def proxy_targets(s: Settings) -> list[dict[str, Any]]:
    """One listening port per upstream the worker reaches: moto, the calendar, SCC."""
    return [
        {
            "name": "aws",
            "listen_port": s.proxy_aws_port,
            "aws": True,
            "upstream": f"http://127.0.0.1:{s.moto_port}",
            "spec": s.faults_aws,
        },
        {
            "name": "calendar",
            "listen_port": s.proxy_calendar_port,
            "upstream": s.calendar_url,
            "spec": s.faults_calendar,
        },
        {
            "name": "scc",
            "listen_port": s.proxy_scc_port,
            "upstream": f"http://127.0.0.1:{s.scc_port}",
            "spec": s.faults_scc,
        },
    ]


class FaultProxyControls:
    """Needs `settings` (the stack's, with the proxy ports it chose)."""

    settings: Settings

    def proxy_url(self, target: str) -> str:
        """The admin API of the proxy in front of `target` (aws, calendar or scc)."""
        port = next(t["listen_port"] for t in proxy_targets(self.settings) if t["name"] == target)
        return f"http://127.0.0.1:{port}/__faults"

    def set_faults(self, target: str, spec: str) -> dict[str, Any]:
        """Changes a proxy's faults at run time; returns its status with counters."""
        answer = httpx.put(self.proxy_url(target), json=spec, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def reset_fault_counters(self, target: str) -> dict[str, Any]:
        answer = httpx.delete(self.proxy_url(target), timeout=10)
        answer.raise_for_status()
        return dict(answer.json()["counters"])

    def fault_counters(self, target: str) -> dict[str, Any]:
        return dict(httpx.get(self.proxy_url(target), timeout=10).json()["counters"])

    def hold(self, target: str, rule: HoldRule) -> None:
        """Arms a hold in a proxy (faultproxy/gate.py): matching requests wait until released."""
        answer = httpx.put(self.proxy_url(target) + "/holds", json=rule.model_dump(), timeout=10)
        answer.raise_for_status()

    def holds(self, target: str) -> dict[str, Any]:
        """Every hold of a proxy and its counters (arrived, waiting, forwarded, dropped)."""
        return dict(httpx.get(self.proxy_url(target) + "/holds", timeout=10).json())

    def release(self, target: str, name: str) -> None:
        httpx.delete(f"{self.proxy_url(target)}/holds/{name}", timeout=10).raise_for_status()
