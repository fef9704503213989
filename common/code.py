"""Which code made a result: the project modules a script or module runs, and a hash of their source.

A stage's completion record and every cached artefact's key hold the sha256 of the code that made
it: the module (or script) itself and every project module it imports, directly or through
others, also inside functions (the scripts import their heavy modules inside ``main``). Imports are
read with ``ast``, nothing is imported. Each file is hashed by its *normalised* source, the
``ast.dump`` of its syntax tree without docstrings, so an edit of a comment, a docstring or the
layout changes no hash, and any edit of what runs does.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "pruning", "quantization", "distillation", "combined", "study", "report")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@lru_cache(maxsize=None)
def _read(path: Path, stamp: tuple[int, int]) -> tuple[tuple[tuple[int, str, tuple[str, ...]], ...], str]:
    """From one parse of ``path``: its imports as (level, module, imported names) -- ``import a.b``
    is (0, 'a.b', ()) -- and its normalised sha256. ``stamp`` (size, mtime) only tells this
    process's memo that the file was rewritten since, it decides nothing."""
    tree = ast.parse(path.read_text(), str(path))
    imports = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [(0, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append((node.level, node.module or "", tuple(alias.name for alias in node.names)))
    return tuple(imports), hashlib.sha256(ast.dump(_strip_docstrings(tree)).encode()).hexdigest()


def _facts(path: Path) -> tuple[tuple[tuple[int, str, tuple[str, ...]], ...], str]:
    stat = path.stat()
    return _read(path, (stat.st_size, stat.st_mtime_ns))


def normalised_sha256(path: Path) -> str:
    """sha256 (hex) of the syntax tree of the Python file ``path`` without docstrings (comments
    and layout are not in a syntax tree)."""
    return _facts(path)[1]


def module_file(name: str, root: Path = PROJECT_ROOT) -> Path | None:
    """The file of the project module ``name`` ('common.training' -> common/training.py, a package
    -> its __init__.py), or None when it is not one of the project's packages."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1])


def _imported(path: Path, root: Path) -> set[str]:
    """Dotted names of every module ``path`` imports (and the packages above them), relative
    imports resolved from its package under ``root``."""
    names: set[str] = set()
    for level, module, members in _facts(path)[0]:
        if level:   # relative: from the file's package, up level - 1
            package = _package_of(path, root).split(".")
            package = package[:len(package) - level + 1]
            module = ".".join([*package, module] if module else package)
        names |= {module, *(f"{module}.{member}" for member in members)}
    return {".".join(name.split(".")[:i]) for name in names for i in range(1, len(name.split(".")) + 1)}


def code_files(entry: str | Path, root: Path = PROJECT_ROOT) -> list[Path]:
    """The file of ``entry`` (a module name such as 'distillation.study', or a script's path) and
    of every project module it imports, transitively; sorted."""
    start = Path(entry) if str(entry).endswith(".py") else module_file(str(entry), root)
    if start is None:
        raise ValueError(f"{entry!r} is not a module or script of the project")
    start = start if start.is_absolute() else root / start
    seen, todo = {start}, [start]
    while todo:
        for name in _imported(todo.pop(), root):
            found = module_file(name, root)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    return sorted(seen)


def code_hashes(entry: str | Path, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``{path relative to the project: normalised sha256}`` of ``code_files(entry)``: what a
    completion record keeps, so that it can name the file whose change reruns a stage."""
    return {path.relative_to(root).as_posix(): normalised_sha256(path) for path in code_files(entry, root)}


def code_sha256(module: str) -> str:
    """One sha256 of ``code_hashes(module)``: the code part of a cached artefact's key, e.g.
    ``code_sha256('distillation.study')`` for a student."""
    digest = hashlib.sha256()
    for name, sha in sorted(code_hashes(module).items()):
        digest.update(f"{name}:{sha}\n".encode())
    return digest.hexdigest()
