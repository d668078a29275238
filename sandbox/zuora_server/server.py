"""A local Zuora-compatible Workflow API over real HTTP, for tests, benchmarks and the demo.

It speaks the calls fleetops makes, with Zuora's paths, field names and error shapes:
`POST /oauth/token` (client credentials; the credentials select the tenant), `GET /workflows`
(`page`, `page_length` at most 50, `pagination.next_page` a full URL on every full page,
absent on the last one that is not full), `GET /workflows/{id}` and `GET /workflows/{id}/export`. Like Zuora it counts a
tenant's requests in its quota windows (`RateLimit-*` headers on every answer, 429 without
`Retry-After` once a window is used up), requires `Zuora-Entity-Ids` from a client of a
multi-entity tenant, answers 403 to a client without workflow permission and 404 to the
export of a workflow without an active version, and puts a `Zuora-Request-Id` on every
answer. Everything under
`/__admin/` is the server's own control surface (tenants, fault switches, counters), which
real Zuora does not have.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.zuora_server.faults import LISTING_KINDS, Faults, Rule
from sandbox.zuora_server.quota import PRODUCTION, Quota
from sandbox.zuora_server.tenant import FakeWorkflow, generate
from sandbox.zuora_server.traffic import Traffic

MAX_PAGE_LENGTH = 50
EXPORT_PATH = re.compile(r"^/workflows/(\d+)/export$")
WORKFLOW_PATH = re.compile(r"^/workflows/(\d+)$")
ADMIN_PATH = re.compile(r"^/__admin/tenants(?:/([^/]+))?(?:/(.*))?$")


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class FakeTenant:
    name: str
    client_id: str
    client_secret: str
    snake_case: bool = False
    workflows: dict[int, FakeWorkflow] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    traffic: Traffic = field(default_factory=Traffic)
    quota: Quota = field(default_factory=Quota)
    entities: list[str] = field(default_factory=list)  # more than one: Zuora-Entity-Ids is required
    workflow_access: bool = True  # False: the OAuth client lacks the permission to export
    list_requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic), kept when expired
    next_version_id: int = 900_000_000

    def add_workflows(self, count: int, *, max_tasks: int = 40, seed: int = 1, active: bool = True,
                      first: bool = False) -> None:
        """New workflows after the others (or, `first`, one before them all: ids sort the listing)."""
        start = min(self.workflows, default=1010) - 1 if first else max(self.workflows, default=990) + 10
        for workflow in generate(1 if first else count, max_tasks=max_tasks, seed=seed, first_id=start,
                                 active=active):
            self.workflows[workflow.id] = workflow

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (call under the tenant's lock)."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "client_id": self.client_id, "workflows": len(self.workflows),
                "tasks": sum(len(w.tasks) for w in self.workflows.values())}


class FakeZuora:
    """Every tenant of the server, found by name (admin) or by client id and token (API)."""

    def __init__(self) -> None:
        self.tenants: dict[str, FakeTenant] = {}
        self.lock = threading.Lock()

    def add_tenant(self, name: str, client_id: str, client_secret: str, *, workflows: int = 0, max_tasks: int = 40,
                   seed: int = 1, snake_case: bool = False, without_active_version: int = 0,
                   quota: list[list[float]] | None = None, entities: list[str] | None = None,
                   workflow_access: bool = True) -> FakeTenant:
        """A tenant; `quota` lists its windows as [limit, seconds] (default: Zuora production's)."""
        tenant = FakeTenant(name=name, client_id=client_id, client_secret=client_secret, snake_case=snake_case,
                            quota=Quota(quota or PRODUCTION), entities=list(entities or []),
                            workflow_access=workflow_access)
        tenant.add_workflows(workflows, max_tasks=max_tasks, seed=seed)
        tenant.add_workflows(without_active_version, max_tasks=max_tasks, seed=seed + 1, active=False)
        with self.lock:
            if name in self.tenants or any(t.client_id == client_id for t in self.tenants.values()):
                raise AdminError(409, f"tenant {name} or client id {client_id} exists")
            self.tenants[name] = tenant
        return tenant

    def by_credentials(self, client_id: str, client_secret: str) -> FakeTenant | None:
        with self.lock:
            for tenant in self.tenants.values():
                if tenant.client_id == client_id and secrets.compare_digest(tenant.client_secret, client_secret):
                    return tenant
        return None

    def by_token(self, token: str) -> tuple[FakeTenant | None, bool]:
        """The tenant that issued `token` (None if none did), and whether the token still works."""
        with self.lock:
            tenants = list(self.tenants.values())
        for tenant in tenants:
            with tenant.lock:
                expiry = tenant.tokens.get(token)
                if expiry is not None:
                    return tenant, time.monotonic() < expiry
        return None, False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Zuora's gateway
    disable_nagle_algorithm = True  # headers and body leave at once, no delayed-ACK stall per answer
    server: ZuoraFakeServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the counters tell the story
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if url.path.startswith("/__admin/"):
            self._admin(method, url.path, body)
        elif method == "POST" and url.path == "/oauth/token":
            self._token(body)
        elif method == "GET" and (url.path == "/workflows" or EXPORT_PATH.match(url.path)
                                  or WORKFLOW_PATH.match(url.path)):
            self._api(url.path, parse_qs(url.query))
        else:
            self._send(404, {"errors": [{"code": "not_found", "status": 404, "title": f"no route {url.path}"}]})

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, *, raw: bytes | None = None,
              tenant: FakeTenant | None = None) -> None:
        payload = raw if raw is not None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Zuora-Request-Id", secrets.token_hex(8))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if tenant is not None:  # counted before the body goes: a client holding the answer finds it counted
            tenant.traffic.end(status)
        self.wfile.write(payload)

    def _fault(self, tenant: FakeTenant, target: str, headers: dict[str, str], page: int | None = None,
               workflow: int | None = None) -> Rule | None:
        """Answer with the tenant's matching fault, if any; the rule when the request is answered, or a
        listing rule for `_list` to apply."""
        with tenant.lock:
            rule: Rule | None = tenant.faults.take(target, page, workflow)
        if rule is None or rule.kind in LISTING_KINDS:
            return rule
        if rule.kind == "429":
            after = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            self._send(429, {"message": "Too many requests"}, {**headers, **after}, tenant=tenant)
        elif rule.kind in ("500", "503"):
            status = int(rule.kind)
            self._send(status, {"errors": [{"code": "server_error", "status": status, "title": "Internal error"}]}
                       if status == 500 else b"Service Temporarily Unavailable", tenant=tenant)
        elif rule.kind == "401":
            self._send(401, {"message": "Authentication error"}, {"WWW-Authenticate": "Bearer realm=Zuora API"},
                       tenant=tenant)
        elif rule.kind == "403":
            self._forbidden(tenant, headers)
        else:
            self._send(200, None, raw=b'{"data": [{"id": 1, "name": "cut off', tenant=tenant)
        return rule

    def _forbidden(self, tenant: FakeTenant, headers: dict[str, str]) -> None:
        self._send(403, {"errors": [{"code": "forbidden", "status": 403,
                                     "title": "Unauthorized: the client has no Workflow Manage Access"}]},
                   headers, tenant=tenant)

    def _wait(self, tenant: FakeTenant) -> None:
        if tenant.faults.latency_ms > 0:
            time.sleep(tenant.faults.latency_ms / 1000)

    # -- Zuora's API ---------------------------------------------------------------------------
    def _token(self, body: bytes) -> None:
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        tenant = self.server.zuora.by_credentials(form.get("client_id", ""), form.get("client_secret", ""))
        if tenant is None or form.get("grant_type") != "client_credentials":
            self._send(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
            return
        tenant.traffic.begin("token")
        self._wait(tenant)
        if self._fault(tenant, "token", {}):
            return
        token = secrets.token_hex(16)
        with tenant.lock:
            ttl = tenant.faults.token_ttl
            tenant.tokens[token] = time.monotonic() + ttl
        self._send(200, {"access_token": token, "expires_in": ttl, "token_type": "bearer", "jti": token,
                         "scope": f"user.{tenant.client_id} service.workflow.read tenant.{tenant.name}"},
                   tenant=tenant)

    def _api(self, path: str, query: dict[str, list[str]]) -> None:
        match = EXPORT_PATH.match(path) or WORKFLOW_PATH.match(path)
        kind = "list" if not match else "export" if path.endswith("/export") else "get"
        auth = self.headers.get("Authorization", "")
        tenant, valid = self.server.zuora.by_token(auth.removeprefix("Bearer ")) if auth.startswith(
            "Bearer ") else (None, False)
        if tenant is not None:
            tenant.traffic.begin(kind)
        if not valid:
            self._send(401, {"message": "Authentication error"}, {"WWW-Authenticate": "Bearer realm=Zuora API"},
                       tenant=tenant)
            return
        self._wait(tenant)
        self._count_towards_revocation(tenant)
        allowed, headers = tenant.quota.take()
        if not allowed:  # as Zuora's gateway: the RateLimit-* headers tell when, no Retry-After
            self._send(429, {"message": "API rate limit exceeded"}, headers, tenant=tenant)
            return
        entity = self.headers.get("Zuora-Entity-Ids")
        if (len(tenant.entities) > 1 or entity) and entity not in tenant.entities:
            self._send(400, {"errors": [{"code": "invalid", "status": 400, "title": (
                f"Zuora-Entity-Ids {entity!r} is not an entity of this tenant" if entity else
                "Zuora-Entity-Ids is required: the client has access to several entities")}]}, headers, tenant=tenant)
            return
        page = _int(query.get("page", ["1"])[0], 1)
        workflow_id = int(match.group(1)) if match else None
        rule = self._fault(tenant, kind, headers, page=page if kind == "list" else None, workflow=workflow_id)
        if rule is not None and rule.kind not in LISTING_KINDS:
            return
        if kind == "export":
            self._export(tenant, workflow_id, headers)
        elif kind == "get":
            self._workflow(tenant, workflow_id, headers)
        else:
            self._list(tenant, page, _int(query.get("page_length", ["20"])[0], 20), headers, rule)

    def _count_towards_revocation(self, tenant: FakeTenant) -> None:
        with tenant.lock:
            if tenant.faults.revoke_tokens_after is None:
                return
            tenant.faults.revoke_tokens_after -= 1
            if tenant.faults.revoke_tokens_after <= 0:
                tenant.faults.revoke_tokens_after = None
                tenant.revoke_tokens()

    def _list(self, tenant: FakeTenant, page: int, page_length: int, headers: dict[str, str],
              rule: Rule | None) -> None:
        if not 1 <= page_length <= MAX_PAGE_LENGTH or page < 1:
            self._send(400, {"errors": [{"code": "invalid", "status": 400,
                                         "title": f"page_length must be between 1 and {MAX_PAGE_LENGTH}"}]},
                       headers, tenant=tenant)
            return
        kind = rule.kind if rule else None
        with tenant.lock:
            if kind == "insert":
                tenant.add_workflows(1, max_tasks=3, seed=page, first=True)
            elif kind == "delete" and tenant.workflows:
                del tenant.workflows[min(tenant.workflows)]
            tenant.list_requests += 1
            ordered = [tenant.workflows[key] for key in sorted(tenant.workflows)]
            if tenant.faults.shuffle_listing:
                random.Random(tenant.list_requests).shuffle(ordered)
            start = (page - 2 if kind == "repeat" and page > 1 else page - 1) * page_length
            items = [w.listing(tenant.snake_case) for w in ordered[start:start + page_length]]
        pagination: dict[str, Any] = {"page": page, "page_length": page_length}
        if len(items) == page_length and kind != "no_next":  # a full page always names the next, maybe empty one
            host = self.headers.get("Host", "127.0.0.1")
            pagination["next_page"] = f"http://{host}/workflows?page={page + 1}&page_length={page_length}"
        self._send(200, {"data": items, "pagination": pagination}, headers, tenant=tenant)

    def _not_found(self, tenant: FakeTenant, title: str, headers: dict[str, str]) -> None:
        self._send(404, {"errors": [{"code": "not_found", "status": 404, "title": title}]}, headers, tenant=tenant)

    def _workflow(self, tenant: FakeTenant, workflow_id: int, headers: dict[str, str]) -> None:
        with tenant.lock:
            workflow = tenant.workflows.get(workflow_id)
            listing = workflow.listing(tenant.snake_case) if workflow else None
        if listing is None:
            self._not_found(tenant, f"Workflow {workflow_id} not found", headers)
            return
        self._send(200, {**listing, "priority": "Medium"}, headers, tenant=tenant)

    def _export(self, tenant: FakeTenant, workflow_id: int, headers: dict[str, str]) -> None:
        if not tenant.workflow_access:
            self._forbidden(tenant, headers)
            return
        with tenant.lock:
            workflow = tenant.workflows.get(workflow_id)
            export = workflow.export() if workflow else None
        if workflow is None:
            self._not_found(tenant, f"Workflow {workflow_id} not found", headers)
        elif export is None:
            self._not_found(tenant, "Workflow version is not found", headers)
        else:
            self._send(200, None, headers, raw=export, tenant=tenant)

    # -- the admin surface ---------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: bytes) -> None:
        try:
            request = json.loads(body) if body else {}
            self._send(200, self._admin_action(method, path, request))
        except AdminError as exc:
            self._send(exc.status, {"error": str(exc)})
        except (ValueError, TypeError, KeyError) as exc:
            self._send(400, {"error": f"{type(exc).__name__}: {exc}"})

    def _admin_action(self, method: str, path: str, request: dict[str, Any]) -> Any:
        zuora = self.server.zuora
        if path == "/__admin/health":
            return {"ok": True, "tenants": len(zuora.tenants)}
        match = ADMIN_PATH.match(path)
        if not match:
            raise AdminError(404, f"no admin route {path}")
        name, rest = match.group(1), match.group(2) or ""
        if name is None:
            if method == "POST":
                return zuora.add_tenant(**request).summary()
            return [tenant.summary() for tenant in zuora.tenants.values()]
        tenant = zuora.tenants.get(name)
        if tenant is None:
            raise AdminError(404, f"no tenant {name}")
        return self._tenant_action(tenant, method, rest, request)

    def _tenant_action(self, tenant: FakeTenant, method: str, rest: str, request: dict[str, Any]) -> Any:
        now = datetime.now(UTC)
        with tenant.lock:
            if rest == "faults":
                if method == "DELETE":
                    tenant.faults = Faults()
                else:
                    tenant.faults.update(request)
                return {"rules": len(tenant.faults.rules), "latency_ms": tenant.faults.latency_ms}
            if rest == "tokens" and method == "DELETE":
                tenant.revoke_tokens()
                return {"revoked": True}
            if rest == "stats":
                if method == "DELETE":
                    tenant.traffic.reset()
                return tenant.traffic.report()
            if rest == "workflows" and method == "POST":
                tenant.add_workflows(int(request.get("count", 1)), max_tasks=int(request.get("max_tasks", 40)),
                                     seed=int(request.get("seed", 7)), active=bool(request.get("active", True)))
                return tenant.summary()
            if rest == "settings":
                for name in ("entities", "workflow_access"):
                    if name in request:
                        setattr(tenant, name, request[name])
                if "quota" in request:
                    tenant.quota = Quota(request["quota"])
                return {"entities": tenant.entities, "workflow_access": tenant.workflow_access}
            if rest == "workflows":
                return [{"id": w.id, "name": w.name, "updated_at": w.updated_at.isoformat(),
                         "version_id": w.version_id, "tasks": [t["id"] for t in w.tasks]}
                        for w in sorted(tenant.workflows.values(), key=lambda w: w.id)]
            found = re.fullmatch(r"workflows/(\d+)(/change|/deactivate)?", rest)
            if found and int(found.group(1)) in tenant.workflows:
                workflow_id = int(found.group(1))
                if method == "DELETE":
                    del tenant.workflows[workflow_id]
                    return {"deleted": workflow_id}
                if found.group(2) == "/deactivate":
                    tenant.workflows[workflow_id].active = False
                    return {"deactivated": workflow_id}
                if found.group(2):
                    new_version = None
                    if request.get("new_version"):
                        tenant.next_version_id += 1
                        new_version = tenant.next_version_id
                    tenant.workflows[workflow_id].change(now, new_version)
                    return {"changed": workflow_id}
        raise AdminError(404, f"no admin action {method} {rest} on tenant {tenant.name}")


def _int(value: str, default: int) -> int:
    return int(value) if value.lstrip("-").isdigit() else default


class ZuoraFakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), Handler)
        self.zuora = FakeZuora()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"
