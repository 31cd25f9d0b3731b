from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from app.core.lookups import MAX_LINKS, OptionalId, StrictId
from app.core.summaries import PersonSummary
from app.domains.dependency.models import DependencyKind
from app.domains.process.models import Criticality, ProcessStatus

MAX_DEPTH = 10
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class DependencyWrite(BaseModel):
    """One process this one needs, in the body of `PUT .../dependencies`."""

    model_config = ConfigDict(extra="forbid")

    process_id: StrictId = Field(description="The process needed.")
    kind: DependencyKind | None = None
    note: Note | None = None


DependencySet = Annotated[
    list[DependencyWrite],
    Field(max_length=MAX_LINKS, description=f"At most {MAX_LINKS}; each process once."),
]


class ProcessBrief(TypedDict):
    """The process at the other end of a dependency."""

    id: int
    title: str
    status: ProcessStatus
    criticality: Criticality


class DependencyRead(BaseModel):
    """A dependency seen from one process: the process at the other end, kind and note."""

    process: ProcessBrief
    kind: DependencyKind | None
    note: str | None


class Direction(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"
    BOTH = "both"


class GraphNode(TypedDict):
    id: int
    title: str
    status: ProcessStatus
    criticality: Criticality
    owner: PersonSummary | None
    depth: int


# `from` is needed by `to`: an edge points the way work, and failures, flow.
GraphEdge = TypedDict("GraphEdge", {"from": int, "to": int, "kind": DependencyKind | None})


class GraphRead(BaseModel):
    """The processes around one, ready to draw: nodes, edges and the cycles among them."""

    root: int
    direction: Direction
    depth: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    cycles: list[list[int]] = Field(
        description="One cycle per group of processes that depend on each other in a loop, "
        "as ids along the edges, the first repeated at the end."
    )
    truncated: bool = Field(description="More processes were in reach than a graph shows.")


class ImpactFilters(BaseModel):
    """What fails: a process linked to any of these is directly affected."""

    department_id: OptionalId = None
    location_id: OptionalId = None
    resource_id: OptionalId = None
    role_id: OptionalId = None
    include_descendants: bool = Field(
        default=False,
        description="With department_id or location_id: the whole subtree fails.",
    )
    depth: Annotated[int, Field(ge=0, le=MAX_DEPTH)] = Field(
        default=MAX_DEPTH, description="How many dependencies downstream to follow."
    )


class ImpactItem(TypedDict):
    """An affected process: how far downstream, and the dependencies that reach it."""

    id: int
    title: str
    status: ProcessStatus
    criticality: Criticality
    owner: PersonSummary | None
    depth: int
    path: list[int]


class ImpactCounts(TypedDict):
    critical: int
    high: int
    medium: int
    low: int


class StatusCounts(TypedDict):
    draft: int
    active: int
    retired: int


class ImpactSummary(BaseModel):
    total: int
    direct: int = Field(description="Linked to what fails (depth 0).")
    downstream: int = Field(description="Reached only through dependencies.")
    by_criticality: ImpactCounts
    by_status: StatusCounts
    longest_chain: list[int] = Field(
        description="The path to the deepest affected process (the lowest id among equals)."
    )
    cycles: list[list[int]] = Field(
        description="Cycles met along the paths: ids, the first repeated at the end."
    )


class ImpactPage(BaseModel):
    """A page of affected processes, critical first, and the summary of all of them."""

    items: list[ImpactItem]
    next_cursor: str | None
    summary: ImpactSummary
