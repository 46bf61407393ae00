"""Prepared queries in the store: writes with Consul's integrity rules, and name resolution.

Every rule Consul's state store checks inside its transaction is checked in the write's
plan, which ``State.write`` re-runs after a lost race; the records it relies on (the query,
its session) are guarded by compares, and a name two servers claim at once is settled
after the fact (see ``create_query``). A query bound to a session is stored on
that session's lease: when the session expires the store deletes the query with it, and
``destroy_session`` deletes it in the same transaction as the session.
"""

from __future__ import annotations

import re
import uuid

import msgspec

from waypost.query.definition import QueryError, is_template, validate
from waypost.query.template import CompiledTemplate, compile_template
from waypost.state import schema
from waypost.state.catalog_ops import guard
from waypost.state.indexes import Indexes
from waypost.state.model import PreparedQuery
from waypost.state.state import State, TxnPlan
from waypost.store.base import Compare, Delete, Put

__all__ = [
    "QueryNotFoundError",
    "Resolver",
    "create_query",
    "delete_query",
    "live_queries",
    "match",
    "update_query",
]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
NOT_FOUND = "Query not found"


class QueryNotFoundError(LookupError):
    """Consul's ``ErrQueryNotFound``: the API answers 404 "Query not found"."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND)


def live_queries(idx: Indexes) -> list[PreparedQuery]:
    """Stored queries by ID, less any whose session is gone but whose delete is still on its
    way (a lease expiry is applied a moment after the session's own key goes)."""
    return [q for _, q in sorted(idx.prepared_queries.items()) if not q.Session or q.Session in idx.sessions]


def _check(idx: Indexes, query: PreparedQuery, existing: PreparedQuery | None) -> list[Compare]:
    """Consul's ``preparedQuerySetTxn`` checks; the compares make them hold at commit."""
    compares: list[Compare] = []
    for other in live_queries(idx):
        if other.ID == query.ID:
            continue
        if _same_name(query, other):
            raise _name_taken(query)
    if _UUID.match(query.Name) and query.Name.lower() in idx.prepared_queries:
        raise QueryError(f"name '{query.Name}' aliases an existing query ID")
    if query.Session:
        session = idx.sessions.get(query.Session)
        if session is None:
            raise QueryError(f'invalid session "{query.Session}"')
        compares.append(guard(schema.SESSIONS.key(query.Session), session))
    if is_template(query):
        compile_template(query)
    return compares


async def _put(state: State, query: PreparedQuery, create: bool) -> None:
    validate(query)

    def plan() -> TxnPlan | None:
        idx = state.indexes
        existing = idx.prepared_queries.get(query.ID)
        if create and existing is not None:
            raise QueryError(f"query ID '{query.ID}' is taken")
        if not create and existing is None:
            raise QueryError(f"Cannot modify non-existent prepared query: '{query.ID}'")
        compares = _check(idx, query, existing)
        key = schema.PREPARED_QUERIES.key(query.ID)
        compares.append(guard(key, existing))
        lease = idx.session_leases.get(query.Session, 0) if query.Session else 0
        return compares, [Put(key, schema.encode(query), lease)]

    await state.write(plan)


async def create_query(state: State, query: PreparedQuery) -> str:
    """Store a new query under a fresh ID (the body's ID is not used, as in Consul).

    Two servers creating the same name at once both pass the plan's check, as nothing in
    the store claims a name. Each then looks again once its write is applied (the feed is
    ordered, so an earlier rival is in view by then) and the later one withdraws: the
    older query keeps the name, as it would in Consul's serial log."""
    query = msgspec.structs.replace(query, ID=str(uuid.uuid4()))
    await _put(state, query, create=True)
    stored = state.indexes.prepared_queries.get(query.ID)
    if stored is not None and _older_namesake(state.indexes, stored):
        await delete_query(state, query.ID)
        raise _name_taken(query)
    return query.ID


def _older_namesake(idx: Indexes, query: PreparedQuery) -> bool:
    """Whether a query created before ``query`` holds its name (or is the catch-all template)."""
    mine = (query.CreateIndex, query.ID)
    return any(
        other.ID != query.ID and (other.CreateIndex, other.ID) < mine and _same_name(query, other)
        for other in live_queries(idx)
    )


def _same_name(query: PreparedQuery, other: PreparedQuery) -> bool:
    """Names are unique case-blind; of the unnamed, only templates are (one catch-all)."""
    if query.Name:
        return other.Name.lower() == query.Name.lower()
    return is_template(query) and is_template(other) and not other.Name


def _name_taken(query: PreparedQuery) -> QueryError:
    if query.Name:
        return QueryError(f"name '{query.Name}' aliases an existing query name")
    return QueryError("a query template with an empty name already exists")


async def update_query(state: State, query: PreparedQuery) -> None:
    await _put(state, query, create=False)


async def delete_query(state: State, query_id: str) -> None:
    def plan() -> TxnPlan | None:
        existing = state.indexes.prepared_queries.get(query_id)
        if existing is None:
            raise QueryError(f"Cannot modify non-existent prepared query: '{query_id}'")
        key = schema.PREPARED_QUERIES.key(query_id)
        return [guard(key, existing)], [Delete(key)]

    await state.write(plan)


def match(idx: Indexes, id_or_name: str) -> PreparedQuery | None:
    """The stored query an ID or name selects: by ID, else by name (case-blind), else the
    template with the longest name prefixing it."""
    if not id_or_name:
        return None
    queries = live_queries(idx)
    wanted = id_or_name.lower()
    if _UUID.match(id_or_name):
        found = next((q for q in queries if wanted == q.ID), None)
        if found is not None:
            return found
    exact = next((q for q in queries if q.Name and q.Name.lower() == wanted), None)
    if exact is not None:
        return exact
    templates = [q for q in queries if is_template(q) and wanted.startswith(q.Name.lower())]
    return max(templates, key=lambda q: len(q.Name), default=None)


class Resolver:
    """ID or name to the query to run (Consul's ``PreparedQueryResolve``), templates
    rendered; compiled templates are kept per stored version."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, int], CompiledTemplate] = {}

    def resolve(self, idx: Indexes, id_or_name: str, segment: str = "") -> PreparedQuery:
        """Raises QueryNotFoundError, or QueryError for a template asked for by ID."""
        found = match(idx, id_or_name)
        if found is None:
            raise QueryNotFoundError()
        if not is_template(found):
            return found
        if id_or_name.lower() == found.ID:
            raise QueryError("prepared query templates can only be resolved up by name, not by ID")
        return self._template(found).render(id_or_name, segment)

    def _template(self, query: PreparedQuery) -> CompiledTemplate:
        key = (query.ID, query.ModifyIndex)
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) > 1024:
                self._compiled.clear()
            compiled = self._compiled[key] = compile_template(query)
        return compiled
