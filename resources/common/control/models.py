"""Tables of the control database.

Table names are part of fleetops' contract (DESIGN.md); columns may grow through Alembic
migrations in `sql/`. Times are naive UTC. Secrets are stored in the forms of
`resources.common.secrets` (an `env:` reference or a Fernet token), never in clear.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from resources.spool.statuses import PENDING, SOURCES, STATUSES, one_of

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: sa.JSON, datetime: sa.DateTime()}


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Project(Timestamps, Base):
    """A Laravel application whose failed jobs and queues fleetops watches and acts on."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    failed_db: Mapped[str] = mapped_column(sa.Text, doc="stored DSN of the failed-job store")
    failed_table: Mapped[str] = mapped_column(sa.String(130), default="failed_jobs")
    jobs_table: Mapped[str] = mapped_column(sa.String(130), default="jobs")
    queue_connections: Mapped[dict[str, Any]] = mapped_column(
        default=dict, doc="Laravel connection name -> stored DSN (database or Redis)"
    )
    redis_prefix: Mapped[str | None] = mapped_column(sa.String(128))
    horizon: Mapped[bool] = mapped_column(default=False)
    horizon_prefix: Mapped[str | None] = mapped_column(sa.String(128), doc="Horizon's Redis prefix, if not the default")
    stuck_after_seconds: Mapped[int] = mapped_column(default=300, doc="a reservation older than this is stuck")
    app_key: Mapped[str | None] = mapped_column(sa.Text, doc="stored APP_KEY: decrypts ShouldBeEncrypted commands")
    enabled: Mapped[bool] = mapped_column(default=True)


class RedisConnection(Timestamps, Base):
    """A Redis server of the fleet, probed for health and linked to the project whose queues it holds.

    The password is stored sealed.
    """

    __tablename__ = "redis_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scheme: Mapped[str] = mapped_column(sa.String(8), default="redis")
    host: Mapped[str] = mapped_column(sa.String(255))
    port: Mapped[int] = mapped_column(default=6379)
    db: Mapped[int] = mapped_column(default=0)
    username: Mapped[str | None] = mapped_column(sa.String(255))
    password: Mapped[str | None] = mapped_column(sa.Text)
    project_key: Mapped[str | None] = mapped_column(
        sa.String(64), sa.ForeignKey("projects.key", ondelete="SET NULL"), index=True
    )
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)


class Customer(Timestamps, Base):
    """A Zuora tenant whose workflows fleetops keeps in sync."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    base_url: Mapped[str] = mapped_column(sa.String(255))
    client_id: Mapped[str] = mapped_column(sa.String(255))
    client_secret: Mapped[str] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    max_concurrency: Mapped[int] = mapped_column(default=4, doc="Zuora requests in flight at once for this tenant")
    requests_per_minute: Mapped[int] = mapped_column(default=1500, doc="pace of requests to this tenant")
    requests_per_hour: Mapped[int | None] = mapped_column(doc="this customer's API requests an hour; NULL: no budget")
    requests_per_day: Mapped[int | None] = mapped_column(doc="this customer's API requests a UTC day; NULL: no budget")
    entity_id: Mapped[str | None] = mapped_column(sa.String(255), doc="sent as Zuora-Entity-Ids (multi-entity tenant)")
    last_synced_at: Mapped[datetime | None]
    last_sync_status: Mapped[str | None] = mapped_column(sa.String(16), doc="complete | incomplete | failed")
    last_sync_stats: Mapped[dict[str, Any] | None]


class ZuoraRequestUsage(Base):
    """API requests made to a customer's tenant per UTC hour: what its hourly and daily budgets have used."""

    __tablename__ = "zuora_request_usage"

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True, doc="the UTC hour, minutes and seconds zero")
    requests: Mapped[int] = mapped_column(default=0)


class Workflow(Timestamps, Base):
    """A Zuora workflow definition of one customer, keyed per customer so that two tenants' ids never collide."""

    __tablename__ = "workflows"
    __table_args__ = (
        sa.UniqueConstraint("customer_id", "zuora_id"),
        sa.Index("ix_workflows_customer_id", "customer_id"),
        sa.Index("ix_workflows_zuora_id", "zuora_id"),
        sa.Index("ix_workflows_state", "state"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    zuora_id: Mapped[str] = mapped_column(sa.String(255), doc="the definition id of Zuora's workflow list")
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[str | None] = mapped_column(sa.String(255), doc="Zuora's `status`, e.g. Active")
    created_on: Mapped[datetime | None] = mapped_column(doc="Zuora's createdAt")
    updated_on: Mapped[datetime | None] = mapped_column(doc="Zuora's updatedAt")
    active_version_id: Mapped[str | None] = mapped_column(sa.String(255))
    active_version_number: Mapped[str | None] = mapped_column(sa.String(64))
    json_export: Mapped[dict[str, Any] | None] = mapped_column(doc="the last export that downloaded without error")
    exported_updated_on: Mapped[datetime | None] = mapped_column(doc="updatedAt the stored export belongs to")
    exported_version_id: Mapped[str | None] = mapped_column(sa.String(255), doc="active version of the export")
    export_error: Mapped[str | None] = mapped_column(sa.Text, doc="why the last export failed; NULL once it works")
    last_synced_at: Mapped[datetime | None] = mapped_column(doc="last listing that contained this workflow")


class Task(Timestamps, Base):
    """A task of a workflow's stored export, re-extracted whenever the export changes."""

    __tablename__ = "tasks"
    __table_args__ = (
        sa.UniqueConstraint("workflow_id", "zuora_id"),
        sa.Index("ix_tasks_workflow_id", "workflow_id"),
        sa.Index("ix_tasks_zuora_id", "zuora_id"),
        sa.Index("ix_tasks_task_type", "task_type"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("workflows.id", ondelete="CASCADE")
    )
    zuora_id: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    task_type: Mapped[str | None] = mapped_column(sa.String(255), doc="Zuora's `object`: what the task acts on")
    object_id: Mapped[str | None] = mapped_column(sa.Text)
    action_type: Mapped[str | None] = mapped_column(sa.String(255))
    call_type: Mapped[str | None] = mapped_column(sa.String(255))
    data: Mapped[dict[str, Any] | None] = mapped_column(doc="the task's `parameters`")
    workflow_task_json: Mapped[dict[str, Any] | None] = mapped_column(doc="the task as the export has it")


class SpoolAction(Timestamps, Base):
    """An operator's intent against a project's queue storage, executed by a Dagster run."""

    __tablename__ = "failed_job_action_spool"
    __table_args__ = (
        sa.Index("ix_failed_job_action_spool_project_status", "project", "status"),
        sa.Index("ix_failed_job_action_spool_available_at", "available_at"),
        sa.Index("ix_failed_job_action_spool_due", "status", "available_at", "priority"),
        sa.CheckConstraint(one_of("status", STATUSES), name="status"),
        sa.CheckConstraint(one_of("source", SOURCES), name="source"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    priority: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    requested_by: Mapped[str | None] = mapped_column(sa.String(255))
    source: Mapped[str] = mapped_column(sa.String(16), default="cli")
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[datetime | None]
    progress: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]


class MirroredFailedJob(Base):
    """fleetops' mirror of one failed job of one project, normalised; payloads and traces stay at the source."""

    __tablename__ = "fleet_failed_jobs"
    __table_args__ = (
        sa.UniqueConstraint("project", "laravel_id"),
        sa.Index("ix_fleet_failed_jobs_project_gone_at_laravel_id", "project", "gone_at", "laravel_id"),
        sa.Index("ix_fleet_failed_jobs_project_failed_at", "project", "failed_at"),
        sa.Index("ix_fleet_failed_jobs_fingerprint", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    project: Mapped[str] = mapped_column(sa.String(64))
    laravel_id: Mapped[int] = mapped_column(sa.BigInteger)
    uuid: Mapped[str | None] = mapped_column(sa.String(64))
    connection: Mapped[str | None] = mapped_column(sa.String(255))
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    job_class: Mapped[str | None] = mapped_column(sa.String(255))
    exception_class: Mapped[str | None] = mapped_column(sa.String(255))
    message: Mapped[str | None] = mapped_column(sa.Text, doc="first line of the exception message")
    fingerprint: Mapped[str] = mapped_column(sa.String(40))
    failed_at: Mapped[datetime | None]
    payload_size: Mapped[int] = mapped_column(default=0)
    parse_error: Mapped[str | None] = mapped_column(sa.Text)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    gone_at: Mapped[datetime | None] = mapped_column(doc="retried or deleted at the source")


class QueueObservation(Base):
    """One queue of one project's connection at one sweep."""

    __tablename__ = "queue_observations"
    __table_args__ = (sa.Index("ix_queue_observations_project_observed_at", "project", "observed_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    observed_at: Mapped[datetime]
    project: Mapped[str] = mapped_column(sa.String(64))
    connection: Mapped[str] = mapped_column(sa.String(255))
    queue: Mapped[str] = mapped_column(sa.String(255))
    pending: Mapped[int]
    delayed: Mapped[int]
    reserved: Mapped[int]
    stuck: Mapped[int]
    failed: Mapped[int]
    oldest_pending_age: Mapped[float | None] = mapped_column(sa.Float)


class RedisHealthLog(Base):
    """One probe of one Redis connection, the history the UI plots; pruned after the retention."""

    __tablename__ = "redis_health_logs"
    __table_args__ = (
        sa.Index("ix_redis_health_logs_connection_checked_at", "connection", "checked_at"),
        sa.Index("ix_redis_health_logs_checked_at", "checked_at"),
        sa.CheckConstraint("status IN ('up', 'degraded', 'down')", name="status"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    connection: Mapped[str] = mapped_column(sa.String(64))
    checked_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(255), doc="why not up: refused, timeout, slow, ...")
    latency_ms: Mapped[float | None] = mapped_column(sa.Float, doc="median of three PINGs")
    version: Mapped[str | None] = mapped_column(sa.String(32))
    role: Mapped[str | None] = mapped_column(sa.String(16))
    uptime_seconds: Mapped[int | None] = mapped_column(sa.BigInteger)
    used_memory: Mapped[int | None] = mapped_column(sa.BigInteger)
    maxmemory: Mapped[int | None] = mapped_column(sa.BigInteger)
    connected_clients: Mapped[int | None]
    blocked_clients: Mapped[int | None]
    ops_per_sec: Mapped[int | None]
    evicted_keys: Mapped[int | None] = mapped_column(sa.BigInteger)
    rejected_connections: Mapped[int | None] = mapped_column(sa.BigInteger)
    replica_link: Mapped[str | None] = mapped_column(sa.String(16), doc="master_link_status of a replica")
    queues: Mapped[dict[str, Any] | None] = mapped_column(doc="queue -> pending, delayed, reserved, stuck")
    horizon_status: Mapped[str | None] = mapped_column(sa.String(16), doc="running, paused or inactive")
    horizon_recent_failed: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)


class RedisAlert(Base):
    """One state change of one Redis connection that was announced (or that failed to be)."""

    __tablename__ = "redis_alerts"
    __table_args__ = (sa.Index("ix_redis_alerts_connection_sent_at", "connection", "sent_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    connection: Mapped[str] = mapped_column(sa.String(64))
    from_status: Mapped[str] = mapped_column(sa.String(16))
    to_status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    sent_at: Mapped[datetime]
    delivered: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text, doc="why it was not delivered")
