"""The layout shows the design: the library (common/) imports nothing from the task folders or the
study's machinery (study/, report/), no two modules import each other (no cycle at all), and no
source file is longer than 400 lines. Read with the standard ``ast`` module, nothing imported."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = "common"
ABOVE_THE_LIBRARY = ("pruning", "quantization", "distillation", "combined", "study", "report")
PACKAGES = (LIBRARY, *ABOVE_THE_LIBRARY)
MAX_LINES = 400


def sources(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file of every Python module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports (anywhere in the file, also inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name in modules}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    found = sources(root)
    return {name: imports_of(path, set(found)) - {name} for name, path in found.items()}


def library_violations(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every library module importing from above the library."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() if m.split(".")[0] == LIBRARY
                  for d in deps if d.split(".")[0] in ABOVE_THE_LIBRARY)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_library_imports_nothing_from_above_it():
    assert library_violations(import_graph()) == []


def test_no_two_modules_import_each_other():
    assert cycles(import_graph()) == []


def test_no_source_file_is_longer_than_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*sources().values(), *(ROOT / "tests").glob("*.py")]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checks_fail_on_an_upward_import_and_on_a_cycle(tmp_path):
    for package, text in (("common", "from study.plan import x\n"), ("study", "import study.b\n")):
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "a.py").write_text(text)
    (tmp_path / "study" / "plan.py").write_text("")
    (tmp_path / "study" / "b.py").write_text("from study import a\nimport study.a\n")
    graph = import_graph(tmp_path)
    assert library_violations(graph) == ["common.a -> study.plan"]
    assert cycles(graph) == [["study.a", "study.b"]]
