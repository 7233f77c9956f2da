"""The floors of the house, checked by reading the source (``ast``), not by running it.

- every SQL statement lives in ``ingest/`` (the store), and so does every SQLAlchemy
  query: other packages may catch ``sqlalchemy.exc`` errors, nothing more;
- ``core/`` is the ground floor: it imports nothing of the project;
- ``nattero/`` is the top floor: no other package imports it;
- the packages' import graph has no cycle.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure  # no database, broker or browser: `make test-fast`

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "provisioning", "nattero", "gateway", "ingest", "rules", "api",
            "simulators", "deploy", "evaluation", "backtest")
STORE = "ingest"

# A string that starts or contains a statement. Upper case only: the project writes SQL
# keywords in capitals, and English prose ("select a site") must not match.
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE |ALTER |DROP "
                 r"|TRUNCATE |LISTEN |NOTIFY |COPY \w+|WITH \w+ AS \()")

# Files allowed to hold SQL outside ingest/, each with the reason. Keep this list short.
SQL_ALLOWED: set[str] = set()


def _sources(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the constant nodes that are docstrings (prose, not statements)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                found.add(id(body[0].value))
    return found


def sql_strings(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal (f-string parts included) that reads as SQL."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    hits: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in prose and SQL.search(node.value)):
            hits.append((node.lineno, " ".join(node.value.split())[:70]))
    return hits


def imported_packages(source: str) -> set[str]:
    """The project packages a module imports (at any depth: lazy and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES)
    return found


def import_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the files that import it."""
    graph: dict[str, dict[str, list[str]]] = {package: {} for package in PACKAGES}
    for package in PACKAGES:
        for path in _sources(package):
            for imported in imported_packages(path.read_text(encoding="utf-8")) - {package}:
                graph[package].setdefault(imported, []).append(_relative(path))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for imported in sorted(graph.get(node, {})):
            cycle = visit(imported, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def test_sql_is_recognised_in_plain_and_formatted_strings_but_not_in_docstrings() -> None:
    source = '''
"""Module docstring: SELECT is fine here."""
def rooms(conn, site):
    """SELECT here is prose too."""
    conn.execute("SELECT id FROM rooms WHERE site = %s", (site,))
    conn.execute(f"UPDATE devices SET presence = {site!r}")
    return "select a room"
'''
    assert [line for line, _ in sql_strings(source)] == [5, 6]


def test_every_sql_statement_lives_in_ingest() -> None:
    outside = [
        f"{_relative(path)}:{line}: {text}"
        for package in PACKAGES if package != STORE
        for path in _sources(package) if _relative(path) not in SQL_ALLOWED
        for line, text in sql_strings(path.read_text(encoding="utf-8"))
    ]
    assert not outside, ("SQL outside ingest/; move it into a query function in ingest/ "
                         "and call that:\n" + "\n".join(outside))


def test_the_sql_allow_list_names_only_files_that_still_hold_sql() -> None:
    stale = [name for name in sorted(SQL_ALLOWED)
             if not (ROOT / name).exists() or not sql_strings((ROOT / name).read_text())]
    assert not stale, f"no SQL left in {stale}: remove them from SQL_ALLOWED"


def test_only_ingest_builds_sqlalchemy_queries() -> None:
    outside = []
    for package in PACKAGES:
        if package == STORE:
            continue
        for path in _sources(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                else:
                    continue
                outside += [f"{_relative(path)}:{node.lineno}: {name}" for name in names
                            if name.split(".")[0] == "sqlalchemy" and name != "sqlalchemy.exc"]
    assert not outside, ("SQLAlchemy outside ingest/ (only sqlalchemy.exc may be caught "
                         "elsewhere); move the query into ingest/:\n" + "\n".join(outside))


def test_core_imports_nothing_of_the_project() -> None:
    imports = import_graph()["core"]
    assert not imports, ("core/ is the ground floor and must not import the project: "
                         + "; ".join(f"{files} import {package}"
                                     for package, files in sorted(imports.items())))


def test_only_nattero_imports_nattero() -> None:
    offenders = {package: imports["nattero"] for package, imports in import_graph().items()
                 if package != "nattero" and "nattero" in imports}
    assert not offenders, ("nattero/ is the top floor (CLI, wiring); nothing below may "
                           f"import it: {offenders}")


def test_the_package_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle is not None:
        steps = [f"{a} -> {b} ({', '.join(graph[a][b])})"
                 for a, b in itertools.pairwise(cycle)]
        raise AssertionError("the packages import each other in a cycle:\n" + "\n".join(steps))
