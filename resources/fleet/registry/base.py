"""What the three registries (projects, Redis connections, customers) share.

Each registry maps an operator's *spec* (what was asked for, secrets as given) onto one
row, with secret fields sealed on the way in. Comparing a spec with a row goes through
`SecretBox.same`, so a declarative apply of the same file twice changes nothing even
though every sealing yields a new token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from resources.common.control.database import ControlDatabase
from resources.common.control.models import Base
from resources.common.errors import AlreadyExistsError, NotFoundError
from resources.common.secrets import SecretBox

Row = TypeVar("Row", bound=Base)
Spec = TypeVar("Spec")


class Registry(Generic[Row, Spec]):
    model: ClassVar[type[Base]]
    key_column: ClassVar[str]
    noun: ClassVar[str]  # what one entry is called in messages
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, db: ControlDatabase, secret_box: SecretBox | None = None) -> None:
        self.db = db
        self.secret_box = secret_box or SecretBox.from_env()

    # -- to be provided by each registry -------------------------------------------
    def validate(self, spec: Spec, session: Session) -> None:
        """Raise ValidationError/NotFoundError when the spec does not fit."""

    def fields(self, spec: Spec) -> dict[str, Any]:
        """The row's columns for a spec, secrets still as given."""
        return {k: v for k, v in asdict(spec).items()}

    def seal(self, name: str, value: Any) -> Any:
        """The stored form of one secret field."""
        return self.secret_box.store(value) if value is not None else None

    def spec_of(self, row: Row) -> Spec:
        raise NotImplementedError

    def view(self, row: Row, *, include_secrets: bool = False) -> dict[str, Any]:
        raise NotImplementedError

    # -- shared behaviour ------------------------------------------------------------
    @property
    def _key(self) -> sa.orm.InstrumentedAttribute:
        return getattr(self.model, self.key_column)

    def _find(self, session: Session, key: str) -> Row | None:
        return session.scalar(sa.select(self.model).where(self._key == key))

    def _get(self, session: Session, key: str) -> Row:
        row = self._find(session, key)
        if row is None:
            raise NotFoundError(f"unknown {self.noun} {key!r}")
        return row

    def _stored(self, spec: Spec) -> dict[str, Any]:
        return {
            name: self.seal(name, value) if name in self.secret_fields else value
            for name, value in self.fields(spec).items()
        }

    def add(self, spec: Spec) -> dict[str, Any]:
        with self.db.session() as session:
            self.validate(spec, session)
            key = getattr(spec, self.key_column)
            if self._find(session, key) is not None:
                raise AlreadyExistsError(f"{self.noun} {key!r} already exists")
            row = self.model(**self._stored(spec))
            session.add(row)
            session.flush()
            return self.view(row)

    def put(self, spec: Spec, session: Session) -> None:
        """Create or update to match the spec (used by `fleet apply`)."""
        self.validate(spec, session)
        row = self._find(session, getattr(spec, self.key_column))
        if row is None:
            session.add(self.model(**self._stored(spec)))
            return
        for name in self.changes(row, spec):
            value = self.fields(spec)[name]
            setattr(row, name, self.seal(name, value) if name in self.secret_fields else value)

    def changes(self, row: Row, spec: Spec) -> list[str]:
        """Names of the fields that storing `spec` over `row` would change."""
        return [
            name
            for name, given in self.fields(spec).items()
            if not self._same(name, getattr(row, name), given)
        ]

    def _same(self, name: str, stored: Any, given: Any) -> bool:
        if name not in self.secret_fields or stored is None or given is None:
            return stored == given
        if isinstance(given, dict):
            return stored.keys() == given.keys() and all(self.secret_box.same(stored[k], given[k]) for k in given)
        return self.secret_box.same(stored, given)

    def get(self, key: str, *, include_secrets: bool = False) -> dict[str, Any]:
        with self.db.session() as session:
            return self.view(self._get(session, key), include_secrets=include_secrets)

    def spec(self, key: str) -> Spec:
        with self.db.session() as session:
            return self.spec_of(self._get(session, key))

    def list(self, *, include_secrets: bool = False) -> list[dict[str, Any]]:
        with self.db.session() as session:
            rows = session.scalars(sa.select(self.model).order_by(self._key))
            return [self.view(row, include_secrets=include_secrets) for row in rows]

    def keys(self, *, enabled_only: bool = False) -> list[str]:
        query = sa.select(self._key).order_by(self._key)
        if enabled_only:
            query = query.where(self.model.enabled.is_(True))
        with self.db.session() as session:
            return list(session.scalars(query))

    def specs(self) -> list[Spec]:
        with self.db.session() as session:
            return [self.spec_of(row) for row in session.scalars(sa.select(self.model).order_by(self._key))]

    def remove(self, key: str, session: Session | None = None) -> None:
        if session is None:
            with self.db.session() as own:
                own.delete(self._get(own, key))
        else:
            session.delete(self._get(session, key))

    def remove_all_but(self, keep: Iterable[str], session: Session) -> list[str]:
        gone = [key for key in session.scalars(sa.select(self._key)) if key not in set(keep)]
        for key in gone:
            self.remove(key, session)
        return gone


def timestamps(row: Any) -> dict[str, str | None]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {"created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}
