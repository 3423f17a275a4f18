"""Everything a store holds, as text: what an attacker with a dump would read."""

from __future__ import annotations

from typing import Any

import redis
from django.db import connection


def database_dump() -> str:
    """Every row of every table, as text."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from introspection)
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def redis_dump(db: int) -> bytes:
    """Every key of one Redis database, with its value."""
    client: Any = redis.Redis(host="127.0.0.1", port=6379, db=db)
    dump = b""
    for key in client.scan_iter():
        kind = client.type(key)
        dump += key
        if kind == b"string":
            dump += client.get(key) or b""
        elif kind == b"list":
            dump += b"".join(client.lrange(key, 0, -1))
        elif kind == b"hash":
            dump += b"".join(k + v for k, v in client.hgetall(key).items())
        elif kind == b"set":
            dump += b"".join(client.smembers(key))
        elif kind == b"zset":
            dump += b"".join(client.zrange(key, 0, -1))
    return dump
