"""Start order: every process after what it depends on, file order otherwise;
unknown and circular dependencies are `Problem`\\ s."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ._problems import Problem, did_you_mean


def start_order(
    graph: Mapping[str, tuple[str, ...]],
    line: Callable[[str], int | None],
    problems: list[Problem],
) -> list[str]:
    """The names of *graph* (a process's name -> what it depends on, in
    file order) in start order; unknown and circular dependencies are added
    to *problems*, at the ``line`` of the process's ``depends_on``."""
    for name, dependencies in graph.items():
        for dependency in dependencies:
            if dependency not in graph:
                problems.append(
                    Problem(
                        line(name),
                        f"processes.{name} depends on "
                        f"unknown process {dependency!r}"
                        f"{did_you_mean(dependency, graph)}",
                    )
                )
    ordered: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*chain[chain.index(name) :], name]
            problems.append(
                Problem(line(name), f"dependency cycle: {' -> '.join(cycle)}")
            )
            return
        state[name] = "visiting"
        for dependency in graph[name]:
            if dependency in graph:
                visit(dependency, [*chain, name])
        state[name] = "done"
        ordered.append(name)

    for name in graph:
        visit(name, [])
    return ordered
