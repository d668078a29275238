"""Fault switches of a fake tenant, set over the admin endpoint by tests, benchmarks and the demo.

A rule answers matching requests with a fault, `count` times (-1: until cleared):

- `429`: Too Many Requests with `Retry-After: retry_after` (none when `retry_after` is null,
  as Zuora's gateway does: only the `RateLimit-*` headers);
- `500` / `503`: a server error (an outage is `503` on target `any`, count -1);
- `malformed`: HTTP 200 whose body is cut-off JSON;
- `401`: the token is refused as if it had expired;
- `403`: the OAuth client lacks the permission (Zuora's "Unauthorized");
- listings that move while they are read (target `list`, before page `page` is answered):
  `insert` puts a new workflow first (later items shift to the next page, one repeats),
  `delete` deletes the first workflow for good (one item shifts back and is missed),
  `repeat` answers page `page` with the items of the page before (a page past the end
  repeating one), `no_next` answers a full page without `next_page`.

`target` is `token`, `list`, `get` (one workflow), `export` or `any`; `page` narrows a list rule to one page and
`workflow` an export rule to one workflow. Besides rules, a tenant has `latency_ms` (every
answer waits that long), `token_ttl` (the `expires_in` of new tokens) and
`revoke_tokens_after` (after that many more API calls every token of the tenant stops working,
which is a token expiring mid-run) and `shuffle_listing` (every list request orders the
workflows differently, as Zuora does not promise an order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("429", "500", "503", "malformed", "401", "403", "insert", "delete", "repeat", "no_next")
LISTING_KINDS = ("insert", "delete", "repeat", "no_next")
TARGETS = ("token", "list", "get", "export", "any")


@dataclass
class Rule:
    kind: str
    target: str = "any"
    count: int = 1
    page: int | None = None
    workflow: int | None = None
    retry_after: int | None = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.target not in TARGETS:
            raise ValueError(f"unknown fault target {self.target!r} (known: {', '.join(TARGETS)})")

    def matches(self, target: str, page: int | None, workflow: int | None) -> bool:
        return (self.count != 0 and self.target in (target, "any")
                and (self.page is None or self.page == page) and (self.workflow is None or self.workflow == workflow))


@dataclass
class Faults:
    rules: list[Rule] = field(default_factory=list)
    latency_ms: float = 0.0
    token_ttl: int = 3599
    revoke_tokens_after: int | None = None
    shuffle_listing: bool = False

    def update(self, body: dict[str, Any]) -> None:
        """Apply an admin request: new rules are added, the other settings replaced when given."""
        self.rules.extend(Rule(**rule) for rule in body.get("rules", []))
        for name in ("latency_ms", "token_ttl", "revoke_tokens_after", "shuffle_listing"):
            if name in body:
                setattr(self, name, body[name])

    def take(self, target: str, page: int | None = None, workflow: int | None = None) -> Rule | None:
        """The first rule matching this request, its count used up by one (call under the tenant's lock)."""
        for rule in self.rules:
            if rule.matches(target, page, workflow):
                if rule.count > 0:
                    rule.count -= 1
                return rule
        return None
