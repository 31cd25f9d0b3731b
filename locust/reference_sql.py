"""The SQL of the raw-limit fixture (`reference_app.py`): hand-written, one string each.

The statements read and write the application's schema as Atlas does (same rows, same
JSON fields in the same order), with PostgreSQL building the embedded `{id, name}` lists;
docs/benchmarks.md ("The raw-limit fixture") says how the two are kept equal.
"""

# The SQL is assembled from the constant table and column names below, never from input.
# ruff: noqa: S608

from __future__ import annotations

from functools import cache

# The body field that replaces each kind of link: (link table, target table, target column).
LINKS: dict[str, tuple[str, str, str]] = {
    "department_ids": ("process_departments", "departments", "department_id"),
    "location_ids": ("process_locations", "locations", "location_id"),
    "resource_ids": ("process_resources", "resources", "resource_id"),
    "role_ids": ("process_roles", "roles", "role_id"),
}
# What a process's audit event records besides its links (Atlas's `AUDITED.fields`).
AUDITED = (
    "title",
    "description",
    "status",
    "criticality",
    "owner_id",
    "review_interval_days",
    "last_reviewed_at",
)
# The columns a PATCH may set (ProcessUpdate's fields less the links).
SETTABLE = ("title", "description", "status", "criticality", "owner_id", "review_interval_days")
# Collections whose ids the locust users pick from (`/catalogue`), as many as they read.
CATALOGUE = ("processes", "departments", "locations", "resources", "roles")
CATALOGUE_SIZE = 2000

_SCALARS = """p.id, p.title, p.description, p.status, p.criticality, p.review_interval_days,
       p.last_reviewed_at, p.review_due_at"""
_TAIL = "p.created_at, p.updated_at"


# `[{id, name}, ...]` of the linked targets (alias t), in id order.
_SUMMARIES = "json_agg(json_build_object('id', t.id, 'name', t.name) ORDER BY t.id)"


def _correlated_links(link: str, target: str, column: str) -> str:
    return f"""COALESCE((
        SELECT {_SUMMARIES}
        FROM {link} l JOIN {target} t ON t.id = l.{column}
        WHERE l.process_id = p.id), '[]'::json)"""


def _person(column: str) -> str:
    person = "json_build_object('id', u.id, 'full_name', u.full_name)"
    return f"(SELECT {person} FROM users u WHERE u.id = p.{column})"


def _names(links: dict[str, tuple[str, str, str]]) -> list[str]:
    return [target for _, target, _ in links.values()]


# One process as the API shows it: a correlated subquery per embedded list.
PROCESS_BY_ID = f"""
SELECT {_SCALARS},
       {_person("owner_id")} AS owner,
       {", ".join(f"{_correlated_links(*link)} AS {link[1]}" for link in LINKS.values())},
       {_TAIL},
       {_person("created_by_id")} AS created_by,
       p.version
FROM processes p WHERE p.id = $1
"""


def _page_links(link: str, target: str, column: str) -> str:
    return f"""LEFT JOIN (
    SELECT l.process_id, {_SUMMARIES} AS links
    FROM {link} l JOIN {target} t ON t.id = l.{column}
    WHERE l.process_id IN (SELECT id FROM page)
    GROUP BY l.process_id) {target} ON {target}.process_id = p.id"""


def _page_person(alias: str) -> str:
    person = f"json_build_object('id', {alias}.id, 'full_name', {alias}.full_name)"
    return f"CASE WHEN {alias}.id IS NULL THEN NULL ELSE {person} END"


# A page in id order after id $1, $2 long: every link list aggregated once for the page.
# `fetched` counts one key more than the page, which tells whether another page follows.
PAGE = f"""
WITH keys AS (SELECT id FROM processes WHERE id > $1 ORDER BY id LIMIT $2 + 1),
     page AS (SELECT id FROM keys ORDER BY id LIMIT $2)
SELECT {_SCALARS},
       {_page_person("o")} AS owner,
       {", ".join(f"COALESCE({name}.links, '[]'::json) AS {name}" for name in _names(LINKS))},
       {_TAIL},
       {_page_person("a")} AS created_by,
       p.version,
       (SELECT count(*) FROM keys) AS fetched
FROM page JOIN processes p ON p.id = page.id
LEFT JOIN users o ON o.id = p.owner_id
LEFT JOIN users a ON a.id = p.created_by_id
{chr(10).join(_page_links(*link) for link in LINKS.values())}
ORDER BY p.id
"""

INSERT_PROCESS = """
INSERT INTO processes (title, description, status, criticality, owner_id,
                       review_interval_days, created_by_id)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
"""

# The process's audited fields and version, locked: concurrent writers queue up here.
LOCK_PROCESS = f"SELECT {', '.join(AUDITED)}, version FROM processes WHERE id = $1 FOR UPDATE"

INSERT_AUDIT = """
INSERT INTO audit_events (actor_id, action, entity_type, entity_id, changes, request_id)
VALUES ($1, $2, 'process', $3, $4::jsonb, $5)
"""

ACTOR = "SELECT id FROM users WHERE email = $1"

CATALOGUE_IDS = "SELECT " + ", ".join(
    f"array(SELECT id FROM {name} ORDER BY id LIMIT {CATALOGUE_SIZE}) AS {name}"
    for name in CATALOGUE
)


@cache
def update_statement(columns: tuple[str, ...]) -> str:
    """Set `columns` ($2, $3, ...) of process $1 as a new version."""
    assigned = [f"{column} = ${number}" for number, column in enumerate(columns, start=2)]
    return (
        f"UPDATE processes SET {', '.join([*assigned, 'updated_at = now()'])}, "
        "version = version + 1 WHERE id = $1"
    )


def _replace_kind(field: str, number: int) -> tuple[list[str], list[str]]:
    """The CTEs replacing one kind of link with the ids of ${number}, and their reports."""
    link, target, column = LINKS[field]
    ctes = [
        f"{target}_wanted AS (SELECT DISTINCT unnest(${number}::bigint[]) AS id)",
        f"{target}_known AS (SELECT w.id FROM {target}_wanted w JOIN {target} t ON t.id = w.id)",
        f"""{target}_removed AS (DELETE FROM {link} WHERE process_id = $1
            AND {column} NOT IN (SELECT id FROM {target}_wanted) RETURNING {column} AS id)""",
        f"""{target}_added AS (INSERT INTO {link} (process_id, {column})
            SELECT $1, id FROM {target}_known ON CONFLICT DO NOTHING RETURNING {column} AS id)""",
    ]
    reports = [
        f"SELECT '{field}', 'removed', id FROM {target}_removed",
        f"SELECT '{field}', 'added', id FROM {target}_added",
        f"""SELECT '{field}', 'missing', id FROM {target}_wanted
            WHERE id NOT IN (SELECT id FROM {target}_known)""",
    ]
    return ctes, reports


@cache
def replace_links(fields: tuple[str, ...]) -> str:
    """Make each kind in `fields` (ids in $2, $3, ...) exactly those ids for process $1.

    One statement: it reports every removed, added and unknown ("missing") id as
    (field, change, id) rows; the caller rolls back when any id is missing.
    """
    ctes: list[str] = []
    reports: list[str] = []
    for number, field in enumerate(fields, start=2):
        kind_ctes, kind_reports = _replace_kind(field, number)
        ctes.extend(kind_ctes)
        reports.extend(kind_reports)
    return f"WITH {', '.join(ctes)}\n{' UNION ALL '.join(reports)}"
