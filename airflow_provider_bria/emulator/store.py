"""The emulator's state: SQLite (standard library), temporary by default or in a file with ``--state-file``.

Every object is one row holding its JSON document plus the few columns the emulator queries by. One
re-entrant lock serialises access to the single connection, and every mutation runs in one ``BEGIN
IMMEDIATE`` transaction (:meth:`Store.tx`): a fault injected after a handler ran, an exception halfway
through a handler, or a restart can never leave a half-made object. Nothing slow (network, Pillow) may
run while the lock is held.

Ids come from counters that are never reset, so an id is never reused, even across ``/_emulator/reset``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: table -> indexed columns (besides ``id`` and ``doc``).
TABLES: dict[str, tuple[str, ...]] = {
    "projects": (),
    "datasets": ("project_id",),
    "images": ("dataset_id", "sha256"),
    "models": ("project_id", "dataset_id"),
    "jobs": (),
    "bulk_jobs": (),
}
_TEXT_ID_TABLES = frozenset({"jobs"})

#: First id of each object kind: distinct ranges make an id passed to the wrong endpoint a 404.
ID_BASES: dict[str, int] = {
    "projects": 100_001,
    "datasets": 200_001,
    "models": 300_001,
    "images": 1_000_001,
}

#: SQLite page cache, KiB (hot objects stay in memory; big image blobs may spill to disk).
CACHE_KIB = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (id TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, content_type TEXT NOT NULL, data BLOB, recipe TEXT,
    available_at REAL NOT NULL DEFAULT 0, owner TEXT
);
CREATE INDEX IF NOT EXISTS files_owner ON files(owner);
"""


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


#: The integer range SQLite can bind; ids outside it are unknown objects.
SQLITE_MIN_INT, SQLITE_MAX_INT = -(2**63), 2**63 - 1

class Tx:
    """Typed helpers over the connection, valid inside :meth:`Store.tx` or :meth:`Store.read`.

    :param db: the SQLite connection.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    # ---- documents -------------------------------------------------------------------------
    def get(self, table: str, obj_id: int | str) -> dict[str, Any] | None:
        """One document, or ``None``.

        :param table: one of :data:`TABLES`.
        :param obj_id: its id.
        """
        if isinstance(obj_id, int) and not SQLITE_MIN_INT <= obj_id <= SQLITE_MAX_INT:
            return None  # no stored id is that large (SQLite cannot even bind it)
        row = self._db.execute(f"SELECT doc FROM {table} WHERE id = ?", (obj_id,)).fetchone()  # noqa: S608
        return json.loads(row[0]) if row else None

    def put(self, table: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace a document (its ``id`` key is the primary key).

        :param table: one of :data:`TABLES`.
        :param doc: the document.
        """
        cols = TABLES[table]
        names = ", ".join(("id", *cols, "doc"))
        marks = ", ".join("?" * (len(cols) + 2))
        values = (doc["id"], *(doc.get(c) for c in cols), _dumps(doc))
        self._db.execute(f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", values)  # noqa: S608
        return doc

    def delete(self, table: str, obj_id: int | str) -> None:
        """Delete a document.

        :param table: one of :data:`TABLES`.
        :param obj_id: its id.
        """
        self._db.execute(f"DELETE FROM {table} WHERE id = ?", (obj_id,))  # noqa: S608

    def delete_where(self, table: str, column: str, value: Any) -> None:
        """Delete every document whose indexed ``column`` equals ``value``.

        :param table: one of :data:`TABLES`.
        :param column: an indexed column of that table.
        :param value: the value.
        """
        if column not in TABLES[table]:
            raise KeyError(column)
        self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (value,))  # noqa: S608

    def select(self, table: str, **where: Any) -> list[dict[str, Any]]:
        """Documents matching indexed columns, in id order.

        :param table: one of :data:`TABLES`.
        :param where: ``column=value`` filters on indexed columns.
        """
        sql, args = self._where(table, where)
        rows = self._db.execute(f"SELECT doc FROM {table}{sql} ORDER BY id", args).fetchall()  # noqa: S608
        return [json.loads(r[0]) for r in rows]

    def count(self, table: str, **where: Any) -> int:
        """Number of documents matching indexed columns.

        :param table: one of :data:`TABLES`.
        :param where: ``column=value`` filters on indexed columns.
        """
        sql, args = self._where(table, where)
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}{sql}", args).fetchone()[0])  # noqa: S608

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query (admin reports).

        :param sql: the query.
        :param args: its parameters.
        """
        return self._db.execute(sql, args).fetchall()

    @staticmethod
    def _where(table: str, where: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        for column in where:
            if column not in TABLES[table]:
                raise KeyError(column)
        if not where:
            return "", ()
        return " WHERE " + " AND ".join(f"{c} = ?" for c in where), tuple(where.values())

    # ---- counters ----------------------------------------------------------------------------
    def counter(self, name: str) -> int:
        """The value of a counter (0 when never set).

        :param name: the counter.
        """
        row = self._db.execute("SELECT value FROM counters WHERE id = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def incr(self, name: str, by: int = 1) -> int:
        """Increment a counter and return its new value.

        :param name: the counter.
        :param by: the increment.
        """
        self._db.execute(
            "INSERT INTO counters (id, value) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET value = value + ?",
            (name, by, by),
        )
        return self.counter(name)

    def next_id(self, kind: str) -> int:
        """A fresh id for an object kind (never reused).

        :param kind: a key of :data:`ID_BASES`.
        """
        return ID_BASES[kind] + self.incr(f"id:{kind}") - 1

    # ---- files -------------------------------------------------------------------------------
    def put_file(
        self,
        name: str,
        content_type: str,
        *,
        data: bytes | None = None,
        recipe: dict[str, Any] | None = None,
        available_at: float = 0.0,
        owner: str | None = None,
    ) -> None:
        """Store a file served at ``/_emulator/files/{name}``: its bytes, or a recipe to render it from.

        :param name: the file name (unique).
        :param content_type: its media type.
        :param data: the bytes.
        :param recipe: how to render it (see :mod:`airflow_provider_bria.emulator.media`).
        :param available_at: epoch seconds before which the file answers 404.
        :param owner: ``"image:<id>"`` or ``"dataset:<id>"``, so deleting the owner deletes the file.
        """
        self._db.execute(
            "INSERT OR REPLACE INTO files (id, content_type, data, recipe, available_at, owner) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, content_type, data, _dumps(recipe) if recipe is not None else None, available_at, owner),
        )

    def get_file(self, name: str) -> dict[str, Any] | None:
        """A stored file: ``content_type``, ``data``, ``recipe``, ``available_at``; or ``None``.

        :param name: the file name.
        """
        row = self._db.execute(
            "SELECT content_type, data, recipe, available_at FROM files WHERE id = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return {
            "content_type": row[0],
            "data": row[1],
            "recipe": json.loads(row[2]) if row[2] else None,
            "available_at": row[3],
        }

    def copy_file(self, source: str, target: str, *, owner: str | None) -> None:
        """Copy a stored file under a new name and owner (clones).

        :param source: the existing file name.
        :param target: the new file name.
        :param owner: the new owner.
        """
        self._db.execute(
            "INSERT OR REPLACE INTO files (id, content_type, data, recipe, available_at, owner) "
            "SELECT ?, content_type, data, recipe, available_at, ? FROM files WHERE id = ?",
            (target, owner, source),
        )

    def delete_files(self, owner: str) -> None:
        """Delete every file of an owner.

        :param owner: ``"image:<id>"`` or ``"dataset:<id>"``.
        """
        self._db.execute("DELETE FROM files WHERE owner = ?", (owner,))

    # ---- reset -------------------------------------------------------------------------------
    def clear(self) -> None:
        """Delete every object, file and counter except the id counters."""
        for table in TABLES:
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608
        self._db.execute("DELETE FROM files")
        self._db.execute("DELETE FROM counters WHERE id NOT LIKE 'id:%'")


class Store:
    """The SQLite state and its lock.

    :param path: a database file, or ``None`` for a temporary database that vanishes with the process.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        # Without a path: SQLite's private temporary database ("" = on disk, deleted on close), so image
        # blobs beyond the page cache spill to disk instead of filling memory; nothing survives the process.
        self._db = sqlite3.connect(path or "", check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        else:
            self._db.execute("PRAGMA journal_mode=MEMORY")
            self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        for table, cols in TABLES.items():
            id_type = "TEXT" if table in _TEXT_ID_TABLES else "INTEGER"
            extra = "".join(f", {c} {'TEXT' if c == 'sha256' else 'INTEGER'}" for c in cols)
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id {id_type} PRIMARY KEY{extra}, doc TEXT NOT NULL)")
            for c in cols:
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {table}_{c} ON {table}({c})")
        #: bumped by every reset, so background jobs started before it stop writing.
        self.epoch = 0

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """Read access (no transaction needed: the lock gives a consistent view)."""
        with self._lock:
            yield Tx(self._db)

    def reset(self) -> None:
        """Delete all state (id counters excepted) and invalidate running background jobs."""
        with self.tx() as tx:
            tx.clear()
            self.epoch += 1

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
