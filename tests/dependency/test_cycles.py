"""Finding the cycles of a drawn graph, and naming those a walk's paths closed."""

from __future__ import annotations

from app.domains.dependency.queries import cycles_among, distinct_cycles


def test_a_graph_without_cycles_has_none() -> None:
    assert cycles_among([1, 2, 3, 4], [(1, 2), (2, 3), (1, 3), (3, 4)]) == []


def test_each_group_of_processes_in_a_loop_gives_one_cycle_from_its_lowest_id() -> None:
    edges = [(5, 6), (6, 7), (7, 5), (7, 8), (8, 9), (9, 8), (1, 5)]
    assert cycles_among(range(1, 10), edges) == [[5, 6, 7, 5], [8, 9, 8]]


def test_the_cycle_found_is_a_shortest_way_back() -> None:
    # 1 -> 2 -> 3 -> 4 -> 1 and the shortcut 2 -> 4: the way back is 1, 2, 4, 1.
    edges = [(1, 2), (2, 3), (3, 4), (4, 1), (2, 4)]
    assert cycles_among([1, 2, 3, 4], edges) == [[1, 2, 4, 1]]


def test_a_long_chain_does_not_exhaust_the_stack() -> None:
    nodes = list(range(5000))
    edges = [(i, i + 1) for i in range(4999)] + [(4999, 0)]
    [cycle] = cycles_among(nodes, edges)
    assert cycle[0] == cycle[-1] == 0
    assert len(cycle) == 5001


def test_a_walks_closing_paths_name_each_cycle_once() -> None:
    paths = ["1,4,5,6,4", "2,5,6,4,5", "3,7,8,7"]
    assert distinct_cycles(paths) == [[4, 5, 6, 4], [7, 8, 7]]
