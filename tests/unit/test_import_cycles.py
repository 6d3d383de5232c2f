"""No two modules of ledger, projections and consumers import each other, directly or round a loop, counting
the imports inside functions (grimp reads them all): a cycle hidden by a function-level import is how the
layers blurred before issue 17. The import-linter contract (pyproject) checks siblings; this checks every
pair of modules, parents and children included."""

from __future__ import annotations

import grimp

# cycles accepted for now: none (a new cycle fails this test, with its modules named)
KNOWN: set[frozenset[str]] = set()  # none left: a new cycle fails here


def _cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.add(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(frozenset(comp))
    return found


def test_the_cycle_finder_finds_a_loop_of_three_and_nothing_in_a_chain() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_itself_round_a_loop() -> None:
    graph = grimp.build_graph("ledger", "projections", "consumers", cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    new = [sorted(c) for c in _cycles(edges) if c not in KNOWN]
    assert new == [], f"import cycles: {new}"
