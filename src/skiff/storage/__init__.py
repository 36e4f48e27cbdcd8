"""storage: the etcd-shaped revisioned key-value store under the API server.

    interface.py       the Backend protocol, KeyValue/Event/RangeResult, the error tree
    sqlite.py          SqliteBackend: the embedded default (SQLite WAL, in-process watch)
    sqlite_queries.py  its schema and SQL
    watch.py           in-process watch fan-out (replay from history, then live queues)
    compactor.py       AutoCompactor: keeps a bounded window of history (any backend)
"""
