"""Keyset pagination with OpenAI cursors, the same window the file stores compute.

Threads are keyed by ``(created, id)``, messages by ``seq`` (insertion order, which is the
file store's line order). ``after`` returns the items that follow the cursor in the requested
order; ``before`` the ``limit`` items closest before it, still in the requested order;
``has_more`` tells whether more items lie further in the direction of travel. An unknown
cursor is a 400 naming it (``jan.sdk.openai_shapes.cursor_window`` does the same for files).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import psycopg
from psycopg import sql

from jan.sdk.errors import InvalidRequest

Order = Literal["asc", "desc"]


async def _cursor_key(conn: psycopg.AsyncConnection, table: sql.Composable, key: Sequence[str],
                      scope: sql.Composable, scope_params: tuple[Any, ...], name: str,
                      cursor: str) -> tuple[Any, ...]:
    query = sql.SQL("SELECT {key} FROM {table} WHERE {scope} AND id = %s").format(
        key=sql.SQL(", ").join(map(sql.Identifier, key)), table=table, scope=scope)
    row = await (await conn.execute(query, (*scope_params, cursor))).fetchone()
    if row is None:
        raise InvalidRequest(f"Invalid '{name}': no object with id {cursor!r}", param=name)
    return tuple(row)


async def fetch_page(
    conn: psycopg.AsyncConnection, *, table: str, columns: sql.Composable, key: Sequence[str],
    scope: str, scope_params: tuple[Any, ...], limit: int, order: Order,
    after: str | None, before: str | None,
) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows of one page, in ``order``, and whether more exist beyond it."""
    if not 1 <= limit <= 100:
        raise InvalidRequest("Invalid 'limit': must be between 1 and 100", param="limit")
    tbl, where = sql.Identifier(table), sql.SQL(scope)
    key_sql = sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, key)))
    forward = order == "asc"
    query = sql.SQL("SELECT {cols} FROM {tbl} WHERE {where}").format(
        cols=columns, tbl=tbl, where=where)
    params: list[Any] = list(scope_params)
    for name, cursor, op in (("after", after, ">" if forward else "<"),
                             ("before", before, "<" if forward else ">")):
        if cursor is None:
            continue
        value = await _cursor_key(conn, tbl, key, where, scope_params, name, cursor)
        query += sql.SQL(" AND {key} {op} ({vals})").format(
            key=key_sql, op=sql.SQL(op), vals=sql.SQL(", ").join(sql.Placeholder() * len(key)))
        params += value
    # With only ``before``, walk away from the cursor (so LIMIT keeps the nearest rows),
    # then turn the page back into the requested order.
    reverse = before is not None and after is None
    direction = sql.SQL("ASC" if forward != reverse else "DESC")
    query += sql.SQL(" ORDER BY {keys} LIMIT %s").format(keys=sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(k), direction) for k in key))
    params.append(limit + 1)
    rows = await (await conn.execute(query, params)).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if reverse:
        rows.reverse()
    return rows, has_more
