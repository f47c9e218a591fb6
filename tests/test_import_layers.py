"""The core's packages import in one direction (``zoo.core.LAYERS``), models import only the core, no cycles.

Every import statement counts, at the top of a file or inside a function: an import hidden
in a function still makes the module depend on what it imports.
"""

import ast
import os

import pytest

import zoo.core

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ZOO_DIR = os.path.join(REPO_ROOT, "zoo")


def module_files(root, package):
    """dotted module name -> path, for every .py file under ``root`` (``package`` is its dotted name)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for filename in files:
            if filename.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, filename), root)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                found[".".join([package, *rel])] = os.path.join(folder, filename)
    return found


def imports_of(path, module, modules):
    """The modules of ``modules`` (dotted names) that ``path`` imports, anywhere in the file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                parts = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                targets.add(candidate if candidate in modules else base)
    return {t for t in targets if t == "zoo" or t.startswith("zoo.")}


def model_packages():
    return sorted(name for name in os.listdir(ZOO_DIR) if os.path.isfile(os.path.join(ZOO_DIR, name, "recipe.py")))


def violations(modules):
    """Every import against the rules, as readable lines."""
    layers, standalone = zoo.core.LAYERS, zoo.core.STANDALONE
    models = set(model_packages()) | {"convert"}  # convert: converters, held to the models' rule
    bad = []
    for module, path in modules.items():
        parts = module.split(".")
        for target in sorted(imports_of(path, module, modules)):
            t = target.split(".")
            core_package = t[2] if len(t) > 2 and t[:2] == ["zoo", "core"] else None
            if parts[:2] == ["zoo", "core"]:
                if len(parts) == 2:
                    bad.append(f"{module} (the core's index) imports {target}")
                elif parts[2] in standalone:
                    # a standalone package's modules may import each other (an app copies them together,
                    # e.g. music.py with counter_random.py), nothing else of the zoo
                    if core_package != parts[2]:
                        bad.append(f"{module} is standalone (phone apps copy it) but imports {target}")
                elif core_package in standalone:
                    pass  # imports nothing of the zoo, so any layer may use it (the graph and the app loop share it)
                elif core_package is None or core_package not in layers or \
                        layers.index(core_package) > layers.index(parts[2]):
                    bad.append(f"{module} ({parts[2]}) imports {target}, which is not below it in {layers}")
            elif t[-1].startswith("tflite_") and len(t) == 3 and t[1] in models:
                bad.append(f"{module} imports the app script {target}: copyable scripts are not libraries "
                           "(what they share is zoo.core.apps)")
            elif len(parts) > 1 and parts[1] in models:
                own = t[:2] == parts[:2]
                if not own and (core_package is None or core_package.startswith("_")):
                    bad.append(f"{module} imports {target}: a model imports only zoo.core's packages and itself")
            elif module in ("zoo", "zoo.__main__") and core_package is None and target != "zoo" and \
                not target.startswith("zoo.convert"):
                bad.append(f"{module} imports the model module {target}: find models through the registry")
    return bad


def cycles(modules):
    """Strongly connected groups of more than one module (Tarjan), over every import statement."""
    graph = {m: sorted(imports_of(p, m, modules) & set(modules)) for m, p in modules.items()}
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_core_imports_in_one_direction_and_models_only_the_core():
    modules = module_files(ZOO_DIR, "zoo")
    assert "zoo.core.runtime.runners" in modules and "zoo.dcgan.recipe" in modules
    assert violations(modules) == []


def test_no_import_cycle_in_the_zoo():
    assert cycles(module_files(ZOO_DIR, "zoo")) == []


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The checks above fail on a package that breaks each rule (so their passing means something)."""
    files = {
        "core/__init__.py": "",
        "core/runtime/__init__.py": "",
        "core/runtime/runners.py": "def f():\n    from zoo.core.recipes.registry import get_recipe\n",
        "core/recipes/__init__.py": "",
        "core/recipes/registry.py": "import zoo\nfrom zoo.core.runtime import runners\n",
        "core/apps/__init__.py": "",
        "core/apps/ddim.py": "from zoo.core.runtime import errors\n",
        "dcgan/__init__.py": "",
        "dcgan/recipe.py": "from zoo.gan import model\nfrom zoo.core.recipes.registry import register\n"
                           "from zoo.dcgan import tflite_sample\n",
        "dcgan/tflite_sample.py": "",
        "gan/__init__.py": "",
        "gan/recipe.py": "",
        "gan/model.py": "",
    }
    for rel, text in files.items():
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        (tmp_path / rel).write_text(text)
    modules = module_files(str(tmp_path), "zoo")
    global ZOO_DIR
    saved, ZOO_DIR = ZOO_DIR, str(tmp_path)
    try:
        found = "\n".join(violations(modules))
        loops = cycles(modules)
    finally:
        ZOO_DIR = saved
    assert "zoo.core.runtime.runners (runtime) imports zoo.core.recipes.registry" in found
    assert "zoo.core.recipes.registry (recipes) imports zoo," in found
    assert "zoo.core.apps.ddim is standalone" in found
    assert "zoo.dcgan.recipe imports zoo.gan.model" in found
    assert "zoo.dcgan.recipe imports the app script zoo.dcgan.tflite_sample" in found
    assert ["zoo.core.recipes.registry", "zoo.core.runtime.runners"] in loops


@pytest.mark.parametrize("folder", ["zoo", "benchmarks", "tests", "notebooks"])
def test_no_sys_path_edits(folder):
    """Modules import by package (``python -m benchmarks.run``, ``python -m zoo.gpt.tflite_generate``), never
    by editing ``sys.path``."""
    edits = []
    for module, path in module_files(os.path.join(REPO_ROOT, folder), folder).items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            target = node.func.value if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else \
                node.target if isinstance(node, ast.AugAssign) else None
            if isinstance(target, ast.Attribute) and target.attr == "path" and \
                    isinstance(target.value, ast.Name) and target.value.id == "sys":
                edits.append(f"{path}:{node.lineno}")
    assert edits == []
