"""The connection to an index's PostgreSQL database: statements with their errors turned into
StorageErrors, transactions, the schema brought up to date, settings, and advisory locks.

Locks (advisory, so they vanish with the session that held them: a killed indexer leaves
none behind):
- RUN_LOCK, shared by every indexing run, taken exclusively by what must run alone (a
  rebuild, a repair, dropping vectors no chunk uses);
- COMMIT_LOCK, taken by each write transaction, so commits take turns and never deadlock;
- one lock per text hash an indexer is embedding, so others wait for its vector instead of
  paying for it again (writer.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ...errors import IndexNotFoundError, StorageError
from .connection import connect, database_error, shown

# The first key of semsearch's two-key advisory locks (the second names the lock).
LOCK_SPACE = 0x5E5E
MIGRATION_LOCK, RUN_LOCK, COMMIT_LOCK = 1, 2, 3


def like_prefix(path: str) -> str:
    """A LIKE pattern for everything under the folder `path`."""
    prefix = path.rstrip("/") + "/"
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresDatabase:
    """One connection to an index database. Not shared between threads."""

    # Whether this connection's indexing run loads without the HNSW index (chunks.py).
    index_deferred = False

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.location = shown(url)
        self.conn = connect(url)
        self._depth = 0
        self._dimensions: int | None = None
        try:
            from .migrations import TABLE

            if not create and self._applied(TABLE) is None:
                raise IndexNotFoundError(
                    f"No index in the database {self.location}.", hint="Create one by adding folders to it.", index=self.location
                )
            self._migrate()
            from pgvector.psycopg import register_vector

            register_vector(self.conn)
            self.readonly = not self.scalar("SELECT has_table_privilege('documents', 'INSERT')")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()

    # -- statements -------------------------------------------------------------------------

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        import psycopg

        try:
            return self.conn.execute(sql, parameters)
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None

    def rows(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple]:
        return self.execute(sql, parameters).fetchall()

    def scalar(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        row = self.execute(sql, parameters).fetchone()
        return row[0] if row else None

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        import psycopg

        if not rows:
            return
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write, taking its turn among every writer's (COMMIT_LOCK); nested ones
        are savepoints of the outer one."""
        import psycopg

        try:
            with self.conn.transaction():
                self._depth += 1
                try:
                    if self._depth == 1:
                        self.conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_SPACE, COMMIT_LOCK])
                    yield
                finally:
                    self._depth -= 1
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads that see one committed state."""
        import psycopg

        try:
            with self.conn.transaction():
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None

    # -- the schema -------------------------------------------------------------------------

    def _migrate(self) -> None:
        from .migrations import MIGRATIONS, TABLE

        applied = self._applied(TABLE)
        if applied is not None and all(name in applied for name, _ in MIGRATIONS):
            return
        import psycopg

        try:
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_SPACE, MIGRATION_LOCK])
                self.conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
                done = {row[0] for row in self.conn.execute(f"SELECT name FROM {TABLE}")}
                for name, sql in MIGRATIONS:
                    if name not in done:
                        self.conn.execute(sql)
                        self.conn.execute(f"INSERT INTO {TABLE} (name) VALUES (%s)", [name])
        except psycopg.Error as exc:
            error = database_error(exc, self.url)
            if error.code == "permission":
                raise StorageError(
                    f"The index database {self.location} needs its schema set up or upgraded, which this role may not do: {error.message}",
                    hint="Open it once with a role that owns the schema (and may create the vector and unaccent extensions).",
                    code="needs_upgrade", index=self.location,
                ) from None
            raise error from None

    def _applied(self, table: str) -> set[str] | None:
        if not self.scalar("SELECT to_regclass(%s) IS NOT NULL", [table]):
            return None
        return {row[0] for row in self.rows(f"SELECT name FROM {table}")}

    # -- settings ---------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self.rows("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, str]) -> None:
        self.executemany(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            list(values.items()),
        )
        if "dimensions" in values:
            self._dimensions = None
            if values["dimensions"] and not self.index_deferred:
                from .migrations import vector_index_sql

                # In the same transaction as the size: the index exists once the size is known.
                self.execute(vector_index_sql(int(values["dimensions"])))

    def dimensions(self) -> int | None:
        """The index's vector size, once known (another process's first commit may set it)."""
        if self._dimensions is None:
            value = self.scalar("SELECT value FROM meta WHERE key = 'dimensions'")
            self._dimensions = int(value) if value else None
        return self._dimensions

    # -- locks ------------------------------------------------------------------------------

    def lock_run(self, timeout: float) -> bool:
        """Take RUN_LOCK shared, waiting up to `timeout` seconds; whether it was taken."""
        return self._wait_for("pg_advisory_lock_shared", timeout)

    def unlock_run(self) -> None:
        if not self.conn.closed:
            self.execute("SELECT pg_advisory_unlock_shared(%s, %s)", [LOCK_SPACE, RUN_LOCK])

    def lock_run_alone(self, timeout: float) -> bool:
        """Take RUN_LOCK exclusively (no other run under way), waiting up to `timeout`."""
        return self._wait_for("pg_advisory_lock", timeout)

    def unlock_run_alone(self) -> None:
        if not self.conn.closed:
            self.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, RUN_LOCK])

    def _wait_for(self, function: str, timeout: float) -> bool:
        import psycopg

        if timeout <= 0:
            try_function = function.replace("pg_advisory_lock", "pg_try_advisory_lock")
            return bool(self.scalar(f"SELECT {try_function}(%s, %s)", [LOCK_SPACE, RUN_LOCK]))
        try:
            with self.conn.transaction():
                self.conn.execute(f"SET LOCAL lock_timeout = {max(int(timeout * 1000), 1)}")
                self.conn.execute(f"SELECT {function}(%s, %s)", [LOCK_SPACE, RUN_LOCK])
            return True
        except psycopg.errors.LockNotAvailable:
            return False
        except psycopg.Error as exc:
            raise database_error(exc, self.url) from None
