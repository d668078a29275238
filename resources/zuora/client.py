"""A client for one Zuora tenant's Workflow API, polite and honest about failures.

- OAuth 2.0 client credentials; the token is cached per (base URL, client id) until a margin
  before `expires_in` runs out, shared by every thread, and fetched once more on a 401 (the
  token endpoint is limited per IP address: never a token per call).
- Every call has connect and read timeouts. 5xx answers and connection errors are retried with
  exponential backoff and jitter, bounded in count and in total time (urllib3's Retry); every
  retry waits for its turn in the tenant's request pace like a first try.
- Zuora's quota is read from the `RateLimit-*` headers of every answer (resources.zuora.quota):
  no request starts when nothing remains. A 429 waits for its `Retry-After`, or without one for
  `RateLimit-Reset`, only when that fits the call's time budget; otherwise the call raises
  `QuotaExhausted` with the moment the quota returns, instead of retrying into it.
- At most `max_concurrency` requests are in flight and at most `requests_per_minute` start per
  minute, for this tenant, whatever the number of threads.
- A customer of a multi-entity tenant names its entity: sent as `Zuora-Entity-Ids`.
- Failures are `ZuoraError`s whose one-line message names the call, Zuora's own reason and the
  `Zuora-Request-Id` that Zuora's support asks for, never the client secret.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from resources.fleet.registry.customers import base_url as checked_base_url
from resources.zuora.errors import (
    QuotaExhausted,
    RequestBudgetSpent,
    ZuoraAuthError,
    ZuoraError,
    ZuoraForbidden,
    ZuoraNotFound,
)
from resources.zuora.pacing import RatePacer
from resources.zuora.quota import QuotaGauge
from resources.zuora.records import Page, error_message, parse_page

__all__ = ["QuotaExhausted", "RequestBudgetSpent", "ZuoraAuthError", "ZuoraClient", "ZuoraError", "ZuoraForbidden",
           "ZuoraNotFound"]

PAGE_LENGTH = 50  # Zuora's maximum for GET /workflows
MAX_PAGES = 10_000  # 500,000 workflows: beyond that the listing is looping, not long
TOKEN_MARGIN = 300.0  # seconds before expiry a cached token is replaced (Zuora's sample skew)
DEFAULT_EXPIRES_IN = 3599.0


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 60.0


@dataclass(frozen=True)
class RetrySettings:
    retries: int = 5  # after the first try, for 429, 5xx and connection errors
    backoff: float = 0.5  # seconds before the second retry, doubling after
    backoff_max: float = 15.0
    jitter: float = 0.5  # up to this many seconds added at random to each backoff
    retry_after_max: int = 60  # a longer Retry-After is cut to this
    budget: float = 180.0  # seconds one call may spend retrying (or waiting for a quota reset) before it gives up


class PacedRetry(Retry):
    """urllib3's Retry, plus a total time budget, and a place in the tenant's pace for every retry."""

    def __init__(self, *args: Any, pacer: RatePacer | None = None, budget: float | None = None,
                 first_failure: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pacer = pacer
        self.budget = budget
        self.first_failure = first_failure

    def new(self, **kwargs: Any) -> PacedRetry:
        # new() is called once per failure: the first one starts the budget's clock
        kwargs.setdefault("pacer", self.pacer)
        kwargs.setdefault("budget", self.budget)
        kwargs.setdefault("first_failure", self.first_failure or time.monotonic())
        return super().new(**kwargs)

    def is_exhausted(self) -> bool:
        over_budget = (self.budget is not None and self.first_failure is not None
                       and time.monotonic() - self.first_failure > self.budget)
        return over_budget or super().is_exhausted()

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        if self.pacer is not None:
            self.pacer.wait()


class TokenCache:
    """Access tokens by (base URL, client id), shared by the threads of one process."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, str], fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token, or a new one from `fetch()` -> (token, expires_in seconds)."""
        with self._lock(key):
            cached = self._tokens.get(key)
            if cached and time.monotonic() < cached[1]:
                return cached[0]
            token, expires_in = fetch()
            margin = min(TOKEN_MARGIN, expires_in * 0.1)
            self._tokens[key] = (token, time.monotonic() + expires_in - margin)
            return token

    def invalidate(self, key: tuple[str, str], token: str) -> None:
        """Forget `token` after a 401, unless another thread already replaced it."""
        with self._lock(key):
            if self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


TOKENS = TokenCache()


class ZuoraClient:
    """The Workflow API of one tenant. Use as a context manager, or call close()."""

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, *, max_concurrency: int = 4,
        requests_per_minute: int = 1500, timeouts: Timeouts | None = None, retry: RetrySettings | None = None,
        tokens: TokenCache | None = None, page_length: int = PAGE_LENGTH, max_pages: int = MAX_PAGES,
        entity_id: str | None = None, gauge: QuotaGauge | None = None,
    ) -> None:
        self.base_url = checked_base_url(base_url)
        self.client_id = client_id
        self._secret = client_secret
        self.timeouts = timeouts or Timeouts()
        self.tokens = TOKENS if tokens is None else tokens
        self.page_length = page_length
        self.max_pages = max_pages
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.gauge = gauge or QuotaGauge()
        self._forbidden: ZuoraForbidden | None = None
        self.retry = retry or RetrySettings()
        self._pacer = RatePacer(requests_per_minute)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="zuora-export")
        self._session = self._new_session(self.retry, max_concurrency)
        if entity_id:
            self._session.headers["Zuora-Entity-Ids"] = entity_id

    def _new_session(self, settings: RetrySettings, max_concurrency: int) -> requests.Session:
        retry = PacedRetry(
            total=settings.retries, connect=settings.retries, read=settings.retries, status=settings.retries,
            other=0, allowed_methods=frozenset({"GET", "POST"}),  # our one POST (a token) is safe to repeat
            status_forcelist=frozenset({500, 502, 503, 504}), backoff_factor=settings.backoff,  # 429: _send
            backoff_max=settings.backoff_max, backoff_jitter=settings.jitter,
            retry_after_max=settings.retry_after_max, respect_retry_after_header=True, raise_on_status=False,
            pacer=self._pacer, budget=settings.budget,
        )
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": "fleetops"})
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max_concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def __enter__(self) -> ZuoraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()

    def authenticate(self) -> None:
        """Fetch (or reuse) the access token: ZuoraAuthError when Zuora refuses the credentials."""
        self.tokens.get(self._token_key, self._fetch_token)

    # -- the Workflow API ------------------------------------------------------------------
    def workflow_pages(self) -> Iterator[Page]:
        """Every page of `GET /workflows`, until Zuora names no next page or a page is empty."""
        page = 1
        while True:
            body = self._get_json("list", f"/workflows?page={page}&page_length={self.page_length}")
            result = parse_page(body)
            yield result
            if not result.next_page or not result.items:
                return
            page = self._next_page_number(result.next_page, page)
            if page > self.max_pages:
                raise ZuoraError(f"GET /workflows: more than {self.max_pages} pages, stopped (Zuora keeps paging)")

    @staticmethod
    def _next_page_number(next_page: str, current: int) -> int:
        """The page after `current`: the `page` named in Zuora's next_page URL when it is further on.

        The URL itself is not followed: the request goes to the registered base URL, so a token
        is never sent to a host named in a response.
        """
        named = parse_qs(urlsplit(next_page).query).get("page", [""])[0]
        return int(named) if named.isdigit() and int(named) > current else current + 1

    def exists(self, workflow_id: str) -> bool:
        """`GET /workflows/{id}`: False only when Zuora answers 404 (the workflow is gone for certain)."""
        try:
            self._get_json("get", f"/workflows/{workflow_id}")
        except ZuoraNotFound:
            return False
        return True

    def export(self, workflow_id: str) -> dict[str, Any]:
        """`GET /workflows/{id}/export`: the active version's workflow, tasks and linkages.

        After one 403 the client lacks the permission for every export: the rest fail at once.
        """
        if self._forbidden is not None:
            raise self._forbidden
        try:
            body = self._get_json("export", f"/workflows/{workflow_id}/export")
        except ZuoraForbidden as exc:
            self._forbidden = exc
            raise
        if not isinstance(body, dict):
            raise ZuoraError(f"GET /workflows/{workflow_id}/export: the export is not a JSON object")
        return body

    def submit_export(self, workflow_id: str) -> Future[dict[str, Any]]:
        """The export, downloaded on one of this tenant's `max_concurrency` threads."""
        return self._pool.submit(self.export, workflow_id)

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def _token_key(self) -> tuple[str, str]:
        return (self.base_url, self.client_id)

    def _count(self, kind: str) -> None:
        with self._calls_lock:
            self.calls[kind] += 1

    def _get_json(self, kind: str, path: str) -> Any:
        token = self.tokens.get(self._token_key, self._fetch_token)
        response = self._send(kind, "GET", path, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:  # expired or revoked early: one new token, one more try
            self.tokens.invalidate(self._token_key, token)
            token = self.tokens.get(self._token_key, self._fetch_token)
            response = self._send(kind, "GET", path, headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401:
                raise ZuoraAuthError(self._failure("GET", path, response, "refused a fresh access token"))
        return self._json("GET", path, response)

    def _fetch_token(self) -> tuple[str, float]:
        form = {"client_id": self.client_id, "client_secret": self._secret, "grant_type": "client_credentials"}
        response = self._send("token", "POST", "/oauth/token", data=form)
        if response.status_code in (400, 401, 403):
            raise ZuoraAuthError(self._failure("POST", "/oauth/token", response,
                                               f"refused the client credentials of client id {self.client_id}"))
        body = self._json("POST", "/oauth/token", response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ZuoraAuthError("POST /oauth/token: Zuora's answer has no access_token")
        expires_in = body.get("expires_in")
        return token, float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else (
            DEFAULT_EXPIRES_IN)

    def _send(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; an API call waits for the tenant's quota and is tried again after a 429 while that
        fits the call's budget (a token call does not count against the API quota)."""
        deadline = time.monotonic() + self.retry.budget
        for attempt in range(self.retry.retries + 1):
            if kind != "token":
                self.gauge.acquire(f"{method} {path}", max_wait=max(0.0, deadline - time.monotonic()))
            try:
                response = self._request(kind, method, path, **kwargs)
            except BaseException:
                if kind != "token":
                    self.gauge.release(None)
                raise
            if kind == "token":
                return response
            if response.status_code == 429 and attempt < self.retry.retries:
                self.gauge.refused(response.headers)
                continue
            self.gauge.release(response.headers)
            return response
        raise AssertionError("unreachable: the last attempt returns its response")

    def _request(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        with self._slots:
            self._pacer.wait()
            self._count(kind)
            try:
                return self._session.request(method, self.base_url + path,
                                             timeout=(self.timeouts.connect, self.timeouts.read), **kwargs)
            except requests.RequestException as exc:
                raise ZuoraError(f"{method} {path}: cannot reach Zuora at {self.base_url} ({_reason(exc)})",
                                 transient=True) from None

    def _json(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if status == 403:
            raise ZuoraForbidden(self._failure(method, path, response, "refused the permission"))
        if status == 404:
            raise ZuoraNotFound(self._failure(method, path, response, "found nothing"))
        if status != 200:
            raise ZuoraError(self._failure(method, path, response, "failed"), transient=status == 429 or status >= 500)
        try:
            return response.json()
        except ValueError as exc:
            raise ZuoraError(f"{method} {path}: Zuora answered with malformed JSON "
                             f"(HTTP 200, {len(response.content)} bytes: {exc})") from None

    def _failure(self, method: str, path: str, response: requests.Response, what: str) -> str:
        retries = getattr(response.raw, "retries", None)
        after = f" after {len(retries.history)} retries" if retries is not None and retries.history else ""
        message = error_message(response.content)
        if self._secret:
            message = message.replace(self._secret, "***")
        request_id = response.headers.get("Zuora-Request-Id")
        support = f" (Zuora-Request-Id {request_id})" if request_id else ""
        return f"{method} {path}: Zuora {what}{after}: HTTP {response.status_code} {message}{support}"


def _reason(exc: requests.RequestException) -> str:
    """A transport error in a few words, e.g. "Connection refused" or "read timeout"."""
    cause = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError carries the last attempt's error
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(cause))
    if found:  # checked first: urllib3's NewConnectionError is also a ConnectTimeoutError
        return found.group(1).strip()
    if isinstance(exc, requests.ReadTimeout) or isinstance(cause, urllib3.exceptions.ReadTimeoutError):
        return "read timeout"
    if isinstance(exc, requests.ConnectTimeout) or isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
        return "connect timeout"
    return type(cause).__name__
