"""No import circle anywhere in blocks / nas / experiments (function-local imports included)."""

from __future__ import annotations

from pathlib import Path

from tests.imports import cycles, import_graph

REPO = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_project_has_no_import_circle():
    graph = import_graph(REPO)
    assert "nas.search.loop" in graph and "nas.search.trial" in graph["nas.search.loop"]  # the graph is read
    found = cycles(graph)
    assert found == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_a_circle_hidden_in_a_function_is_found(tmp_path):
    root = write(tmp_path, {
        "nas/__init__.py": "",
        "nas/a.py": "from nas.b import helper\n",
        "nas/b.py": "def helper():\n    from nas import a  # 'hidden' in a function\n    return a\n",
        "nas/c.py": "import nas.a\n",  # imports into the circle without being part of it
    })  # fmt: skip
    assert cycles(import_graph(root, ["nas"])) == [["nas.a", "nas.b", "nas.a"]]


def test_relative_and_package_imports_are_resolved(tmp_path):
    root = write(tmp_path, {
        "pkg/__init__.py": "from .sub import thing\n",
        "pkg/sub/__init__.py": "from .leaf import thing\n",
        "pkg/sub/leaf.py": "def thing():\n    from .. import other\n    from .. import x\n",  # -> pkg
        "pkg/other.py": "from pkg.sub import leaf\n",
    })  # fmt: skip
    graph = import_graph(root, ["pkg"])
    assert graph["pkg.other"] == {"pkg.sub.leaf"} and graph["pkg.sub"] == {"pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg.other", "pkg"}  # a submodule, or the package's own attribute
    assert sorted(cycles(graph)) == [["pkg", "pkg.sub", "pkg.sub.leaf", "pkg"]]


def test_no_circle_and_type_checking_imports_are_not_circles(tmp_path):
    root = write(tmp_path, {
        "nas/__init__.py": "",
        "nas/a.py": "import nas.b\nimport os\n",
        "nas/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nas.a import x\n",
    })  # fmt: skip
    graph = import_graph(root, ["nas"])
    assert graph["nas.a"] == {"nas.b"} and graph["nas.b"] == set()
    assert cycles(graph) == []
