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
- `ProcessReader`: GET a process by id at a fixed rate (`ATLAS_READER_RPS` per user), the
  quiet signal next to `LoginStorm`, which signs in again and again (argon2 each time).

Every user signs in once (`ATLAS_USERNAME` / `ATLAS_PASSWORD`, default the demo admin) and
refreshes its access token before it expires. No id is hard-coded: the first user of each
locust process reads the ids of every collection from the API.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any
from urllib.parse import urlencode

from gevent.lock import Semaphore
from locust.contrib.fasthttp import FastHttpUser

from locust import between, constant, constant_throughput, tag, task

API = "/api/v1"
USERNAME = os.environ.get("ATLAS_USERNAME", "admin@demo.process-atlas.test")
PASSWORD = (
    os.environ.get("ATLAS_PASSWORD") or os.environ.get("DEMO_PASSWORD") or "atlas-demo-password"
)
# Refresh once this share of the access token's lifetime has passed.
REFRESH_AT = 0.8
# Ids read per collection at start (a bigger database is sampled, not walked).
MAX_IDS = 2000
LINKS_PER_KIND = 5
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SIGN_IN_ATTEMPTS = 4


class Catalogue:
    """Ids of every collection, read once per locust process by its first user."""

    def __init__(self) -> None:
        self.lock = Semaphore()
        self.loaded = False
        self.ids: dict[str, list[int]] = {}
        self.roots: dict[str, list[int]] = {}

    def load(self, user: AtlasClient) -> None:
        with self.lock:
            if self.loaded:
                return
            for collection in (
                "processes",
                "departments",
                "locations",
                "resources",
                "roles",
                "users",
            ):
                self.ids[collection] = user.collect_ids(f"{API}/{collection}")
            for collection in ("departments", "locations"):
                self.roots[collection] = user.collect_ids(f"{API}/{collection}", root="true")
            missing = [name for name, ids in self.ids.items() if not ids]
            if missing:
                raise RuntimeError(f"no {', '.join(missing)} to work with: seed the demo data")
            self.loaded = True

    def any(self, collection: str) -> int:
        return random.choice(self.ids[collection])

    def some(self, collection: str, count: int) -> list[int]:
        ids = self.ids[collection]
        return random.sample(ids, min(count, len(ids)))


catalogue = Catalogue()


class AtlasClient(FastHttpUser):
    """Signs in once, keeps its access token fresh, and knows the ids to ask for."""

    abstract = True
    # A process of locust holds one connection per user; the server decides the rest.
    connection_timeout = 10.0
    network_timeout = 30.0

    access_token = ""
    refresh_token = ""
    refresh_after = 0.0

    def on_start(self) -> None:
        for attempt in range(SIGN_IN_ATTEMPTS):
            if self.sign_in():
                break
            time.sleep(2**attempt)  # gevent-patched: only this user waits
        catalogue.load(self)

    def sign_in(self, name: str = "/auth/token") -> bool:
        with self.client.post(
            f"{API}/auth/token",
            data=urlencode({"username": USERNAME, "password": PASSWORD}),
            headers=FORM,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"sign-in answered {response.status_code}")
                return False
            self._keep(response.json())
        return True

    def _keep(self, pair: dict[str, Any]) -> None:
        self.access_token = pair["access_token"]
        self.refresh_token = pair["refresh_token"]
        self.refresh_after = time.monotonic() + pair["expires_in"] * REFRESH_AT

    def auth(self) -> dict[str, str]:
        """The Authorization header, refreshing the pair first when the token is old."""
        if not self.refresh_token:
            self.sign_in()
        elif time.monotonic() >= self.refresh_after:
            with self.client.post(
                f"{API}/auth/refresh",
                json={"refresh_token": self.refresh_token},
                name="/auth/refresh",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    self._keep(response.json())
                else:
                    response.failure(f"refresh answered {response.status_code}")
                    self.sign_in()
        return {"Authorization": f"Bearer {self.access_token}"}

    def get(self, path: str, name: str, **params: Any) -> Any:
        """GET `path` (with query `params`) grouped under `name`; the JSON body or None."""
        query = f"?{urlencode(params, doseq=True)}" if params else ""
        with self.client.get(
            f"{API}{path}{query}", headers=self.auth(), name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
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
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return None
            return response

    def collect_ids(self, path: str, **params: Any) -> list[int]:
        ids: list[int] = []
        cursor = None
        while len(ids) < MAX_IDS:
            page_params = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
            page = self.get(path.removeprefix(API), name="[setup] collect ids", **page_params)
            if page is None:
                break
            ids.extend(item["id"] for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return ids

    def process_links(self, count: int) -> dict[str, list[int]]:
        return {
            f"{kind[:-1]}_ids": catalogue.some(kind, count)
            for kind in ("departments", "locations", "resources", "roles")
        }


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
    def recent_audit(self) -> None:
        self.get("/audit-events", name="/audit-events?recent", limit=50)


class ReferenceMix(AtlasClient):
    """The reference project's mix (weights 1:2:3:4) on our API, 5 links of each kind."""

    wait_time = between(0.1, 2)

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


class ReferenceMixNoThink(ReferenceMix):
    """The reference mix with no think time: as many requests as the server answers."""

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
                response.failure(f"sign-in answered {response.status_code}")
