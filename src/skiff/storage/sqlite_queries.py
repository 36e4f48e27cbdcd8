"""The SQL of the SQLite store: schema, statements and the read queries.

The schema and the reasoning behind each query are described in
:mod:`skiff.storage.sqlite`; this module holds the text of the statements and
the functions that run a read on a given connection (so the same code serves
the event-loop connection and a worker thread's snapshot connection).
"""

from __future__ import annotations

import sqlite3

from skiff.storage.interface import Event, KeyValue, RangeResult

PUT, DELETE = 0, 1
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    revision        INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL,
    type            INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB
);
CREATE INDEX IF NOT EXISTS log_key ON log (key, revision);
CREATE TABLE IF NOT EXISTS current (
    key          TEXT PRIMARY KEY,
    mod_revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('compacted', 0);
"""

GET_LATEST = (
    "SELECT l.create_revision, l.revision, l.value FROM current c"
    " JOIN log l ON l.revision = c.mod_revision WHERE c.key = ?"
)
GET_AT = (
    "SELECT type, create_revision, revision, value FROM log"
    " WHERE key = ? AND revision <= ? ORDER BY revision DESC LIMIT 1"
)
INSERT_LOG = (
    "INSERT INTO log (revision, key, type, create_revision, prev_revision, value)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
KEY_IS_LIVE = "SELECT 1 FROM current WHERE key = ?"
INSERT_CURRENT = "INSERT INTO current (key, mod_revision) VALUES (?, ?)"
MOVE_CURRENT = "UPDATE current SET mod_revision = ? WHERE key = ?"
DELETE_CURRENT = "DELETE FROM current WHERE key = ?"
#: (compacted revision, newest log revision); the head is the larger of the two
READ_HEAD = "SELECT (SELECT value FROM meta WHERE name = 'compacted'), (SELECT max(revision) FROM log)"
SET_COMPACTED = "UPDATE meta SET value = ? WHERE name = 'compacted'"
# Compacting (old, new]: drop the rows superseded by a row in (old, new]
# (each row is the prev of at most one row), then the DELETE rows in it.
COMPACT_SUPERSEDED = (
    "DELETE FROM log WHERE revision IN (SELECT prev_revision FROM log"
    " WHERE revision > ? AND revision <= ? AND prev_revision > 0)"
)
COMPACT_TOMBSTONES = "DELETE FROM log WHERE revision > ? AND revision <= ? AND type = 1"

# Range queries come in two shapes: with an upper key bound (almost always)
# and without one (empty prefix); named parameters :lower :after :upper :rev :limit.
_RANGE_LATEST = (
    "SELECT c.key, l.create_revision, l.revision, l.value FROM current c"
    " JOIN log l ON l.revision = c.mod_revision"
    " WHERE c.key >= :lower AND c.key > :after {upper} ORDER BY c.key LIMIT :limit"
)
_COUNT_LATEST = "SELECT count(*) FROM current c WHERE c.key >= :lower AND c.key > :after {upper}"
# At a past revision a key is live when its newest row at or below the
# revision is a PUT: walk log_key in key order (so LIMIT stops the scan early)
# and keep PUT rows with no newer row of the same key at or below :rev.
_LIVE_AT = (
    " FROM log l WHERE l.key >= :lower AND l.key > :after {upper}"
    " AND l.revision <= :rev AND l.type = 0"
    " AND NOT EXISTS (SELECT 1 FROM log n WHERE n.key = l.key"
    " AND n.revision > l.revision AND n.revision <= :rev)"
)
_RANGE_AT = "SELECT l.key, l.create_revision, l.revision, l.value" + _LIVE_AT + " ORDER BY l.key LIMIT :limit"
# Counting at a past revision from scratch would scan all history in the
# range; instead correct today's count by the keys written since :rev
# (bounded by the retained history): + live then, - live now.
_COUNT_CHANGE_SINCE = (
    "SELECT coalesce(sum("
    "((SELECT p.type FROM log p WHERE p.key = k.key AND p.revision <= :rev"
    " ORDER BY p.revision DESC LIMIT 1) IS 0)"
    " - EXISTS (SELECT 1 FROM current c WHERE c.key = k.key)), 0)"
    " FROM (SELECT DISTINCT key FROM log NOT INDEXED WHERE revision > :rev"
    " AND key >= :lower AND key > :after {upper}) AS k"
)
_HISTORY = (
    "SELECT l.revision, l.key, l.type, l.create_revision, l.value, l.prev_revision,"
    " p.create_revision, p.value"
    " FROM log AS l NOT INDEXED LEFT JOIN log AS p ON p.revision = l.prev_revision"
    " WHERE l.revision > :after AND l.revision <= :rev AND l.key >= :lower {upper}"
    " ORDER BY l.revision LIMIT :limit"
)


def _variants(sql: str, column: str) -> tuple[str, str]:
    """(``sql`` with an upper bound on ``column``, ``sql`` without one)."""
    return sql.format(upper=f"AND {column} < :upper"), sql.format(upper="")


RANGE_LATEST_SQL = _variants(_RANGE_LATEST, "c.key")
COUNT_LATEST_SQL = _variants(_COUNT_LATEST, "c.key")
RANGE_AT_SQL = _variants(_RANGE_AT, "l.key")
COUNT_CHANGE_SINCE_SQL = _variants(_COUNT_CHANGE_SINCE, "key")
HISTORY_SQL = _variants(_HISTORY, "l.key")


def select_range(
    db: sqlite3.Connection,
    prefix: str,
    start_after: str,
    limit: int,
    revision: int,
    *,
    latest: bool,
    count: bool = True,
) -> RangeResult:
    """Run a range read on ``db``; ``latest`` says ``revision`` is the head (use ``current``)."""
    upper = prefix_upper_bound(prefix)
    variant = 1 if upper is None else 0
    args = {"lower": prefix, "after": start_after, "upper": upper, "rev": revision}
    # one extra row tells whether there is more
    rows = db.execute(
        (RANGE_LATEST_SQL if latest else RANGE_AT_SQL)[variant], {**args, "limit": limit + 1 if limit else -1}
    ).fetchall()
    more = bool(limit) and len(rows) > limit
    if more:
        rows = rows[:limit]
    total = len(rows)
    if more and count:
        total = db.execute(COUNT_LATEST_SQL[variant], args).fetchone()[0]
        if not latest:
            total += db.execute(COUNT_CHANGE_SINCE_SQL[variant], args).fetchone()[0]
    kvs = [KeyValue(r[0], r[3], r[1], r[2]) for r in rows]
    return RangeResult(kvs=kvs, revision=revision, more=more, count=total)


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``.

    ``None`` when there is none (empty prefix, or only U+10FFFF characters).
    SQLite compares TEXT as UTF-8 bytes, whose order is code point order, so
    incrementing the last code point gives an exact half-open key range.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if 0xD800 <= last <= 0xDFFF:  # surrogates cannot be stored; skip past them
            last = 0xE000
        if last <= 0x10FFFF:
            return "".join(chars) + chr(last)
    return None


def read_history(db: sqlite3.Connection, prefix: str, after: int, upto: int, limit: int) -> list[Event]:
    """At most ``limit`` events under ``prefix`` with ``after < revision <= upto``, oldest first."""
    upper = prefix_upper_bound(prefix)
    args = {"after": after, "rev": upto, "lower": prefix, "upper": upper, "limit": limit}
    rows = db.execute(HISTORY_SQL[1 if upper is None else 0], args).fetchall()
    events = []
    for revision, key, kind, create_revision, value, prev_revision, prev_create, prev_value in rows:
        prev = KeyValue(key, prev_value, prev_create, prev_revision) if prev_revision else None
        if kind == DELETE:
            assert prev is not None, f"DELETE at {revision} lost its previous row"
            events.append(Event("DELETE", KeyValue(key, prev.value, create_revision, revision), prev))
        else:
            events.append(Event("PUT", KeyValue(key, value, create_revision, revision), prev))
    return events
