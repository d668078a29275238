"""The fleet as one YAML file: `fleetops fleet apply` and `fleetops fleet export`.

A section present in the file (`projects`, `redis`, `customers`) is authoritative: entries
missing from it are removed; a section left out is not touched. Apply runs in one
transaction, so a file with one bad entry changes nothing. Secrets in an export are
`env:` references or sealed `fernet:` tokens (usable only with the same key), unless the
operator asks for them in clear.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from resources.common.control.database import ControlDatabase
from resources.common.errors import ValidationError
from resources.common.secrets import SecretBox, is_sealed
from resources.fleet.registry.base import Registry
from resources.fleet.registry.customers import CustomerRegistry, CustomerSpec
from resources.fleet.registry.projects import ProjectRegistry, ProjectSpec
from resources.fleet.registry.redis_connections import RedisRegistry, RedisSpec

# section name -> (registry class, spec class); projects first, connections refer to them.
SECTIONS: dict[str, tuple[type[Registry], type]] = {
    "projects": (ProjectRegistry, ProjectSpec),
    "redis": (RedisRegistry, RedisSpec),
    "customers": (CustomerRegistry, CustomerSpec),
}


@dataclass
class Plan:
    """What an apply does, section by section."""

    add: list[tuple[str, str]] = field(default_factory=list)
    change: list[tuple[str, str, list[str]]] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.remove)

    def lines(self) -> list[str]:
        return (
            [f"+ {section} {key}" for section, key in self.add]
            + [f"~ {section} {key}: {', '.join(names)}" for section, key, names in self.change]
            + [f"- {section} {key}" for section, key in self.remove]
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "add": [{"section": s, "key": k} for s, k in self.add],
            "change": [{"section": s, "key": k, "fields": f} for s, k, f in self.change],
            "remove": [{"section": s, "key": k} for s, k in self.remove],
        }


def _spec(section: str, spec_class: type, key: str, body: Any) -> Any:
    where = f"{section}.{key}"
    if not isinstance(body, dict):
        raise ValidationError(f"{where}: expected a mapping of fields")
    names = {f.name for f in dataclasses.fields(spec_class)}
    key_field = dataclasses.fields(spec_class)[0].name
    unknown = sorted(set(body) - names)
    if unknown:
        known = ", ".join(sorted(names - {key_field}))
        raise ValidationError(f"{where}: unknown field {unknown[0]!r} (known: {known})")
    hints = typing.get_type_hints(spec_class)
    for name, value in body.items():
        if not _fits(value, hints[name]):
            raise ValidationError(f"{where}.{name}: expected {_type_name(hints[name])}, got {type(value).__name__}")
    try:
        return spec_class(**{key_field: str(key), **body})
    except TypeError as exc:
        raise ValidationError(f"{where}: {exc}") from None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value has the type a spec field declares (str, bool, dict, optional)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)
    for option in options:
        origin = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return True
        if origin is dict and isinstance(value, dict):
            value_type = typing.get_args(option)[1]
            return all(
                isinstance(k, str) and (value_type is Any or isinstance(v, value_type)) for k, v in value.items()
            )
        if origin in (str, bool, int) and type(value) is origin:
            return True
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "").replace("NoneType", "None")


def parse(text: str) -> dict[str, dict[str, Any]]:
    """Specs by section and key, from the file's text; strict about shape and field names."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ValidationError(f"the fleet file is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise ValidationError("the fleet file must be a mapping with projects, redis and/or customers")
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ValidationError(f"unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    parsed = {}
    for section, body in document.items():
        body = body or {}
        if not isinstance(body, dict):
            raise ValidationError(f"{section}: expected a mapping of name -> fields")
        spec_class = SECTIONS[section][1]
        parsed[section] = {str(key): _spec(section, spec_class, key, value) for key, value in body.items()}
    return parsed


class Fleet:
    """The three registries together, for whole-fleet operations."""

    def __init__(self, db: ControlDatabase, secret_box: SecretBox | None = None) -> None:
        self.db = db
        self.secret_box = secret_box or SecretBox.from_env()
        self.registries: dict[str, Registry] = {name: cls(db, self.secret_box) for name, (cls, _) in SECTIONS.items()}

    def apply(self, text: str, *, dry_run: bool = False) -> Plan:
        """Make the registry match the file; with `dry_run`, only say what would change."""
        wanted = parse(text)
        plan = Plan()
        with self.db.session() as session:
            for section in (name for name in SECTIONS if name in wanted):
                specs = wanted[section]
                registry = self.registries[section]
                existing = {getattr(row, registry.key_column): row for row in session.query(registry.model)}
                for key, spec in specs.items():
                    registry.validate(spec, session)
                    if key not in existing:
                        plan.add.append((section, key))
                    elif changed := registry.changes(existing[key], spec):
                        plan.change.append((section, key, changed))
                plan.remove.extend((section, key) for key in sorted(set(existing) - set(specs)))
                if not dry_run:
                    for spec in specs.values():
                        registry.put(spec, session)
                        session.flush()
                    registry.remove_all_but(specs, session)
                    session.flush()
            if dry_run:
                session.rollback()
        return plan

    def export(self, *, include_secrets: bool = False, sections: Sequence[str] | None = None,
               omit_sealed: bool = False) -> str:
        """The registry (or some sections of it) as a fleet file.

        Sealed secrets are written as their `fernet:` tokens, in clear with `include_secrets`,
        or left out altogether with `omit_sealed` (`env:` references are not secrets and stay).
        """
        document = {}
        for section, registry in self.registries.items():
            if sections is not None and section not in sections:
                continue
            entries = {}
            for spec in registry.specs():
                body = dataclasses.asdict(spec)
                key = body.pop(registry.key_column)
                entries[key] = self._secrets_out(body, registry, include_secrets, omit_sealed)
            document[section] = entries
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)

    def merge(self, text: str, section: str) -> Plan:
        """Add or update one section's entries by name, removing nothing (an import, not an apply).

        A secret field missing from an entry keeps the stored value, so importing an export made
        without secrets changes nothing. One transaction: one bad entry and nothing changes.
        """
        wanted = parse(text)
        others = sorted(set(wanted) - {section})
        if others:
            raise ValidationError(f"only a {section!r} section can be imported here, found {others[0]!r}")
        registry = self.registries[section]
        plan = Plan()
        with self.db.session() as session:
            existing = {getattr(row, registry.key_column): row for row in session.query(registry.model)}
            for key, spec in wanted.get(section, {}).items():
                row = existing.get(key)
                if row is not None:
                    kept = {f: getattr(row, f) for f in registry.secret_fields if getattr(spec, f, None) is None}
                    spec = dataclasses.replace(spec, **kept)
                registry.validate(spec, session)
                if row is None:
                    plan.add.append((section, key))
                elif changed := registry.changes(row, spec):
                    plan.change.append((section, key, changed))
                registry.put(spec, session)
                session.flush()
        return plan

    def _secrets_out(self, body: dict[str, Any], registry: Registry, include_secrets: bool,
                     omit_sealed: bool = False) -> dict[str, Any]:
        def out(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: out(v) for k, v in value.items()}
            if include_secrets and isinstance(value, str) and is_sealed(value):
                return self.secret_box.reveal(value)
            return value

        def left_out(name: str, value: Any) -> bool:
            return omit_sealed and not include_secrets and name in registry.secret_fields and (
                value is None or (isinstance(value, str) and is_sealed(value)))

        return {name: out(value) if name in registry.secret_fields else value
                for name, value in body.items() if not left_out(name, value)}
