"""Upserts built from the table definitions in `tickets.models`: one helper for every dialect.

`Upsert` is `INSERT ... ON CONFLICT (primary key) DO UPDATE` for one table, written with
SQLAlchemy's SQLite or PostgreSQL `insert` (chosen by the session's dialect) and compiled once per
dialect. The collector runs these for every device of every batch, so the compiled statement goes
straight to the driver instead of through SQLAlchemy's per-row type processing (which cost more
than the rest of the collector's hot path together): rows are encoded here, by column type.
SQLite (in-process) takes them as one executemany; PostgreSQL as ONE statement over a JSON array
of rows (`json_to_recordset`), since its executemany runs a statement per row on the server,
which made 500 rows cost 11 ms instead of 5.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from tickets.models import UTCDateTime

# Given the proposed row (`excluded`) and the stored one (the table's columns): what to set.
Updates = Callable[[Any, Any], Mapping[str, ColumnElement[Any]]]

_SQLITE = sqlite.dialect(paramstyle="qmark")


def _take_new(new: Any, stored: Any, columns: Sequence[str]) -> dict[str, ColumnElement[Any]]:
    """Every column in `columns` set to the proposed row's value."""
    return {name: new[name] for name in columns}


class Upsert:
    """Insert `columns` of `table`, or update the row with the same primary key as `updates` says
    (by default: every inserted column that is not part of the key takes the new value)."""

    def __init__(self, table: sa.Table, columns: Sequence[str], updates: Updates | None = None) -> None:
        unknown = [name for name in columns if name not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column {unknown[0]!r}")
        # The statement goes to the driver: SQLAlchemy does not fill in Python-side defaults.
        defaulted = [c.name for c in table.c if c.default is not None and c.name not in columns]
        if defaulted:
            raise ValueError(f"upsert into {table.name}: give {', '.join(defaulted)} (a column with a default)")
        self.table = table
        self.columns = tuple(columns)
        self.key = tuple(c.name for c in table.primary_key.columns)
        plain = [name for name in self.columns if name not in self.key]
        self._updates: Updates = updates or (lambda new, stored: _take_new(new, stored, plain))
        self._times = [i for i, n in enumerate(self.columns) if isinstance(table.c[n].type, UTCDateTime)]
        self._json = [i for i, n in enumerate(self.columns) if isinstance(table.c[n].type, sa.JSON)]
        self._compiled: dict[tuple[str, str], str] = {}
        self._positions = _picker(list(range(len(self.columns))))

    def run(self, session: Session, rows: Sequence[Sequence[Any]]) -> None:
        """Write `rows`, each the values of `columns` in that order (aware UTC datetimes for times,
        plain data for JSON)."""
        if not rows:
            return
        # The connection is asked for here, inside any savepoint just begun: the session emits
        # SAVEPOINT only when its connection is requested within the nested transaction.
        connection = session.connection()
        dialect = connection.dialect
        if dialect.name == "postgresql":
            records = [dict(zip(self.columns, row, strict=True)) for row in rows]
            connection.exec_driver_sql(self._sql(dialect), {"rows": orjson.dumps(records).decode()})
        else:
            connection.exec_driver_sql(self._sql(dialect), self._sqlite_rows(rows))

    def _sql(self, dialect: Dialect) -> str:
        which = (dialect.name, dialect.driver)
        text = self._compiled.get(which)
        if text is None:
            text = self._compiled[which] = self._compile(dialect)
        return text

    def _compile(self, dialect: Dialect) -> str:
        table = self.table
        if dialect.name == "postgresql":
            rows = sa.func.json_to_recordset(sa.cast(sa.bindparam("rows"), postgresql.JSON)).table_valued(
                *(sa.column(name, table.c[name].type) for name in self.columns)
            ).render_derived(name="r", with_types=True)
            insert: Any = postgresql.insert(table).from_select(
                list(self.columns), sa.select(*(rows.c[name] for name in self.columns)), include_defaults=False)
            target = dialect
        elif dialect.name == "sqlite":
            insert = sqlite.insert(table).values({name: sa.bindparam(name) for name in self.columns})
            target = _SQLITE
        else:
            raise ValueError(f"no upsert for the {dialect.name} dialect; edgewatch runs on SQLite and PostgreSQL")
        statement = insert.on_conflict_do_update(index_elements=list(self.key),
                                                 set_=dict(self._updates(insert.excluded, table.c)))
        compiled = statement.compile(dialect=target)
        if target is _SQLITE:  # positional parameters, in the table's column order
            self._positions = _picker([self.columns.index(name) for name in compiled.positiontup or ()])
        return str(compiled)

    def _sqlite_rows(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        texts: dict[datetime, str] = {}  # rows often share a time: each is formatted once
        out = []
        for row in rows:
            encoded = list(row)
            for i in self._times:
                value = row[i]
                if value is not None:
                    text = texts.get(value)
                    if text is None:
                        text = texts[value] = sqlite_time(value)
                    encoded[i] = text
            for i in self._json:
                value = row[i]
                if value is not None:
                    encoded[i] = json.dumps(value)
            out.append(self._positions(encoded))
        return out


def _picker(positions: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """Takes these positions of a row, as a tuple (`itemgetter` of one position gives the item alone)."""
    if len(positions) == 1:
        return lambda row: (row[positions[0]],)
    return itemgetter(*positions)


def sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's DateTime type stores on SQLite for an aware datetime (naive, UTC implied)."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; edgewatch stores aware UTC times")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
