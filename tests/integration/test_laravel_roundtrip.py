"""Real Laravel workers fail real jobs; fleetops reads them back and writes look-alikes.

The harness (tests/laravel_app) runs `php artisan queue:work` on SQLite, PostgreSQL, MariaDB
and Redis. What Laravel writes is read through fleetops' failed-job store, and the fixture
factory's payloads are held to the exact shape of the real ones.
"""

import json
import random

import pytest

from resources.failures.store import DatabaseFailedStore
from sandbox.laravel import payloads
from tests.harness.laravel import FLAKY_JOB, LaravelApp

pytestmark = pytest.mark.laravel


def real_failures(app: LaravelApp, count: int = 3) -> list[dict]:
    dispatched = app.dispatch(count, order=40)
    app.work()
    return dispatched


def test_failed_store_reads_what_real_workers_wrote(laravel_app: LaravelApp) -> None:
    dispatched = real_failures(laravel_app)
    engine = laravel_app.engine()
    try:
        store = DatabaseFailedStore(engine)
        jobs = list(store.iter_failed())
        assert store.has_uuid()
        assert {job.uuid for job in jobs} == {d["uuid"] for d in dispatched}
        for job in jobs:
            assert job.public_id == job.uuid
            assert job.connection == laravel_app.connection and job.queue == "default"
            assert job.payload.display_name == "App\\Jobs\\FlakyJob"
            assert job.payload.parse_error is None and job.exception.parse_error is None
            assert job.exception.exception_class == "RuntimeException"
            assert job.exception.message.startswith("Order 4") and job.exception.message.endswith("failed: flaky")
            assert job.exception.file.endswith("FlakyJob.php") or "Concerns" in job.exception.file
        assert len({job.fingerprint for job in jobs}) == 1  # order ids differ, the failure is one
        found = store.find(dispatched[0]["uuid"])
        assert found is not None and found.uuid == dispatched[0]["uuid"]
        assert store.find(str(found.id)).uuid == found.uuid
    finally:
        engine.dispose()


def test_decoded_command_shows_the_jobs_properties(laravel_sqlite: LaravelApp) -> None:
    real_failures(laravel_sqlite, 1)
    engine = laravel_sqlite.engine()
    try:
        (job,) = DatabaseFailedStore(engine).iter_failed()
    finally:
        engine.dispose()
    from resources.laravel.payload import command_properties

    decoded = command_properties(job.payload)
    assert decoded.properties["orderId"] == 40


def shape(value):
    """Key order and JSON types, recursively: what must match between real and fixture payloads."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    return type(value).__name__


@pytest.mark.parametrize("app_fixture", ["laravel_sqlite", "laravel_redis"])
def test_factory_payloads_have_the_shape_laravel_writes(request: pytest.FixtureRequest, app_fixture: str) -> None:
    app: LaravelApp = request.getfixturevalue(app_fixture)
    real_failures(app, 1)
    engine = app.engine()
    try:
        (job,) = DatabaseFailedStore(engine).iter_failed()
    finally:
        engine.dispose()
    real = job.payload.raw
    fixture = json.loads(payloads.make_payload(random.Random(1), FLAKY_JOB, redis=app.store == "redis", now=1.7e9))
    assert list(fixture) == list(real)
    assert [k for k, _ in shape(fixture["data"])] == [k for k, _ in shape(real["data"])]
    for key in ("uuid", "displayName", "job", "maxTries", "failOnTimeout", "data"):
        assert shape(fixture[key]) == shape(real[key]), key
    assert fixture["data"]["command"].startswith('O:17:"App\\Jobs\\FlakyJob":')
