"""Schema fuzzing: schemathesis drives every operation of the app's own OpenAPI document.

Runs in-process against the ASGI app with real PostgreSQL and Redis, signed in as a
superuser. `FUZZ_EXAMPLES` sets the examples per operation (small by default, so the suite
stays fast; `make fuzz` raises it). Every response must be documented (status, media type,
schema), no request may get a 5xx, and every error must be `application/problem+json`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, seed, settings
from hypothesis.errors import FlakyStrategyDefinition
from redis.asyncio import Redis
from schemathesis import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import migrations
from app.core.config import Settings
from app.core.database import async_url, create_database_if_missing, drop_database
from app.core.security import TokenCodec
from app.domains.auth.context import AuthContext
from app.domains.user.models import User
from app.main import API_PREFIX, create_app
from tests.conftest import make_settings

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def fuzz_database_url(database_url: str) -> AsyncIterator[str]:
    """A database of its own: fuzzing leaves rows behind that other tests must not see."""
    name = f"pa_fuzz_{uuid.uuid4().hex[:12]}"
    url = async_url(database_url).set(database=name).render_as_string(hide_password=False)
    await create_database_if_missing(url)
    # Alembic runs its own event loop: not on this one.
    await asyncio.to_thread(migrations.upgrade, url)
    yield url
    await drop_database(url)


@pytest.fixture(scope="module")
def fuzz_settings(fuzz_database_url: str, redis_url: str) -> Settings:
    # No rate limit: hundreds of requests a minute from one user is the point here.
    return make_settings(
        database_url=fuzz_database_url, redis_url=redis_url, rate_limit_enabled=False
    )


@pytest.fixture(scope="module")
async def fuzz_admin(fuzz_settings: Settings, redis: Redis) -> AsyncIterator[int]:
    """The superuser every generated request is made as."""
    engine = create_async_engine(fuzz_settings.database_url or "", poolclass=pool.NullPool)
    auth = AuthContext.build(fuzz_settings, redis)
    try:
        async with engine.begin() as connection:
            user_id = await connection.scalar(
                User.__table__.insert()
                .values(
                    email="fuzz-admin@example.com",
                    full_name="Fuzz Admin",
                    is_superuser=True,
                    password_hash=await auth.passwords.hash("fuzz admin password"),
                )
                .returning(User.id)
            )
    finally:
        await engine.dispose()
    assert user_id is not None
    yield user_id
    keys = [key async for key in redis.scan_iter(match=f"{fuzz_settings.redis_key_prefix}*")]
    if keys:
        await redis.delete(*keys)


class DeferredApp:
    """The ASGI app schemathesis calls; the real one is built by a fixture, on its database."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "the fuzz_app fixture builds the app"
        await self.target(scope, receive, send)


deferred_app = DeferredApp()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_settings: Settings, fuzz_admin: int) -> Iterator[FastAPI]:
    deferred_app.target = create_app(fuzz_settings)
    yield deferred_app.target
    # schemathesis started the app's lifespan on its own event loop; close engine and Redis.
    schemathesis_asgi.shutdown_lifespans()
    deferred_app.target = None


def _load_schema() -> OpenApiSchema:
    # The document needs no database: build it from an app that is never started.
    offline = create_app(
        make_settings(database_url="postgresql+asyncpg://-@-/-", redis_url="redis://-")
    )
    config = schemathesis.Config.from_dict(
        {
            "seed": 20261122,
            "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none"},
        }
    )
    loaded = schemathesis.openapi.from_dict(offline.openapi(), config=config)
    loaded.app = deferred_app
    loaded.location = f"{API_PREFIX}/openapi.json"
    return loaded


def errors_are_problem_json(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every 4xx and 5xx is an RFC 9457 problem (readiness answers its own JSON body)."""
    if response.status_code < 400 or case.path == f"{API_PREFIX}/ready":
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type == PROBLEM, f"{response.status_code} answered as {content_type!r}"


ADDITIONAL_CHECKS = [errors_are_problem_json]
# 422 is how this API answers schema-valid requests that break a rule the schema cannot say
# (unknown ids, a cursor from another list, a wrong current password, a missing parent),
# which this check would call a failure.
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]


def _as_admin(case: schemathesis.Case, tokens: TokenCodec, admin_id: int) -> None:
    """Sign the request as the superuser, and never let it demote or delete itself."""
    token, _ = tokens.issue(admin_id, uuid.uuid4().hex)
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    parameters = case.path_parameters or {}
    if parameters.get("user_id") == admin_id and case.method in {"PATCH", "DELETE"}:
        parameters["user_id"] = admin_id + 10**12


schema = _load_schema()


def test_every_error_response_is_documented_as_a_problem() -> None:
    """4xx and 5xx answers are declared as problem+json with the ProblemDetail schema."""
    problem = {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}
    undocumented = [
        f"{method.upper()} {path} {status}"
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and not (path == f"{API_PREFIX}/ready" and status == "503")
        and response.get("content") != {PROBLEM: problem}
    ]
    assert undocumented == []
    for path, item in schema.raw_schema["paths"].items():
        for operation in item.values():
            assert {"413", "422", "429", "503"} <= set(operation["responses"]), path


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_its_schema(
    case: schemathesis.Case, fuzz_app: FastAPI, fuzz_admin: int, fuzz_settings: Settings
) -> None:
    _as_admin(case, TokenCodec(fuzz_settings), fuzz_admin)
    case.call_and_validate(additional_checks=ADDITIONAL_CHECKS, excluded_checks=EXCLUDED_CHECKS)


COLLECTIONS = ["users", "roles", "departments", "locations", "resources", "processes"]
SESSIONS = 5
STATEFUL_SEED = 20261122


def _satisfy_rules_the_schema_cannot_state(case: schemathesis.Case) -> None:
    """Unique names, the password policy, no unknown ids and JSON integers, so creates succeed
    and their links get followed.

    Whatever earlier tests left in the fuzz database must not decide whether a scenario
    ever gets past its first step.
    """
    positive = case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE
    if not positive or not isinstance(case.body, dict):
        return
    # Ids of other rows: random ones name rows that do not exist (the stateless test above
    # covers those 422s). And JSON Schema counts 3.0 as an integer; ours are strict.
    for field, value in list(case.body.items()):
        if field.endswith("_ids"):
            case.body[field] = []
        elif field.endswith("_id"):
            del case.body[field]
        elif isinstance(value, float) and value.is_integer():
            case.body[field] = int(value)
    unique = uuid.uuid4().hex[:8]
    for field in ("name", "code"):
        if isinstance(case.body.get(field), str):
            case.body[field] = f"{case.body[field][:20]}-{unique}"
    if "email" in case.body:
        case.body["email"] = f"fuzz-{unique}@example.com"
    if "password" in case.body:
        case.body["password"] = f"fuzz password {unique}"


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_linked_operations_create_then_read_update_and_delete(
    collection: str, fuzz_app: FastAPI, fuzz_admin: int, fuzz_settings: Settings
) -> None:
    """Stateful: schemathesis follows the links it infers (create, then read, patch, delete).

    One machine per collection: over the whole API its heuristics would start every
    scenario from the two operations whose inputs need no other resource.
    """
    tokens = TokenCodec(fuzz_settings)
    answered: list[tuple[str, int]] = []
    # The collection and its `/{id}` routes (not `/users/me`, whose links lead to the admin).
    # Nor what hangs below an item (`POST /processes/{id}/review`, `PUT .../dependencies`):
    # schemathesis takes such operations for roots, and then never creates anything. The
    # stateless test above covers them.
    scoped = schema.include(path_regex=rf"^{API_PREFIX}/{collection}(/{{\w+}})?$")

    class Workflow(scoped.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            _as_admin(case, tokens, fuzz_admin)
            if case.method == "POST":
                _satisfy_rules_the_schema_cannot_state(case)

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            answered.append((f"{case.method} {case.operation.path}", response.status_code))

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            # The recorder gives the stateful checks (use after free, resource availability)
            # the earlier steps of the scenario.
            case.validate_response(
                response,
                additional_checks=ADDITIONAL_CHECKS,
                excluded_checks=EXCLUDED_CHECKS,
                recorder=self.recorder,
            )

    scenarios = settings(
        Workflow.TestCase.settings,
        max_examples=FUZZ_EXAMPLES,
        stateful_step_count=8,
        deadline=None,
        database=None,
    )
    for session in range(SESSIONS):
        try:
            seed(STATEFUL_SEED + session)(Workflow)
            Workflow.run(settings=scenarios)
            break
        except FlakyStrategyDefinition:
            # The API's state (rows of earlier scenarios) changed what a replayed scenario
            # drew; schemathesis' own runner then starts a session with the next seed too.
            # A check that fails raises something else and is never retried.
            continue
    else:
        pytest.fail(f"{SESSIONS} sessions in a row ended in inconsistent generation")
    creates = [status for call, status in answered if call == f"POST {API_PREFIX}/{collection}"]
    assert 201 in creates, creates
    followed = [
        call
        for call, status in answered
        if f"{API_PREFIX}/{collection}/{{" in call and 200 <= status < 300
    ]
    assert followed, answered
