import pytest

from resources.common import dsn
from resources.common.errors import ValidationError
from resources.common.secrets import SecretBox, new_key


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("mysql://root:pw@db.internal:3306/app", "mysql+mysqldb"),
        ("mariadb://root@127.0.0.1/app", "mysql+mysqldb"),
        ("pgsql://u:p@pg/app", "postgresql+psycopg"),
        ("postgres://u@pg/app", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@pg/app", "postgresql+psycopg"),
        ("sqlite:////var/www/database/database.sqlite", "sqlite"),
    ],
)
def test_laravel_style_dsns_map_to_the_shipped_drivers(given: str, driver: str) -> None:
    assert dsn.kind_of(given) == "database"
    assert dsn.database_url(given).drivername == driver


def test_mysql_dsns_talk_utf8mb4_like_laravel() -> None:
    assert dsn.database_url("mysql://root@h/app").query["charset"] == "utf8mb4"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("oracle://u:p@h/db", "unknown driver 'oracle'"),
        ("mongodb+srv://h/db", "unknown driver 'mongodb'"),
        ("just-a-path.sqlite", "not a DSN"),
        ("mysql://h", "has no database name"),
        ("pgsql:///app", "has no host"),
        ("sqlite://", "needs a file path"),
        ("sqlite://db:0/app", "needs a file path"),  # a host and port: the third slash lost
        ("redis://h:99999/0", "could not be parsed"),
        ("redis://h:6379/zero", "must be a number"),
    ],
)
def test_bad_dsns_are_refused_with_a_specific_reason(given: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        dsn.validate(given)


def test_errors_never_repeat_the_password() -> None:
    with pytest.raises(ValidationError) as raised:
        dsn.validate("mysql://root:hunter2@h")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("mysql://root:hunter2@h/app", "mysql://root:***@h/app"),
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("pgsql://u@h/app?sslmode=require&password=hunter2", "pgsql://u@h/app?sslmode=require&password=***"),
        ("sqlite:////srv/app/database.sqlite", "sqlite:////srv/app/database.sqlite"),
        ("env:SHOP_DB", "env:SHOP_DB"),
    ],
)
def test_masking_hides_passwords_and_keeps_the_rest(given: str, shown: str) -> None:
    assert dsn.mask(given) == shown


def test_store_seals_only_dsns_that_carry_a_secret() -> None:
    secret_box = SecretBox(new_key())
    sealed = dsn.store(secret_box, "mysql://root:hunter2@h/app")
    assert sealed.startswith("fernet:") and "hunter2" not in sealed
    assert secret_box.reveal(sealed) == "mysql://root:hunter2@h/app"
    assert dsn.store(secret_box, "sqlite:////srv/db.sqlite") == "sqlite:////srv/db.sqlite"
    assert dsn.store(secret_box, "env:SHOP_DB") == "env:SHOP_DB"
    assert dsn.describe(secret_box, sealed) == "mysql://root:***@h/app"
    assert dsn.describe(secret_box, sealed, include_secrets=True) == "mysql://root:hunter2@h/app"
