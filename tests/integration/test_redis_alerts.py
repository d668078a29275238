"""The sweep's records, retention and debounced alerts, against real listeners and a real webhook receiver."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from resources.common.alerts import WebhookSender
from resources.common.control.database import ControlDatabase
from resources.common.control.models import RedisAlert, RedisHealthLog, utcnow
from resources.common.secrets import SecretBox, new_key
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec
from resources.redis.alerting import Alerter, recent_alerts
from resources.redis.health import history, sweep
from resources.redis.probe import ProbeSettings
from tests.harness.processes import free_port
from tests.harness.redis_servers import Listeners, Webhook

INFO = b"# Server\r\nredis_version:7.2.4\r\nrole:master\r\n"
FAST = ProbeSettings(timeout=0.5)


@pytest.fixture
def control(tmp_path: Path) -> ControlDatabase:
    db = ControlDatabase(f"sqlite:///{tmp_path}/control.db")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox(new_key())


class Switch:
    """A listener that answers like a healthy Redis or, switched off, like one still LOADING."""

    def __init__(self, listeners: Listeners) -> None:
        self.up = True
        self.port = listeners.answering(self.reply)

    def reply(self, chunk: bytes) -> bytes:
        if not self.up:
            return b"-LOADING Redis is loading the dataset in memory\r\n"
        return b"+PONG\r\n" if b"PING" in chunk.upper() else b"$%d\r\n%s\r\n" % (len(INFO), INFO)


def register(db: ControlDatabase, secret_box: SecretBox, name: str, port: int) -> None:
    RedisRegistry(db, secret_box).add(RedisSpec(name=name, url=f"redis://127.0.0.1:{port}/0"))


def run(db: ControlDatabase, secret_box: SecretBox, alerter: Alerter) -> list:
    return sweep(db, secret_box, probe_settings=FAST, alerter=alerter).alerts


def test_a_sweep_names_the_connections_whose_status_changed(
    control: ControlDatabase, secret_box: SecretBox, listeners: Listeners
) -> None:
    switch = Switch(listeners)
    register(control, secret_box, "switch", switch.port)
    register(control, secret_box, "local", 6379)
    changes = []
    for up in (True, True, False, False, True):
        switch.up = up
        changes.append(sweep(control, secret_box, probe_settings=FAST).changed)
    assert changes == [{"switch", "local"}, set(), {"switch"}, set(), {"switch"}]


def test_a_flapping_server_sends_nothing_and_held_states_one_alert_each_way(
    control: ControlDatabase, secret_box: SecretBox, listeners: Listeners, webhook: Webhook
) -> None:
    switch = Switch(listeners)
    register(control, secret_box, "flappy", switch.port)
    alerter = Alerter(control, WebhookSender(webhook.url), consecutive=3)
    sent = []
    for up in [True, True, False, True, False, False, True, False, True, False]:  # flapping: never 3 alike
        switch.up = up
        sent += run(control, secret_box, alerter)
    assert sent == [] and webhook.posts == []
    for _ in range(4):  # held down: one alert after the third probe, none after the fourth
        switch.up = False
        sent += run(control, secret_box, alerter)
    assert [(a.from_status, a.to_status, a.reason, a.delivered) for a in sent] == [("up", "down", "loading", True)]
    for _ in range(3):
        switch.up = True
        sent += run(control, secret_box, alerter)
    assert [(a.from_status, a.to_status) for a in sent] == [("up", "down"), ("down", "up")]
    assert [p["text"] for p in webhook.posts] == [
        "fleetops: Redis flappy is now DOWN (loading), was up (3 consecutive probes).",
        "fleetops: Redis flappy recovered, now UP, was down (3 consecutive probes).",
    ]
    fields = {f["title"]: f["value"] for f in webhook.posts[0]["attachments"][0]["fields"]}
    assert fields == {"connection": "flappy", "status": "down", "was": "up", "reason": "loading",
                      "address": f"redis://127.0.0.1:{switch.port}/0"}
    recorded = recent_alerts(control, "flappy")
    assert [(r["from_status"], r["to_status"], r["delivered"]) for r in recorded] == [
        ("down", "up", True), ("up", "down", True)]
    assert len(history(control, "flappy", limit=100)) == 17


def test_the_changes_of_one_sweep_go_out_as_one_message(
    control: ControlDatabase, secret_box: SecretBox, webhook: Webhook
) -> None:
    for name in ("cache-a", "cache-b"):
        register(control, secret_box, name, free_port())
    alerter = Alerter(control, WebhookSender(webhook.url), consecutive=2)
    sent = run(control, secret_box, alerter) + run(control, secret_box, alerter)
    assert sorted(a.line() for a in sent) == ["cache-a: up -> down (refused)", "cache-b: up -> down (refused)"]
    (post,) = webhook.posts
    assert post["text"].startswith("fleetops: 2 Redis connections changed state (2 consecutive probes):")
    assert {f["title"]: f["value"] for f in post["attachments"][0]["fields"]} == {
        "cache-a": "up -> down", "cache-b": "up -> down"}


def test_an_alert_that_cannot_be_delivered_is_still_recorded(
    control: ControlDatabase, secret_box: SecretBox, webhook: Webhook
) -> None:
    register(control, secret_box, "gone", free_port())
    webhook.status = 500
    alerter = Alerter(control, WebhookSender(webhook.url, backoff_factor=0.01), consecutive=1)
    (alert,) = run(control, secret_box, alerter)
    assert not alert.delivered and alert.error == "webhook answered HTTP 500: invalid_token"
    assert len(webhook.paths) == 3  # retried twice
    assert "hook-token" not in str(recent_alerts(control))
    assert run(control, secret_box, alerter) == []  # announced: not repeated every minute against a broken webhook
    register(control, secret_box, "also-gone", free_port())
    (unsent,) = run(control, secret_box, Alerter(control, WebhookSender(None), consecutive=1))
    assert (unsent.connection, unsent.delivered) == ("also-gone", False)
    assert unsent.error == "not sent: FLEETOPS_ALERT_WEBHOOK_URL is not set"


def test_sweep_records_one_row_per_connection_and_prunes_after_the_retention(
    control: ControlDatabase, secret_box: SecretBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(control, secret_box, "local", 6379)
    register(control, secret_box, "dead", free_port())
    RedisRegistry(control, secret_box).add(RedisSpec(name="off", url="redis://127.0.0.1:6379/0", enabled=False))
    logs = RedisHealthLog.__table__
    old = {"connection": "local", "status": "up", "checked_at": utcnow() - timedelta(days=8)}
    recent = {"connection": "local", "status": "up", "checked_at": utcnow() - timedelta(days=2)}
    with control.engine.begin() as conn:
        conn.execute(logs.insert(), [old, recent])
    result = sweep(control, secret_box, probe_settings=FAST)
    assert result.pruned == 1 and result.counts() == {"up": 1, "degraded": 0, "down": 1}
    rows = history(control, "local")
    assert [r["status"] for r in rows] == ["up", "up"] and rows[0]["version"] and rows[0]["used_memory"] > 0
    assert history(control, "dead")[0]["reason"] == "refused" and history(control, "off") == []
    assert {r["checked_at"] for r in (history(control, "local")[0], history(control, "dead")[0])} == {
        result.checked_at}
    monkeypatch.setenv("FLEETOPS_REDIS_HEALTH_RETENTION_DAYS", "1")
    assert sweep(control, secret_box, probe_settings=FAST).pruned == 1  # the 2-day-old row
    with control.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(RedisAlert.__table__)).scalar_one() == 0


def test_one_sweep_of_many_connections_stays_within_its_budget(
    control: ControlDatabase, secret_box: SecretBox, listeners: Listeners
) -> None:
    for n in range(10):
        register(control, secret_box, f"hang-{n}", listeners.hanging())
        register(control, secret_box, f"ok-{n}", 6379)
    started = time.monotonic()
    result = sweep(control, secret_box, probe_settings=FAST)
    assert time.monotonic() - started < 2.0
    assert result.counts() == {"up": 10, "degraded": 0, "down": 10}


def test_a_server_with_absurd_info_is_still_recorded_on_postgresql(pg_url: str, secret_box: SecretBox,
                                                                   listeners: Listeners) -> None:
    odd = (b"redis_version:" + b"7" * 60 + b"\r\nrole:" + b"r" * 40 + b"\r\nconnected_clients:99999999999\r\n"
           b"used_memory:" + b"9" * 40 + b"\r\nuptime_in_seconds:12\r\n")
    port = listeners.answering(lambda c: b"+PONG\r\n" if b"PING" in c.upper() else b"$%d\r\n%s\r\n" % (len(odd), odd))
    db = ControlDatabase(pg_url)
    db.migrate()
    try:
        register(db, secret_box, "odd", port)
        (result,) = sweep(db, secret_box, probe_settings=FAST).results
        assert result.status == "up"
        (row,) = history(db, "odd")
        assert (row["version"], row["role"]) == ("7" * 32, "r" * 16)
        assert (row["connected_clients"], row["used_memory"], row["uptime_seconds"]) == (None, None, 12)
    finally:
        db.dispose()
