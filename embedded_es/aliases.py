"""Aliases: `POST /_aliases` (`add`, `remove`, `remove_index`, applied atomically), `_alias`
GET / HEAD / PUT / DELETE, searches through an alias, and writes through one (to its
`is_write_index`, or to its only index).

They live in the engine's SQLite file, in their own table, so they are durable and shared by
every process as the indices are. Filtered and routed aliases are refused by name. This is
what lets a model change re-index into a new index and then swap the alias atomically."""

from __future__ import annotations

import fnmatch
from typing import Any

from embedded_es.errors import EsError, bad_request, unsupported, validation_failed
from embedded_es.request import is_pattern, resolve
from embedded_es.store import Store

TABLE = """CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT NOT NULL, idx TEXT NOT NULL, is_write_index INTEGER, PRIMARY KEY (alias, idx))"""
ADD_OPTIONS = {"index", "indices", "alias", "aliases", "is_write_index"}
# Alias options Elasticsearch has that the engine refuses by name.
ELASTICSEARCH_ADD_OPTIONS = {"filter", "routing", "index_routing", "search_routing", "is_hidden", "must_exist"}
REMOVE_OPTIONS = {"index", "indices", "alias", "aliases", "must_exist"}


def rows(store: Store) -> list[tuple[str, str, bool | None]]:
    """(alias, index, is_write_index) for every alias of an index that still exists."""
    store.db.execute(TABLE)
    names = set(store.names())
    found = store.db.execute("SELECT alias, idx, is_write_index FROM aliases ORDER BY alias, idx").fetchall()
    return [(a, i, None if w is None else bool(w)) for a, i, w in found if i in names]


def members(store: Store) -> dict[str, dict[str, bool | None]]:
    table: dict[str, dict[str, bool | None]] = {}
    for alias, index, write in rows(store):
        table.setdefault(alias, {})[index] = write
    return table


def expand(store: Store, expression: str) -> str:
    """An index expression with each alias it names (or a wildcard matches) replaced by its indices."""
    table = members(store)
    if not table or expression in ("", "_all"):
        return expression
    parts = []
    for part in expression.split(","):
        if part in table:
            parts += list(table[part])
            continue
        parts.append(part)
        if is_pattern(part) and not part.startswith("-"):
            parts += [
                index for alias, indices in table.items() if fnmatch.fnmatchcase(alias, part) for index in indices
            ]
    return ",".join(dict.fromkeys(parts))


def write_index(store: Store, name: str, table: dict | None = None) -> str:
    """Where a write to `name` goes: the name itself unless it is an alias (`table`: the
    aliases, when the caller has read them already)."""
    indices = (members(store) if table is None else table).get(name)
    if indices is None:
        return name
    writers = [index for index, write in indices.items() if write]
    if writers:
        return writers[0]
    if len(indices) == 1 and next(iter(indices.values())) is not False:
        return next(iter(indices))
    raise bad_request(
        f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
        "is_write_index=false or the alias points to multiple indices without one being designated as a write "
        "index"
    )


def single_index(store: Store, name: str) -> str:
    """The index a single-document read through `name` reads."""
    indices = members(store).get(name)
    if indices is None:
        return name
    if len(indices) > 1:
        raise bad_request(
            f"alias [{name}] has more than one index associated with it [{', '.join(sorted(indices))}], "
            "can't execute a single index op"
        )
    return next(iter(indices))


def listed(spec: dict, one: str, many: str) -> list[str]:
    value = spec.get(many, spec.get(one))
    values = value if isinstance(value, list) else [value] if value is not None else []
    if not values or not all(isinstance(v, str) and v for v in values):
        raise validation_failed(f"[{one}] is required")
    return values


def listed_names(spec: dict) -> list[str]:
    value = spec.get("indices", spec.get("index"))
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]


def apply(store: Store, actions: Any) -> tuple[int, dict]:
    """`POST /_aliases`: every action checked first, then all applied in one transaction."""
    if not isinstance(actions, list) or not actions:
        raise validation_failed("No action specified")
    names = store.names()
    table = members(store)
    # An index that `remove_index` drops frees its name for an alias in the same request: the
    # atomic swap of a re-built index under the old index's name.
    leaving = [
        name
        for entry in actions
        if isinstance(entry, dict) and isinstance(entry.get("remove_index"), dict)
        for name in listed_names(entry["remove_index"])
    ]
    adds: list[tuple[str, str, bool | None]] = []
    removes: list[tuple[str, str]] = []
    dropped: list[str] = []
    for entry in actions:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise EsError(400, "parsing_exception", "[aliases] each action must be an object with one action")
        ((kind, spec),) = entry.items()
        if not isinstance(spec, dict):
            raise EsError(400, "parsing_exception", f"[{kind}] must be an object")
        if kind == "add":
            for key in spec:
                if key in ELASTICSEARCH_ADD_OPTIONS:
                    raise unsupported("the alias option", key)
                if key not in ADD_OPTIONS:
                    raise EsError(400, "x_content_parse_exception", f"[1:2] [alias_action] unknown field [{key}]")
            write = spec.get("is_write_index")
            if write is not None and not isinstance(write, bool):
                raise EsError(
                    400,
                    "x_content_parse_exception",
                    f"[1:2] [alias_action] failed to parse field [is_write_index]: [{write}] is not a boolean",
                )
            for index in resolve(names, ",".join(listed(spec, "index", "indices")), {}):
                for alias in listed(spec, "alias", "aliases"):
                    check_alias_name(alias, [n for n in names if n not in leaving])
                    adds.append((alias, index, write))
        elif kind == "remove":
            for key in spec:
                if key not in REMOVE_OPTIONS:
                    raise EsError(400, "x_content_parse_exception", f"[1:2] [alias_action] unknown field [{key}]")
            for index in resolve(names, ",".join(listed(spec, "index", "indices")), {}):
                for alias in listed(spec, "alias", "aliases"):
                    matched = [a for a in table if fnmatch.fnmatchcase(a, alias) and index in table[a]]
                    if not matched and spec.get("must_exist") is True:
                        raise not_found(alias)
                    removes += [(a, index) for a in matched]
        elif kind == "remove_index":
            if set(spec) - {"index", "indices"}:
                raise EsError(400, "x_content_parse_exception", "[1:2] [alias_action] unknown field")
            dropped += resolve(names, ",".join(listed(spec, "index", "indices")), {}, forbid_wildcards=False)
        else:
            raise EsError(400, "x_content_parse_exception", f"[1:2] [alias_action] unknown field [{kind}]")
    after = {alias: dict(indices) for alias, indices in table.items()}
    for alias, index in removes:
        after.get(alias, {}).pop(index, None)
    for alias, index, write in adds:
        after.setdefault(alias, {})[index] = write
    for alias, indices in after.items():
        if sum(1 for write in indices.values() if write) > 1:
            writers = ", ".join(sorted(i for i, w in indices.items() if w))
            raise bad_request(f"alias [{alias}] has more than one write index [{writers}]")
    with store.lock, store.db:
        store.db.execute("BEGIN IMMEDIATE")
        for alias, index in removes:
            store.db.execute("DELETE FROM aliases WHERE alias = ? AND idx = ?", (alias, index))
        for alias, index, write in adds:
            store.db.execute(
                "INSERT OR REPLACE INTO aliases VALUES (?, ?, ?)", (alias, index, None if write is None else int(write))
            )
    for index in dropped:
        store.delete_index(index)
    forget_missing(store)
    return 200, {"acknowledged": True, "errors": False}


def check_alias_name(alias: str, names: list[str]) -> None:
    if alias in names:
        raise EsError(
            400,
            "invalid_alias_name_exception",
            f"Invalid alias name [{alias}]: an index or data stream exists with the same name as the alias",
        )
    if alias.startswith(("_", "-", "+")) or alias != alias.lower() or any(c in alias for c in ' "*\\<|,>/?#:'):
        raise EsError(400, "invalid_alias_name_exception", f"Invalid alias name [{alias}]: must be a valid index name")


def forget_missing(store: Store) -> None:
    """Drop the aliases of deleted indices, as deleting an index does on a cluster."""
    store.db.execute(TABLE)
    names = store.names()
    marks = ",".join("?" * len(names))
    store.db.execute(f"DELETE FROM aliases WHERE idx NOT IN ({marks})", names)


def get(store: Store, expression: str, alias_pattern: str | None, params: dict) -> tuple[int, dict]:
    """`GET [/{index}]/_alias[/{name}]`: {index: {aliases: {name: {...}}}}; a named alias that
    matches nothing gives Elasticsearch's 404, which still lists what was found."""
    indices = resolve(store.names(), expand(store, expression), params) if expression else store.names()
    patterns = alias_pattern.split(",") if alias_pattern and alias_pattern not in ("_all", "*") else None
    answer: dict[str, dict] = {}
    seen: set[str] = set()
    for alias, index, write in rows(store):
        if index not in indices or (patterns and not any(fnmatch.fnmatchcase(alias, p) for p in patterns)):
            continue
        seen.add(alias)
        answer.setdefault(index, {"aliases": {}})["aliases"][alias] = {} if write is None else {"is_write_index": write}
    if patterns is None:
        for index in indices:
            answer.setdefault(index, {"aliases": {}})
        return 200, answer
    missing = [p for p in patterns if not is_pattern(p) and p not in seen]
    if missing:
        return 404, {"error": f"alias [{','.join(missing)}] missing", "status": 404, **answer}
    return 200, answer


def put(store: Store, expression: str, alias: str, body: dict) -> tuple[int, dict]:
    spec = {"indices": [expression], "alias": alias, **body}
    return apply(store, [{"add": spec}])


def delete(store: Store, expression: str, alias_pattern: str) -> tuple[int, dict]:
    indices = resolve(store.names(), expression, {})
    table = members(store)
    patterns = alias_pattern.split(",")
    matched = [
        (a, i) for a in table for i in table[a] if i in indices and any(fnmatch.fnmatchcase(a, p) for p in patterns)
    ]
    if not matched:
        raise not_found(alias_pattern)
    return apply(store, [{"remove": {"index": i, "alias": a}} for a, i in matched])


def aliases_of(store: Store, index: str) -> dict:
    return {a: ({} if w is None else {"is_write_index": w}) for a, i, w in rows(store) if i == index}


def refuse_index_named_as_alias(store: Store, index: str) -> None:
    if index in members(store):
        raise EsError(
            400, "invalid_index_name_exception", f"Invalid index name [{index}], already exists as alias", index=index
        )


def not_found(alias: str) -> EsError:
    return EsError(
        404,
        "aliases_not_found_exception",
        f"aliases [{alias}] missing",
        **{"resource.type": "aliases", "resource.id": alias},
    )
