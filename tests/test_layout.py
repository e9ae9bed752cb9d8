"""The package's rooms and the one direction imports flow in: cli -> jobs -> session -> kinds ->
measures -> engine, models, io; kind-specific code in its kind's module (xai_cli/kinds/);
and the one place that may import a Keras backend's framework: engine/backends/.

Imports are read from the source with ``ast`` (run-time imports inside functions
included), so a module that reaches back up fails here before it confuses a reader.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xai_cli"

# room -> the rooms it may import from (besides itself)
ALLOWED = {
    "errors": set(),
    "catalogue": set(),
    "models": {"errors"},
    "io": {"errors"},
    "engine": {"errors", "catalogue", "models", "io"},
    "measures": {"errors", "catalogue", "engine", "models", "io"},
    "kinds": {"errors", "catalogue", "engine", "models", "io", "measures"},
    "session": {"errors", "catalogue", "engine", "models", "io", "kinds"},
    "jobs": {"errors", "catalogue", "engine", "models", "io", "measures", "kinds", "session"},
    "api": {"errors", "catalogue", "engine", "models", "io", "measures", "kinds", "session", "jobs"},
    "cli": {"errors", "catalogue", "engine", "models", "io", "measures", "kinds", "session", "jobs",
            "__init__"},
    "__main__": {"cli"},
    "__init__": {"api", "engine"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every xai_cli module ``path`` imports, as dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("xai_cli"):
                continue
            for alias in node.names:  # "from . import x" imports the module x
                candidate = f"{module}.{alias.name}"
                found.add(candidate if _exists(candidate) else module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("xai_cli")}
    return found - {name}


FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch"}


def _frameworks(path: Path) -> set[str]:
    """The backend frameworks ``path`` imports (top-level package names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found & FRAMEWORKS


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_one_way(module):
    room = _room(module)
    assert room in ALLOWED, f"{module} is in no known room: add it to ALLOWED and the README"
    wrong = {m for m in _imports(MODULES[module])
             if _room(m) != room and _room(m) not in ALLOWED[room]}
    assert not wrong, f"{module} ({room}) imports {sorted(wrong)}"


def test_no_import_cycles():
    graph = {m: {i for i in _imports(p) if i in MODULES} for m, p in MODULES.items()}
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join([*path, module])}"
        state[module] = "open"
        for imported in sorted(graph[module]):
            visit(imported, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_the_checker_sees_relative_and_late_imports():
    jobs = _imports(PACKAGE / "jobs" / "tune.py")
    assert {"xai_cli.session", "xai_cli.engine.composites", "xai_cli.errors"} <= jobs
    running = PACKAGE / "cli" / "running.py"
    assert "io.report" not in running.read_text().split("\ndef ")[0]   # not at the top
    assert "xai_cli.io.report" in _imports(running)   # only inside write_page


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_each_backends_own_module_imports_its_framework(module):
    own = {module.rsplit(".", 1)[1]} if module.startswith("xai_cli.engine.backends.") else set()
    assert _frameworks(MODULES[module]) <= own, \
        f"{module} imports {sorted(_frameworks(MODULES[module]) - own)}: keras.ops, or a function " \
        "of engine/backends/"


def test_the_checker_sees_framework_imports():
    backends = PACKAGE / "engine" / "backends"
    assert [_frameworks(backends / f"{name}.py") for name in ("tensorflow", "jax", "torch")] \
        == [{"tensorflow"}, {"jax"}, {"torch"}]


# Code of one kind of input lives in its kind's module (xai_cli/kinds/<kind>.py) and in
# the modules only that kind uses; everything above the kinds asks the kind instead.
KIND_ONLY = {   # module -> the modules that may import it
    "xai_cli.kinds.image": {"xai_cli.kinds", "xai_cli.kinds.clip", "xai_cli.kinds.signal"},   # image kinds
    "xai_cli.kinds.clip": {"xai_cli.kinds"},
    "xai_cli.kinds.signal": {"xai_cli.kinds"},
    "xai_cli.io.clips": {"xai_cli.kinds.clip"},
    "xai_cli.io.clipmaps": {"xai_cli.kinds.clip"},
    "xai_cli.io.signals": {"xai_cli.kinds.signal"},
    "xai_cli.io.signalmaps": {"xai_cli.kinds.signal"},
    "xai_cli.kinds.document": {"xai_cli.kinds"},
    "xai_cli.kinds.words": {"xai_cli.kinds.document", "xai_cli.api"},   # the API names its result
    "xai_cli.kinds.deletion": {"xai_cli.kinds.document"},
    "xai_cli.kinds.buckets": {"xai_cli.kinds.document"},
    "xai_cli.io.wordmaps": {"xai_cli.kinds.words"},
    "xai_cli.io.documents": {"xai_cli.kinds.document", "xai_cli.kinds.words",
                             "xai_cli.kinds.deletion", "xai_cli.kinds.buckets",
                             "xai_cli.engine.tokens"},
}
ABOVE_THE_KINDS = ("session", "jobs", "api", "cli")
# what branching on a kind looks like: the text flag, image ranks and shapes
KIND_BRANCHES = (r"graph\.text\b", r"reads_documents", r"\btokenizer\b", r"input_shape\[",
                 r"shape\[1:3\]", r"\.ndim\s*==", r"len\([^)]*shape\)\s*==")


@pytest.mark.parametrize("module", sorted(KIND_ONLY))
def test_kind_specific_modules_are_imported_by_their_kind_only(module):
    users = {m for m, path in MODULES.items() if module in _imports(path)}
    assert users <= KIND_ONLY[module], \
        f"{module} is {sorted(KIND_ONLY[module])}'s own; {sorted(users - KIND_ONLY[module])} import it"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _room(m) in ABOVE_THE_KINDS))
def test_nothing_above_the_kinds_branches_on_a_kind(module):
    source = MODULES[module].read_text()
    found = [p for p in KIND_BRANCHES if re.search(p, source)]
    assert not found, f"{module} matches {found}: ask the session's kind (xai_cli/kinds/)"


def test_the_kind_checks_can_fail():
    assert any(re.search(p, "if len(graph.input_shape) == 3:") for p in KIND_BRANCHES)
    assert "xai_cli.io.documents" in _imports(PACKAGE / "kinds" / "document.py")


def test_every_package_is_installed():
    """A folder of modules missing from pyproject.toml's packages works in an editable
    install and is missing from a wheel."""
    import tomllib
    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("*.py")}
    assert folders <= listed, f"not in pyproject.toml's packages: {sorted(folders - listed)}"
    assert all((PACKAGE.parent.joinpath(*f.split(".")) / "__init__.py").is_file() for f in folders)
