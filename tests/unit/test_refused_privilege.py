"""Only a refusal for lack of a grant stops a spool action at once; other database errors stay retryable."""

import sqlalchemy as sa

from resources.common.errors import refused_privilege


class DriverError(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


def wrapped(orig: Exception, statement: str = "DELETE FROM failed_jobs WHERE id IN (1)") -> sa.exc.DBAPIError:
    return sa.exc.ProgrammingError(statement, {}, orig)


def test_postgresql_refusal_names_the_statement_and_table() -> None:
    message = refused_privilege(wrapped(DriverError("permission denied for table failed_jobs", sqlstate="42501")))
    assert message is not None
    assert message.startswith("missing grant: DELETE on table failed_jobs (permission denied for table failed_jobs)")


def test_postgresql_sequence_refusal_asks_for_usage() -> None:
    exc = wrapped(DriverError("permission denied for sequence jobs_id_seq", sqlstate="42501"), "INSERT INTO jobs")
    assert (refused_privilege(exc) or "").startswith("missing grant: USAGE on sequence jobs_id_seq")


def test_mysql_refusal_keeps_the_servers_text() -> None:
    exc = wrapped(DriverError(1142, "INSERT command denied to user 'ro'@'%' for table `shop`.`jobs`"))
    assert refused_privilege(exc) == ("missing grant (INSERT command denied to user 'ro'@'%' for table "
                                      "`shop`.`jobs`); grant it (docs/security.md), not retried")


def test_other_errors_are_not_refusals() -> None:
    assert refused_privilege(wrapped(DriverError("server closed the connection", sqlstate="08006"))) is None
    assert refused_privilege(wrapped(DriverError(2003, "Can't connect to MySQL server"))) is None
    assert refused_privilege(ConnectionRefusedError("refused")) is None


def test_one_statement_touching_two_tables_names_what_it_does_to_the_refused_one() -> None:
    statement = ("WITH gone AS (DELETE FROM failed_jobs WHERE failed_jobs.id BETWEEN 1 AND 9 RETURNING id), "
                 'pushed AS (INSERT INTO "jobs" (queue, payload) SELECT queue, payload FROM gone) SELECT id FROM gone')
    on_failed = wrapped(DriverError("permission denied for table failed_jobs", sqlstate="42501"), statement)
    on_jobs = wrapped(DriverError("permission denied for table jobs", sqlstate="42501"), statement)
    assert (refused_privilege(on_failed) or "").startswith("missing grant: DELETE on table failed_jobs")
    assert (refused_privilege(on_jobs) or "").startswith("missing grant: INSERT on table jobs")
