"""Which code made a result (common.code): a script's project modules, found through every import
(also inside functions and relative ones), hashed by their syntax tree without docstrings."""

from common.code import code_files, code_hashes, normalised_sha256


def write(root, relative: str, text: str):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_comments_docstrings_and_layout_change_no_hash_and_code_does(tmp_path):
    path = write(tmp_path, "common/a.py", '"""A module."""\n\ndef f(x):\n    """Twice."""\n    return 2 * x\n')
    before = normalised_sha256(path)
    write(tmp_path, "common/a.py", '"""Another docstring."""\n# a comment\n\n\ndef f( x ):\n    return 2*x  # same\n')
    assert normalised_sha256(path) == before
    write(tmp_path, "common/a.py", '"""A module."""\n\ndef f(x):\n    return 3 * x\n')
    assert normalised_sha256(path) != before


def test_a_script_s_code_is_every_project_module_it_imports_transitively(tmp_path):
    write(tmp_path, "common/__init__.py", "")
    write(tmp_path, "common/a.py", "import os\n\ndef g():\n    from common.b import h\n    return h()\n")
    write(tmp_path, "common/b.py", "from . import c\n\ndef h():\n    return c.k\n")
    write(tmp_path, "common/c.py", "k = 1\n")
    write(tmp_path, "common/unused.py", "k = 2\n")
    write(tmp_path, "pruning/01_x.py", "def main():\n    from common.a import g\n    g()\n")
    files = [p.relative_to(tmp_path).as_posix() for p in code_files("pruning/01_x.py", tmp_path)]
    assert files == ["common/__init__.py", "common/a.py", "common/b.py", "common/c.py", "pruning/01_x.py"]
    before = code_hashes("pruning/01_x.py", tmp_path)
    write(tmp_path, "common/c.py", "k = 3\n")                      # two imports away
    after = code_hashes("pruning/01_x.py", tmp_path)
    assert [name for name in before if before[name] != after[name]] == ["common/c.py"]
