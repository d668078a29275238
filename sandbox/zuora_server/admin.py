"""The fake server's admin surface from Python: tenants, fault switches, counters, edits "in Zuora"."""

from __future__ import annotations

from typing import Any

import requests


class FakeZuoraAdmin:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, f"{self.url}/__admin/{path}", json=body, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"fake Zuora admin {method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    def healthy(self) -> bool:
        return bool(self._call("GET", "health")["ok"])

    def add_tenant(self, name: str, client_id: str, client_secret: str, *, workflows: int = 0, max_tasks: int = 40,
                   seed: int = 1, snake_case: bool = False, **settings: Any) -> dict[str, Any]:
        """A tenant; settings: without_active_version (count), quota ([[limit, seconds], ...]), entities
        (list of entity ids; more than one makes Zuora-Entity-Ids required), workflow_access (bool)."""
        return self._call("POST", "tenants", {"name": name, "client_id": client_id, "client_secret": client_secret,
                                              "workflows": workflows, "max_tasks": max_tasks, "seed": seed,
                                              "snake_case": snake_case, **settings})

    def settings(self, tenant: str, **settings: Any) -> dict[str, Any]:
        """Change a tenant's entities, workflow_access or quota (new windows, counted from zero)."""
        return self._call("POST", f"tenants/{tenant}/settings", settings)

    def faults(self, tenant: str, *rules: dict[str, Any], **settings: Any) -> dict[str, Any]:
        """Add fault rules (see sandbox.zuora_server.faults) and set latency_ms, token_ttl, revoke_tokens_after."""
        return self._call("POST", f"tenants/{tenant}/faults", {"rules": list(rules), **settings})

    def clear_faults(self, tenant: str) -> None:
        self._call("DELETE", f"tenants/{tenant}/faults")

    def revoke_tokens(self, tenant: str) -> None:
        self._call("DELETE", f"tenants/{tenant}/tokens")

    def stats(self, tenant: str) -> dict[str, Any]:
        return self._call("GET", f"tenants/{tenant}/stats")

    def reset_stats(self, tenant: str) -> None:
        self._call("DELETE", f"tenants/{tenant}/stats")

    def workflows(self, tenant: str) -> list[dict[str, Any]]:
        return self._call("GET", f"tenants/{tenant}/workflows")

    def add_workflows(self, tenant: str, count: int, *, seed: int = 7, active: bool = True) -> dict[str, Any]:
        return self._call("POST", f"tenants/{tenant}/workflows", {"count": count, "seed": seed, "active": active})

    def deactivate_workflow(self, tenant: str, workflow_id: int) -> None:
        """The workflow's active version is deactivated: listed without one, its export answers 404."""
        self._call("POST", f"tenants/{tenant}/workflows/{workflow_id}/deactivate")

    def delete_workflow(self, tenant: str, workflow_id: int) -> None:
        self._call("DELETE", f"tenants/{tenant}/workflows/{workflow_id}")

    def change_workflow(self, tenant: str, workflow_id: int, *, new_version: bool = False) -> None:
        self._call("POST", f"tenants/{tenant}/workflows/{workflow_id}/change", {"new_version": new_version})
