"""A real Laravel 8 application (tests/laravel_app) driven from pytest.

fleetops reads what Laravel writes (failed_jobs rows, Redis queue keys, payload JSON), so
its tests need the genuine article rather than hand-made fixtures. The app runs on
Debian's php-laravel-framework 8.83 (no composer), is configured only through
environment variables, and every fixture gets its own database / Redis prefix, storage
directory and run log, so one checkout serves many tests at once.

Every PHP process is started in its own session (process group) and the whole group is
killed on timeout, on error and at fixture teardown: no artisan process outlives a test.

Succeed switch: FlakyJob and friends throw ``RuntimeException("Order {id} failed:
flaky")`` unless ``HARNESS_SUCCEED=1`` is in the worker's environment or the file
``HARNESS_SUCCEED_FILE`` exists; ``LaravelApp.set_succeed(True)`` creates that file, so it
takes effect immediately, even for a worker that is already running.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from sandbox.laravel.payloads import JobProperty, JobSpec
from tests.harness.services import REDIS_URL

Store = Literal["sqlite", "pgsql", "mysql", "redis"]
STORES: tuple[Store, ...] = ("sqlite", "pgsql", "mysql", "redis")

APP_DIR = Path(__file__).resolve().parents[1] / "laravel_app"
FRAMEWORK_AUTOLOAD = Path("/usr/share/php/Illuminate/autoload.php")
PHP = "php"
# Same fixed key as config/app.php: base64 of "fleetops-laravel-test-key-32byte". Python
# tests need it to decrypt ShouldBeEncrypted payloads.
APP_KEY = "base64:ZmxlZXRvcHMtbGFyYXZlbC10ZXN0LWtleS0zMmJ5dGU="
DEFAULT_TIMEOUT = 60.0
# App\Jobs\FlakyJob as a fixture-factory job: rows written with it in the catalogue are failed
# jobs this app's worker can unserialize and run (the succeed switch decides how they end).
FLAKY_JOB = JobSpec("App\\Jobs\\FlakyJob", "default", "RuntimeException", "Order {orderId} failed: flaky", 45,
                    properties=(JobProperty("orderId"), JobProperty("label", "word")), tries=1)

# Only these are inherited from the pytest process: anything else (DATABASE_URL,
# REDIS_URL, DB_*, QUEUE_CONNECTION set by CI or a developer shell) would silently
# override the per-test configuration, because Laravel's env() reads the real environment.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
_STORAGE_SUBDIRS = ("framework/cache/data", "framework/sessions", "framework/views", "logs")
_SQL_CONNECTIONS = {"sqlite": "sqlite", "postgresql": "pgsql", "mysql": "mysql", "mariadb": "mysql"}


class ArtisanError(AssertionError):
    """An artisan command failed or timed out; carries its output for the test report."""


def require_php() -> None:
    """Fail (never skip) when PHP or the packaged framework is missing: CI installs them."""
    problems = []
    if shutil.which(PHP) is None:
        problems.append("`php` is not on PATH")
    if not FRAMEWORK_AUTOLOAD.is_file():
        problems.append(f"{FRAMEWORK_AUTOLOAD} is missing (Debian package php-laravel-framework)")
    if problems:
        pytest.fail(
            "Laravel harness cannot run: "
            + "; ".join(problems)
            + ". Install the system packages with scripts/install-system-deps.sh.",
            pytrace=False,
        )


def ensure_app_dirs() -> None:
    """Create the writable dirs a Laravel checkout needs; they are gitignored, not committed."""
    for sub in _STORAGE_SUBDIRS:
        (APP_DIR / "storage" / sub).mkdir(parents=True, exist_ok=True)
    (APP_DIR / "bootstrap" / "cache").mkdir(parents=True, exist_ok=True)


def kill_group(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    """Signal the process's whole group (it is a session leader, so pgid == pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _sql_env(db_url: str) -> dict[str, str]:
    """DB_* variables for Laravel's config/database.php from a SQLAlchemy URL."""
    url = make_url(db_url)
    connection = _SQL_CONNECTIONS[url.get_backend_name()]
    if connection == "sqlite":
        Path(url.database or "").touch()  # Laravel refuses a missing SQLite file
        return {"DB_CONNECTION": "sqlite", "DB_DATABASE": str(url.database)}
    return {
        "DB_CONNECTION": connection,
        "DB_HOST": url.host or "127.0.0.1",
        "DB_PORT": str(url.port or (5432 if connection == "pgsql" else 3306)),
        "DB_DATABASE": url.database or "",
        "DB_USERNAME": url.username or "",
        "DB_PASSWORD": url.password or "",
    }


def _redis_env(prefix: str, redis_url: str) -> dict[str, str]:
    """REDIS_* variables; the prefix is Laravel's database.redis.options.prefix."""
    parsed = urlparse(redis_url)
    return {
        "REDIS_CLIENT": "phpredis",
        "REDIS_HOST": parsed.hostname or "127.0.0.1",
        "REDIS_PORT": str(parsed.port or 6379),
        "REDIS_DB": (parsed.path.lstrip("/") or "0"),
        "REDIS_PREFIX": prefix,
    }


@dataclass
class LaravelApp:
    """One configuration of tests/laravel_app: a queue store plus its SQL failed-job store.

    store: "sqlite" | "pgsql" | "mysql" use the `database` queue connection on that
    database; "redis" uses the `redis` queue connection (keys under redis_prefix) and
    db_url (normally SQLite) for failed_jobs.
    """

    store: Store
    db_url: str
    workdir: Path
    redis_prefix: str | None = None
    redis_url: str = REDIS_URL
    env: dict[str, str] = field(init=False)
    _workers: list[subprocess.Popen[str]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        if self.store == "redis" and not self.redis_prefix:
            raise ValueError("the redis store needs a redis_prefix")
        for sub in _STORAGE_SUBDIRS:  # per-app storage: logs and caches never shared
            (self.storage_path / sub).mkdir(parents=True, exist_ok=True)
        self.env = self._build_env()

    # -- configuration -----------------------------------------------------------------

    @property
    def storage_path(self) -> Path:
        return self.workdir / "storage"

    @property
    def run_log(self) -> Path:
        return self.workdir / "runs.jsonl"

    @property
    def succeed_file(self) -> Path:
        return self.workdir / "succeed.flag"

    @property
    def connection(self) -> str:
        """The Laravel queue connection name jobs are pushed to and failed_jobs records."""
        return "redis" if self.store == "redis" else "database"

    def _build_env(self) -> dict[str, str]:
        env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
        env.update(
            APP_ENV="testing",
            APP_DEBUG="false",
            APP_KEY=APP_KEY,
            LOG_CHANNEL="single",
            CACHE_DRIVER="array",
            QUEUE_CONNECTION=self.connection,
            QUEUE_FAILED_DRIVER="database-uuids",
            LARAVEL_STORAGE_PATH=str(self.storage_path),
            HARNESS_RUN_LOG=str(self.run_log),
            HARNESS_SUCCEED_FILE=str(self.succeed_file),
        )
        env.update(_sql_env(self.db_url))
        if self.redis_prefix:
            env.update(_redis_env(self.redis_prefix, self.redis_url))
        return env

    # -- processes ---------------------------------------------------------------------

    def artisan(
        self,
        *args: str,
        timeout: float = DEFAULT_TIMEOUT,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `php artisan ARGS` to completion in its own process group.

        On timeout (or any interruption) the whole group is SIGKILLed before raising, and
        with check=True a non-zero exit raises ArtisanError with stdout, stderr and the
        tail of storage/logs/laravel.log.
        """
        argv = [PHP, "artisan", *args]
        proc = self._popen(argv, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            stdout, stderr = proc.communicate()
            raise ArtisanError(self._describe(argv, f"timed out after {timeout}s", stdout, stderr)) from None
        except BaseException:
            kill_group(proc)
            proc.communicate()
            raise
        result = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
        if proc.returncode != 0:
            kill_group(proc)  # stragglers the command may have forked
            if check:
                raise ArtisanError(self._describe(argv, f"exit {proc.returncode}", stdout, stderr))
        return result

    def _popen(self, argv: Sequence[str], env: dict[str, str] | None, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            list(argv),
            cwd=APP_DIR,
            env={**self.env, **(env or {})},
            text=True,
            start_new_session=True,
            **kwargs,
        )

    def _describe(self, argv: Sequence[str], what: str, stdout: str, stderr: str) -> str:
        log_tail = self.log_text()[-4000:]
        return (
            f"{' '.join(argv)} ({self.store}): {what}\n--- stdout ---\n{stdout[-4000:]}"
            f"\n--- stderr ---\n{stderr[-4000:]}\n--- laravel.log (tail) ---\n{log_tail}"
        )

    def migrate(self) -> None:
        """Create failed_jobs, jobs and job_batches (plus Laravel's migrations table)."""
        self.artisan("migrate", "--force")

    def dispatch(
        self,
        count: int = 1,
        queue: str = "default",
        job: Literal["flaky", "until", "encrypted"] = "flaky",
        *,
        order: int = 1,
        connection: str | None = None,
        tries: int | None = 1,
        label: str = "",
        until: int | None = None,
        backoff: int | None = None,
    ) -> list[dict[str, object]]:
        """Push `count` jobs (order ids order, order+1, ...) through Laravel's Bus.

        Returns one dict per job: uuid, job, class, order_id, connection, queue.
        tries=None leaves $tries null so the worker's --tries decides.
        """
        args = [
            "harness:dispatch",
            f"--count={count}",
            f"--queue={queue}",
            f"--job={job}",
            f"--order={order}",
            f"--connection={connection or self.connection}",
            f"--tries={'none' if tries is None else tries}",
            f"--label={label}",
        ]
        if until is not None:
            args.append(f"--until={until}")
        if backoff is not None:
            args.append(f"--backoff={backoff}")
        out = self.artisan(*args).stdout
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def _work_args(
        self, queue: str, connection: str | None, tries: int, sleep: float, extra: Sequence[str]
    ) -> list[str]:
        return [
            "queue:work",
            connection or self.connection,
            f"--queue={queue}",
            f"--tries={tries}",
            f"--sleep={sleep:g}",
            *extra,
        ]

    def work(
        self,
        queue: str = "default",
        *,
        stop_when_empty: bool = True,
        connection: str | None = None,
        tries: int = 1,
        sleep: float = 0,
        extra: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """Run a real `queue:work` until the queue is empty (or the timeout kills it).

        stop_when_empty=False only makes sense with extra args that end the worker
        (e.g. "--max-jobs=2", "--max-time=3"); otherwise use start_worker().
        """
        args = self._work_args(queue, connection, tries, sleep, extra)
        if stop_when_empty:
            args.append("--stop-when-empty")
        return self.artisan(*args, timeout=timeout)

    def start_worker(
        self,
        queue: str = "default",
        *,
        connection: str | None = None,
        tries: int = 1,
        sleep: float = 0.1,
        extra: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[str]:
        """Start a long-running worker in the background; killed by stop_workers()/teardown.

        Its output goes to files in workdir (a pipe nobody reads would block it).
        """
        index = len(self._workers)
        out = (self.workdir / f"worker{index}.out").open("w")
        err = (self.workdir / f"worker{index}.err").open("w")
        with out, err:
            argv = [PHP, "artisan", *self._work_args(queue, connection, tries, sleep, extra)]
            proc = self._popen(argv, env, stdout=out, stderr=err)
        self._workers.append(proc)
        return proc

    def stop_worker(self, proc: subprocess.Popen[str], grace: float = 5.0) -> int:
        """SIGTERM the worker's group (Laravel finishes the current job), SIGKILL after grace."""
        kill_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            return proc.wait()
        finally:
            kill_group(proc)
            if proc in self._workers:
                self._workers.remove(proc)

    def stop_workers(self) -> None:
        """Kill every background worker this app started (fixture teardown)."""
        while self._workers:
            proc = self._workers.pop()
            kill_group(proc)
            proc.wait()

    def pids(self) -> list[int]:
        """PIDs of live processes started for this app (found by its unique storage path
        in /proc/*/environ): lets tests prove nothing was left running."""
        marker = f"LARAVEL_STORAGE_PATH={self.storage_path}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
        return found

    # -- observations ------------------------------------------------------------------

    def runs(self) -> list[dict[str, object]]:
        """Every job execution so far, in order (one JSON line written per handle() call)."""
        if not self.run_log.exists():
            return []
        return [json.loads(line) for line in self.run_log.read_text().splitlines() if line.strip()]

    def set_succeed(self, on: bool = True) -> None:
        """Flip the succeed switch (a flag file the jobs check on every run)."""
        if on:
            self.succeed_file.touch()
        else:
            self.succeed_file.unlink(missing_ok=True)

    def log_text(self) -> str:
        """storage/logs/laravel.log: Laravel reports every job exception there."""
        path = self.storage_path / "logs" / "laravel.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def engine(self) -> sa.Engine:
        """A SQLAlchemy engine on the app's SQL database (the failed-job store)."""
        return sa.create_engine(self.db_url, poolclass=sa.pool.NullPool)

    def redis_client(self) -> redis.Redis:
        """A client on the app's Redis database; keys are NOT prefixed automatically."""
        return redis.Redis.from_url(self.redis_url)

    def redis_key(self, name: str) -> str:
        """Full Redis key as phpredis writes it: prefix + Laravel key (e.g. "queues:default")."""
        return f"{self.redis_prefix or ''}{name}"


# -- fixtures ------------------------------------------------------------------------------


def _migrated_app(store: Store, db_url: str, workdir: Path, redis_prefix: str | None = None) -> Iterator[LaravelApp]:
    require_php()
    ensure_app_dirs()
    workdir.mkdir(parents=True, exist_ok=True)
    app = LaravelApp(store, db_url, workdir, redis_prefix=redis_prefix)
    try:
        app.migrate()
        yield app
    finally:
        app.stop_workers()


@pytest.fixture
def laravel_sqlite(sqlite_url: str, tmp_path: Path) -> Iterator[LaravelApp]:
    """Migrated app, `database` queue + failed_jobs on a fresh SQLite file."""
    yield from _migrated_app("sqlite", sqlite_url, tmp_path / "laravel-sqlite")


@pytest.fixture
def laravel_pgsql(pg_url: str, tmp_path: Path) -> Iterator[LaravelApp]:
    """Migrated app, `database` queue + failed_jobs on a fresh PostgreSQL database."""
    yield from _migrated_app("pgsql", pg_url, tmp_path / "laravel-pgsql")


@pytest.fixture
def laravel_mysql(mysql_url: str, tmp_path: Path) -> Iterator[LaravelApp]:
    """Migrated app, `database` queue + failed_jobs on a fresh MariaDB database."""
    yield from _migrated_app("mysql", mysql_url, tmp_path / "laravel-mysql")


@pytest.fixture
def laravel_redis(sqlite_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[LaravelApp]:
    """Migrated app, `redis` queue under a fresh key prefix, failed_jobs on SQLite."""
    yield from _migrated_app("redis", sqlite_url, tmp_path / "laravel-redis", redis_prefix=redis_prefix)


@pytest.fixture(params=STORES)
def laravel_app(request: pytest.FixtureRequest) -> LaravelApp:
    """Each of the four stores in turn (ids: sqlite, pgsql, mysql, redis)."""
    app: LaravelApp = request.getfixturevalue(f"laravel_{request.param}")
    return app


_LARAVEL_FIXTURES = frozenset({"laravel_app", *(f"laravel_{store}" for store in STORES)})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test using a Laravel fixture `laravel`, so `-m "not laravel"` works
    even where a test module forgot its pytestmark."""
    for item in items:
        if _LARAVEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.laravel)
