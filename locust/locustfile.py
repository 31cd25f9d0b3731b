"""Load tests for Process Atlas: realistic users, the reference project's mix, a login storm.

    .venv/bin/locust -f locust/locustfile.py --headless -H http://127.0.0.1:8000 \\
        -u 100 -r 20 -t 60s AtlasUser

User classes (name them on the command line; see locust/README.md):

- `AtlasUser`: a person using the API; reads far more than writes, lists with filters
  and cursors, hierarchies, reverse views, audit reads, a few writes. Select parts with
  `--tags` / `--exclude-tags` (read, write, process, department, location, resource,
  role, user, audit, list, tree, search, reverse).
- `ReferenceMix`: the reference project's locust mix on our API (create with 5 links of
  each kind, PATCH replacing links, GET by id, list with limit=100) with 0.1-2 s think time;
  `ReferenceMixNoThink` is the same with none.
- `RawMix` / `RawMixNoThink`: the same mix (one definition, `ReferenceMixTasks`) against the
  raw-limit fixture `reference_app.py` (`-H` its address): no sign-in, ids from its
  `/catalogue`; `bench.py --scenario raw-mix` compares the two.
- `ProcessReader`: GET a process by id at a fixed rate (`ATLAS_READER_RPS` per user), the
  quiet signal next to `LoginStorm`, which signs in again and again (argon2 each time).

The first user of each locust process signs in as `ATLAS_USERNAME` (default the demo
admin) and reads the ids of every collection and the people of that account's email
domain. Then every user signs in as a person of its own (they share `ATLAS_PASSWORD`), so
each has its own rate-limit bucket, and does only what that person's roles allow. Sign-ins
are spaced to stay under the server's per-address limit on /auth (`ATLAS_SIGN_IN_RATE`,
default the server's default `60/minute`); tokens are refreshed before they expire.
A failure reads `<status> <problem title>`, so locust's error table has a row per
endpoint and status.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import gevent
from gevent.lock import Semaphore
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

from locust import between, constant, constant_throughput, events, tag, task

API = "/api/v1"
USERNAME = os.environ.get("ATLAS_USERNAME", "admin@demo.process-atlas.test")
PASSWORD = (
    os.environ.get("ATLAS_PASSWORD") or os.environ.get("DEMO_PASSWORD") or "atlas-demo-password"
)
SIGN_IN_RATE = os.environ.get("ATLAS_SIGN_IN_RATE", "60/minute")
# Refresh once this share of the access token's lifetime has passed.
REFRESH_AT = 0.8
# Ids read per collection at start (a bigger database is sampled, not walked).
MAX_IDS = 2000
LINKS_PER_KIND = 5
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SIGN_IN_ATTEMPTS = 4
# Until its password is verified, a sign-in holds one of the address's failed-login slots
# (LOGIN_MAX_FAILURES_PER_IP, default 50), and each worker verifies one at a time anyway.
SIGN_INS_IN_FLIGHT = 8
PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# ATLAS_MEASURE_SECONDS=N (bench.py's raw-mix rounds): the statistics restart once every
# user has finished its on_start (signed in: argon2 on the server, seconds each on a busy
# machine), not once the last one was spawned, and locust stops N seconds later. A short
# round then counts no request queued behind a sign-in. At most ATLAS_READY_TIMEOUT seconds
# are waited; then the log says how many users were ready (bench.py notes it).
MEASURE_SECONDS = float(os.environ.get("ATLAS_MEASURE_SECONDS", "0"))
READY_TIMEOUT = float(os.environ.get("ATLAS_READY_TIMEOUT", "120"))
NOT_READY = "users ready when the measurement began"


def failure(response: Any) -> str:
    """`404 Not Found`: the status and the problem's title, alike for alike failures."""
    if not response.status_code:
        return f"no answer ({type(response.error).__name__})"
    try:
        title = response.json().get("title", "")
    except (ValueError, AttributeError):
        title = ""
    return f"{response.status_code} {title}".strip()


class SignInPacer:
    """Spaces sign-ins and refreshes under the server's per-address limits on /auth.

    At most SIGN_INS_IN_FLIGHT at once, and a client-side copy of the server's token
    bucket: its rate is `ATLAS_SIGN_IN_RATE`, its level the `X-RateLimit-Remaining` of the
    last answer (unknown until the first one, and never known when the server does not
    limit).
    """

    def __init__(self, rate: str) -> None:
        count, unit = rate.split("/")
        self.per_second = int(count) / PERIODS[unit]
        self.capacity = float(count)
        self.tokens: float | None = None
        self.at = time.monotonic()
        self.lock = Semaphore()
        self.in_flight = Semaphore(SIGN_INS_IN_FLIGHT)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a sign-in's turn; hold it until the answer is in."""
        with self.in_flight:
            self._wait()
            yield

    def _refill(self) -> None:
        now = time.monotonic()
        if self.tokens is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now

    def _wait(self) -> None:
        with self.lock:
            self._refill()
            if self.tokens is None:
                return
            if self.tokens < 1:
                time.sleep((1 - self.tokens) / self.per_second)  # gevent-patched
                self._refill()
            self.tokens -= 1

    def observe(self, response: Any) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is None:
            return
        with self.lock:
            self._refill()
            self.capacity = max(self.capacity, float(response.headers["x-ratelimit-limit"]))
            known = float(remaining)
            self.tokens = known if self.tokens is None else min(self.tokens, known)


pacer = SignInPacer(SIGN_IN_RATE)


class Readiness:
    """How many users have finished on_start; resets the statistics when all have."""

    def __init__(self) -> None:
        self.ready = 0
        self.environment: Environment | None = None

    def mark(self) -> None:
        self.ready += 1

    def measure_when_all(self, user_count: int, seconds: float) -> None:
        """Wait (a greenlet) for `user_count` ready users; reset, run `seconds`, stop locust."""
        deadline = time.monotonic() + READY_TIMEOUT
        while self.ready < user_count and time.monotonic() < deadline:
            gevent.sleep(0.1)
        runner = self.environment.runner if self.environment is not None else None
        if runner is None:
            return
        if self.ready < user_count:
            logging.warning(
                "%d of %d %s (after %.0f s)", self.ready, user_count, NOT_READY, READY_TIMEOUT
            )
        runner.stats.reset_all()
        gevent.sleep(seconds)
        runner.quit()


readiness = Readiness()


@events.init.add_listener
def _remember(environment: Environment, **_: Any) -> None:
    readiness.environment = environment


@events.spawning_complete.add_listener
def _measure_when_ready(user_count: int, **_: Any) -> None:
    if MEASURE_SECONDS > 0:
        gevent.spawn(readiness.measure_when_all, user_count, MEASURE_SECONDS)


@dataclass(frozen=True)
class Account:
    email: str
    permissions: frozenset[str]


class Catalogue:
    """Ids of every collection and the people to sign in as, read once per locust process."""

    def __init__(self) -> None:
        self.lock = Semaphore()
        self.loaded = False
        self.ids: dict[str, list[int]] = {}
        self.roots: dict[str, list[int]] = {}
        self.accounts: list[Account] = []
        self.handed_out: dict[frozenset[str], int] = {}

    def load(self, user: AtlasClient) -> None:
        with self.lock:
            if self.loaded:
                return
            if not user.sign_in(USERNAME):
                raise RuntimeError(f"{USERNAME} cannot sign in: seed the demo data")
            for collection in ("processes", "departments", "locations", "resources"):
                self.ids[collection] = [item["id"] for item in user.collect(collection)]
            for collection in ("departments", "locations"):
                self.roots[collection] = [
                    item["id"] for item in user.collect(collection, root="true")
                ]
            roles = user.collect("roles")
            people = user.collect("users", is_active="true")
            self.ids["roles"] = [role["id"] for role in roles]
            self.ids["users"] = [person["id"] for person in people]
            missing = [name for name, ids in self.ids.items() if not ids]
            if missing:
                raise RuntimeError(f"no {', '.join(missing)} to work with: seed the demo data")
            catalogue_of_permissions = user.get("/permissions", "[setup] permissions") or []
            everything = {item["code"] for item in catalogue_of_permissions}
            self.accounts = _accounts(people, roles, everything)
            self.loaded = True

    def load_raw(self, user: MixClient) -> None:
        """The ids of the raw-limit fixture's `/catalogue` (the same collections, in id order)."""
        with self.lock:
            if self.loaded:
                return
            with user.client.get(
                "/catalogue", name="[setup] catalogue", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(failure(response))
                    raise RuntimeError("the raw-limit fixture gave no /catalogue")
                self.ids = response.json()
            missing = [name for name, ids in self.ids.items() if not ids]
            if missing:
                raise RuntimeError(f"no {', '.join(missing)} to work with: seed the demo data")
            self.loaded = True

    def account_for(self, needs: frozenset[str]) -> Account:
        """The next person holding `needs`: a different one for each user while they last."""
        holders = [account for account in self.accounts if needs <= account.permissions]
        if not holders:
            raise RuntimeError(f"nobody of {USERNAME}'s domain holds {sorted(needs)}")
        with self.lock:
            handed = self.handed_out.get(needs, 0)
            self.handed_out[needs] = handed + 1
        return holders[handed % len(holders)]

    def any(self, collection: str) -> int:
        return random.choice(self.ids[collection])

    def some(self, collection: str, count: int) -> list[int]:
        ids = self.ids[collection]
        return random.sample(ids, min(count, len(ids)))


def _accounts(
    people: list[dict[str, Any]], roles: list[dict[str, Any]], everything: set[str]
) -> list[Account]:
    """The people who share the setup account's password: its email domain; it comes first."""
    domain = USERNAME.rpartition("@")[2]
    granted = {role["id"]: set(role["permissions"]) for role in roles}
    accounts = [
        Account(
            person["email"],
            frozenset(
                everything
                if person["is_superuser"]
                else {p for role in person["roles"] for p in granted.get(role["id"], ())}
            ),
        )
        for person in people
        if person["email"].endswith(f"@{domain}")
    ]
    return sorted(accounts, key=lambda account: account.email != USERNAME)


catalogue = Catalogue()


def requires(permission: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Run the task only for a user whose person holds `permission`."""

    def decorate(run: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(run)
        def allowed(user: Any) -> None:
            if permission in user.granted:
                run(user)

        return allowed

    return decorate


class MixClient(FastHttpUser):
    """The requests every mix sends, grouped by endpoint; `auth()` says who sends them."""

    abstract = True
    # A process of locust holds one connection per user; the server decides the rest.
    connection_timeout = 10.0
    network_timeout = 30.0

    def auth(self) -> dict[str, str]:
        """The headers that identify the user (none by default)."""
        return {}

    def get(self, path: str, name: str, **params: Any) -> Any:
        """GET `path` (with query `params`) grouped under `name`; the JSON body or None."""
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        with self.client.get(
            f"{API}{path}{query}", headers=self.auth(), name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(failure(response))
                return None
            return response.json()

    def send(
        self,
        method: str,
        path: str,
        *,
        name: str,
        expected: int,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """A write grouped under `name`; the response when it answered `expected`, else None."""
        with self.client.request(
            method,
            f"{API}{path}",
            json=json,
            headers={**self.auth(), **(headers or {})},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != expected:
                response.failure(failure(response))
                return None
            return response

    def process_links(self, count: int) -> dict[str, list[int]]:
        return {
            f"{kind[:-1]}_ids": catalogue.some(kind, count)
            for kind in ("departments", "locations", "resources", "roles")
        }


class AtlasClient(MixClient):
    """Signs in as a person of its own, keeps the token fresh, and knows the ids to ask for."""

    abstract = True
    # What the person this user signs in as must hold.
    needs: ClassVar[frozenset[str]] = frozenset()

    email = ""
    granted: frozenset[str] = frozenset()
    access_token = ""
    refresh_token = ""
    refresh_after = 0.0

    def on_start(self) -> None:
        catalogue.load(self)
        account = catalogue.account_for(self.needs)
        self.granted = account.permissions
        if account.email != self.email:
            self.sign_in(account.email)
        readiness.mark()

    def sign_in(self, email: str) -> bool:
        """Sign in as `email`, honouring Retry-After; whether it worked."""
        self.email = email
        for attempt in range(SIGN_IN_ATTEMPTS):
            with (
                pacer.turn(),
                self.client.post(
                    f"{API}/auth/token",
                    data=urlencode({"username": email, "password": PASSWORD}),
                    headers=FORM,
                    name="/auth/token",
                    catch_response=True,
                ) as response,
            ):
                pacer.observe(response)
                if response.status_code == 200:
                    self._keep(response.json())
                    return True
                response.failure(failure(response))
                retry_after = response.headers.get("retry-after")
            time.sleep(float(retry_after) if retry_after else 2**attempt)  # gevent-patched
        return False

    def _keep(self, pair: dict[str, Any]) -> None:
        self.access_token = pair["access_token"]
        self.refresh_token = pair["refresh_token"]
        self.refresh_after = time.monotonic() + pair["expires_in"] * REFRESH_AT

    def auth(self) -> dict[str, str]:
        """The Authorization header, refreshing the pair first when the token is old."""
        if not self.refresh_token:
            self.sign_in(self.email)
        elif time.monotonic() >= self.refresh_after:
            with (
                pacer.turn(),
                self.client.post(
                    f"{API}/auth/refresh",
                    json={"refresh_token": self.refresh_token},
                    name="/auth/refresh",
                    catch_response=True,
                ) as response,
            ):
                pacer.observe(response)
                if response.status_code == 200:
                    self._keep(response.json())
                else:
                    response.failure(failure(response))
                    self.refresh_token = ""
            if not self.refresh_token:
                self.sign_in(self.email)
        return {"Authorization": f"Bearer {self.access_token}"}

    def collect(self, collection: str, **params: Any) -> list[dict[str, Any]]:
        """The items of `collection`, page by page, up to MAX_IDS."""
        items: list[dict[str, Any]] = []
        cursor = None
        while len(items) < MAX_IDS:
            page_params = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
            page = self.get(f"/{collection}", name="[setup] collect ids", **page_params)
            if page is None:
                break
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items


class AtlasUser(AtlasClient):
    """Someone mapping processes: browses, searches, drills into trees; sometimes edits."""

    wait_time = between(0.5, 3)

    def on_start(self) -> None:
        super().on_start()
        self.mine: dict[int, str] = {}  # processes this user created -> their ETag

    # Processes: the hub, most of the traffic.

    @tag("read", "process")
    @task(25)
    def read_process(self) -> None:
        self.get(f"/processes/{catalogue.any('processes')}", name="/processes/{id}")

    @tag("read", "process", "list")
    @task(10)
    def list_processes(self) -> None:
        params: dict[str, Any] = {"limit": random.choice((20, 50, 100))}
        if random.random() < 0.5:
            params["status"] = random.choice(("active", "draft", "retired"))
        if random.random() < 0.3:
            params["criticality"] = random.sample(("high", "critical", "medium", "low"), 2)
        if random.random() < 0.5:
            params["sort"] = random.choice(("-created_at", "title", "-updated_at", "criticality"))
        self.get("/processes", name="/processes?filters", **params)

    @tag("read", "process", "list")
    @task(5)
    def walk_process_pages(self) -> None:
        params: dict[str, Any] = {"limit": 50, "sort": random.choice(("title", "-created_at"))}
        page = self.get("/processes", name="/processes?sort", **params)
        for _ in range(random.randint(1, 3)):
            if not page or not page.get("next_cursor"):
                return
            page = self.get(
                "/processes", name="/processes?cursor", cursor=page["next_cursor"], **params
            )

    @tag("read", "process", "search")
    @task(4)
    def search_processes(self) -> None:
        word = random.choice(("audit", "order", "supplier", "London", "payroll", "ship", "data"))
        self.get("/processes", name="/processes?q", q=word, limit=20)

    @tag("read", "process", "list", "department")
    @task(4)
    def processes_of_a_subtree(self) -> None:
        root = random.choice(catalogue.roots["departments"])
        self.get(
            "/processes",
            name="/processes?department_id&include_descendants",
            department_id=root,
            include_descendants="true",
            criticality=random.choice(("high", "critical")),
            limit=50,
        )

    @tag("read", "process", "reverse")
    @task(6)
    def reverse_view(self) -> None:
        kind = random.choice(("departments", "locations", "resources", "roles"))
        self.get(f"/{kind}/{catalogue.any(kind)}/processes", name=f"/{kind}/{{id}}/processes")

    @tag("write", "process")
    @task(3)
    @requires("processes:write")
    def create_process(self) -> None:
        body = {
            "title": f"Load test process {random.randrange(10**9)}",
            "description": "Created by locust.",
            "criticality": random.choice(("low", "medium", "high", "critical")),
            "owner_id": catalogue.any("users"),
            **self.process_links(random.randint(1, 3)),
        }
        response = self.send("POST", "/processes", name="/processes", expected=201, json=body)
        if response is not None:
            self.mine[response.json()["id"]] = response.headers.get("etag", "")

    @tag("write", "process")
    @task(3)
    @requires("processes:write")
    def update_process(self) -> None:
        if not self.mine:
            return
        process_id = random.choice(list(self.mine))
        body: dict[str, Any] = {"status": random.choice(("draft", "active"))}
        kind = random.choice(("department_ids", "location_ids", "resource_ids", "role_ids"))
        body[kind] = self.process_links(random.randint(0, 3))[kind]
        response = self.send(
            "PATCH",
            f"/processes/{process_id}",
            name="/processes/{id}",
            expected=200,
            json=body,
            headers={"If-Match": self.mine[process_id]},
        )
        if response is not None:
            self.mine[process_id] = response.headers.get("etag", "")

    @tag("write", "process")
    @task(1)
    @requires("processes:write")
    def delete_process(self) -> None:
        if len(self.mine) < 3:
            return
        process_id = next(iter(self.mine))
        etag = self.mine.pop(process_id)
        self.send(
            "DELETE",
            f"/processes/{process_id}",
            name="/processes/{id}",
            expected=204,
            headers={"If-Match": etag},
        )

    # The organisation around them.

    @tag("read", "department", "tree")
    @task(3)
    def department_tree(self) -> None:
        root = random.choice(catalogue.roots["departments"])
        self.get(f"/departments/{root}/tree", name="/departments/{id}/tree")

    @tag("read", "location", "tree")
    @task(3)
    def location_tree(self) -> None:
        root = random.choice(catalogue.roots["locations"])
        self.get(f"/locations/{root}/tree", name="/locations/{id}/tree")

    @tag("read", "department", "location", "resource", "role", "user")
    @task(8)
    def read_one(self) -> None:
        kind = random.choice(("departments", "locations", "resources", "roles", "users"))
        self.get(f"/{kind}/{catalogue.any(kind)}", name=f"/{kind}/{{id}}")

    @tag("read", "department", "list")
    @task(2)
    def list_departments(self) -> None:
        parent = random.choice(catalogue.roots["departments"])
        self.get("/departments", name="/departments?parent_id", parent_id=parent, sort="name")

    @tag("read", "location", "list")
    @task(2)
    def list_locations(self) -> None:
        kind = random.choice(("site", "building", "room"))
        self.get("/locations", name="/locations?kind", kind=kind, limit=50)

    @tag("read", "resource", "list")
    @task(2)
    def list_resources(self) -> None:
        params: dict[str, Any] = {"status": random.choice(("available", "in_use")), "limit": 50}
        if random.random() < 0.5:
            params["kind"] = random.choice(("equipment", "system", "document"))
        self.get("/resources", name="/resources?filters", **params)

    @tag("read", "role", "list")
    @task(1)
    def list_roles(self) -> None:
        self.get("/roles", name="/roles", limit=100)

    @tag("read", "user", "list")
    @task(2)
    def list_users(self) -> None:
        params: dict[str, Any] = {"limit": 50, "is_active": "true"}
        if random.random() < 0.5:
            params["department_id"] = catalogue.any("departments")
        else:
            params["q"] = random.choice(("an", "mar", "li", "son"))
        self.get("/users", name="/users?filters", **params)

    @tag("read", "user")
    @task(2)
    def me(self) -> None:
        self.get("/users/me", name="/users/me")

    @tag("read", "user")
    @task(1)
    def permissions(self) -> None:
        self.get("/permissions", name="/permissions")

    @tag("write", "resource")
    @task(1)
    @requires("resources:write")
    def update_resource(self) -> None:
        resource_id = catalogue.any("resources")
        status = random.choice(("available", "in_use", "maintenance"))
        self.send(
            "PATCH",
            f"/resources/{resource_id}",
            name="/resources/{id}",
            expected=200,
            json={"status": status},
        )

    # Audit.

    @tag("read", "audit")
    @task(2)
    @requires("audit:read")
    def audit_of_a_process(self) -> None:
        process_id = random.choice(list(self.mine) or catalogue.ids["processes"])
        self.get(
            "/audit-events",
            name="/audit-events?entity",
            entity_type="process",
            entity_id=process_id,
        )

    @tag("read", "audit", "list")
    @task(2)
    @requires("audit:read")
    def recent_audit(self) -> None:
        self.get("/audit-events", name="/audit-events?recent", limit=50)


class ReferenceMixTasks(MixClient):
    """The reference project's mix (weights 1:2:3:4), 5 links of each kind: the one definition.

    `ReferenceMix*` send it to Atlas as signed-in users, `RawMix*` to the raw-limit fixture
    (`reference_app.py`) as nobody: the same requests, the same names in locust's tables.
    """

    abstract = True

    @tag("write", "process")
    @task(1)
    def create_process(self) -> None:
        body = {
            "title": f"Reference process {random.randrange(10**9)}",
            "description": "random_description",
            **self.process_links(LINKS_PER_KIND),
        }
        self.send("POST", "/processes", name="/processes", expected=201, json=body)

    @tag("write", "process")
    @task(2)
    def replace_links(self) -> None:
        body = {"title": "updated_title", **self.process_links(LINKS_PER_KIND)}
        process_id = catalogue.any("processes")
        self.send(
            "PATCH", f"/processes/{process_id}", name="/processes/{id}", expected=200, json=body
        )

    @tag("read", "process")
    @task(3)
    def read_process(self) -> None:
        self.get(f"/processes/{catalogue.any('processes')}", name="/processes/{id}")

    @tag("read", "process", "list")
    @task(4)
    def list_processes(self) -> None:
        self.get("/processes", name="/processes?limit=100", limit=100)


class ReferenceMix(ReferenceMixTasks, AtlasClient):
    """The reference mix on our API, as people holding `processes:write`."""

    wait_time = between(0.1, 2)
    needs = frozenset({"processes:write"})


class ReferenceMixNoThink(ReferenceMix):
    """The reference mix with no think time: as many requests as the server answers."""

    wait_time = constant(0)


class RawClient(MixClient):
    """A user of the raw-limit fixture: no sign-in; the ids come from its `/catalogue`."""

    abstract = True

    def on_start(self) -> None:
        catalogue.load_raw(self)
        readiness.mark()


class RawMix(ReferenceMixTasks, RawClient):
    """The reference mix against the raw-limit fixture, 0.1-2 s think time."""

    wait_time = between(0.1, 2)


class RawMixNoThink(RawMix):
    """The reference mix against the raw-limit fixture, no think time."""

    wait_time = constant(0)


class ProcessReader(AtlasClient):
    """GET a process by id at a fixed rate: the latency signal during a login storm."""

    wait_time = constant_throughput(float(os.environ.get("ATLAS_READER_RPS", "5")))

    @tag("read", "process")
    @task
    def read_process(self) -> None:
        self.get(f"/processes/{catalogue.any('processes')}", name="/processes/{id}")


class LoginStorm(FastHttpUser):
    """Signs in again and again with the right password: one argon2 verify per request."""

    wait_time = constant(0)

    @tag("login")
    @task
    def sign_in(self) -> None:
        with self.client.post(
            f"{API}/auth/token",
            data=urlencode({"username": USERNAME, "password": PASSWORD}),
            headers=FORM,
            name="/auth/token [storm]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(failure(response))
