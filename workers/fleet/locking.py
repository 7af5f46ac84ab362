"""Multi-row writes to ``HybridWorker`` that cannot deadlock each other or move a value backwards.

Ingestion (per group, per account), heartbeat/utilization updates and status refreshes all write
many worker rows at once, possibly at the same time in different Celery processes. Each batch here
first locks its rows with ``SELECT ... FOR UPDATE ORDER BY id`` (every writer takes its locks in the
same order, so no lock cycle can form on PostgreSQL; SQLite serialises writers with IMMEDIATE
transactions), then writes the whole batch in ONE statement:

    UPDATE workers_hybridworker SET col = v.col, ...
    FROM (SELECT column1 AS id, ... FROM (VALUES (...), (...))) AS v
    WHERE workers_hybridworker.id = v.id [AND guard]

which both PostgreSQL and SQLite (>= 3.33) run in one pass; Django's ``bulk_update`` would build a
``CASE WHEN id = ...`` per row and per column, which is quadratic in the batch size. Guards make
the write conditional: "only if newer" (a late, older answer never moves a worker backwards) or
"only if the status is still the one we read" (the conditional UPDATE behind status changes).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from django.db import connection, models, transaction

from workers.models import HybridWorker

BATCH = 2000


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def concrete_field(model: type[models.Model], field_name: str) -> models.Field[Any, Any]:
    """``get_field`` for a column of ``model`` (the stubs also allow a reverse relation, which has none)."""
    return cast("models.Field[Any, Any]", model._meta.get_field(field_name))


def column_name(model: type[models.Model], field_name: str) -> str:
    column = concrete_field(model, field_name).column
    assert column is not None  # a concrete field always has its column
    return column


def values_column_sql(index: int, name: str, field_name: str, model: type[models.Model] = HybridWorker) -> str:
    """``columnN AS name``, cast to the column's type on PostgreSQL (a VALUES column of NULLs is text)."""
    source = f"column{index}"
    if connection.vendor == "postgresql":
        field = model._meta.get_field(field_name)
        source = f"CAST({source} AS {field.db_type(connection)})"
    return f"{source} AS {qn(name)}"


def update_from_values(
    rows: Mapping[int, Mapping[str, Any]],
    fields: Sequence[str],
    *,
    keep_newer: str | None = None,
    expect: Mapping[str, str] | None = None,
    returning: bool = False,
    model: type[models.Model] = HybridWorker,
) -> list[int]:
    """One UPDATE for ``rows`` (pk -> field values); returns the pks written when ``returning``.

    ``keep_newer``: a datetime field in ``fields``; a row is written only when its new value is
    later than the stored one (or nothing is stored). ``expect``: {column: key in the row values}; a
    row is written only when the stored column still equals that value (e.g. the status we read).
    ``model``: the table to write (hybrid workers unless told; ``SignalSpan`` uses it too, under
    its workers' locks). The caller holds the transaction and the row locks.
    """
    if not rows:
        return []
    meta = model._meta
    table = meta.db_table
    expect = dict(expect or {})
    value_names = list(fields) + list(expect.values())
    value_fields = list(fields) + list(expect.keys())
    params: list[Any] = []
    tuples: list[str] = []
    pk_field = meta.pk
    for pk, values in rows.items():
        params.append(pk_field.get_db_prep_value(pk, connection))
        for name, field_name in zip(value_names, value_fields, strict=True):
            field = concrete_field(model, field_name)
            params.append(field.get_db_prep_value(values[name], connection, prepared=False))
        tuples.append("(" + ", ".join(["%s"] * (len(value_names) + 1)) + ")")
    columns = [values_column_sql(1, "id", "id", model)] + [
        values_column_sql(i + 2, f"v_{name}", field_name, model)
        for i, (name, field_name) in enumerate(zip(value_names, value_fields, strict=True))
    ]
    where = [f"{qn(table)}.{qn('id')} = v.{qn('id')}"]
    if keep_newer:
        col = column_name(model, keep_newer)
        where.append(f"({qn(table)}.{qn(col)} IS NULL OR {qn(table)}.{qn(col)} < v.{qn('v_' + keep_newer)})")
    for field_name, name in expect.items():
        col = column_name(model, field_name)
        where.append(f"{qn(table)}.{qn(col)} = v.{qn('v_' + name)}")
    assignments = ", ".join(
        f"{qn(column_name(model, name))} = v.{qn('v_' + name)}" for name in fields
    )
    sql = (
        f"UPDATE {qn(table)} SET {assignments} "
        f"FROM (SELECT {', '.join(columns)} FROM (VALUES {', '.join(tuples)}) AS vals) AS v "
        f"WHERE {' AND '.join(where)}"
    )
    if returning:
        sql += f" RETURNING {qn(table)}.{qn('id')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            return [row[0] for row in cursor.fetchall()]
        return []


def lock_workers(pks: Sequence[int]) -> None:
    """Lock these worker rows in primary-key order (no-op on SQLite, whose writers are serialised)."""
    if connection.vendor == "sqlite" or not pks:
        return
    list(HybridWorker.objects.select_for_update().filter(pk__in=list(pks)).order_by("pk").values_list("pk", flat=True))


def update_workers_in_pk_order(
    values: Mapping[int, Mapping[str, Any]],
    fields: Sequence[str],
    *,
    keep_newer: str | None = None,
    after_batch: Callable[[list[int]], None] | None = None,
) -> int:
    """Write ``values[pk][field]`` for every pk, in batches, each locked in primary-key order first.

    With ``keep_newer`` only rows whose new value is later are written. ``after_batch(pks)`` runs
    inside each batch's transaction, after its UPDATE and while its rows are still locked (rows
    that depend on these workers, e.g. signal spans, are written there). Returns the number of
    rows written. Safe to run twice: the second run writes the same values (or nothing).
    """
    written = 0
    pks = sorted(values)
    for start in range(0, len(pks), BATCH):
        batch = pks[start : start + BATCH]
        with transaction.atomic():
            lock_workers(batch)
            written += len(
                update_from_values({pk: values[pk] for pk in batch}, fields, keep_newer=keep_newer, returning=True)
            )
            if after_batch is not None:
                after_batch(batch)
    return written
