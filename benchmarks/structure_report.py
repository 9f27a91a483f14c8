"""How the package's modules import one another: cycles, upward imports, function-level imports.

    python benchmarks/structure_report.py [--root dubstudio] [--json OUT.json]

Read from the source with ``ast`` (nothing is imported), so it runs on any checkout, old or new:

- **package cycles**: strongly connected components of the graph of ``dubstudio.<package>``
  nodes (a top-level module such as ``dubstudio.cli_export`` counts as its own node);
- **module cycles**: the same over single modules, with module-level imports only (what Python
  actually executes at import time) and with every import;
- **upward imports**: imports from a lower layer into a higher one, for the layer order in
  ``pyproject.toml``'s import-linter contract "layers" (packages not in the contract, e.g. the
  old top-level modules, are placed by ``OLD_HOMES`` so an old checkout is measured against the
  same order);
- **function-level imports** of the package's own modules, and among them those that **dodge a
  cycle**: moved to the top of their module they would close a module-level import cycle.

Imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

# Where the modules of older layouts belong in today's layer order (for before/after counts).
OLD_HOMES = {
    "errors": "core", "paths": "core", "pipeline": "app", "batch": "app", "sample": "app",
    "cli_audio2expr": "cli", "cli_batch": "cli", "cli_dub": "cli", "cli_export": "cli", "cli_render": "cli",
    "cli_train": "cli", "cli": "cli",
}


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(mods: dict[str, Path], top: str):
    """(importer, imported module, module_level) for every import of a module of the package."""
    edges = []
    for m, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip, in_fn = set(), set()
        for n in ast.walk(tree):
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                skip |= {id(s) for s in ast.walk(n)}
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_fn |= {id(s) for s in ast.walk(n)}
        is_pkg = path.name == "__init__.py"
        for n in ast.walk(tree):
            if id(n) in skip or not isinstance(n, (ast.Import, ast.ImportFrom)):
                continue
            targets = []
            if isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                base = n.module or ""
                if n.level:
                    parts = m.split(".")
                    parts = parts[: len(parts) - n.level + (1 if is_pkg else 0)]
                    base = ".".join(parts + ([n.module] if n.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in n.names]
            for t in targets:
                if not (t == top or t.startswith(top + ".")):
                    continue
                while t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t != m:
                    edges.append((m, t, id(n) not in in_fn))
    return edges


def package_of(m: str, top: str) -> str:
    parts = m.split(".")
    return parts[1] if len(parts) > 1 else top


def sccs(graph: dict[str, set[str]], nodes) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    out.append(sorted(comp))
    return out


def reachable(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        v = todo.pop()
        if v == goal:
            return True
        for w in graph.get(v, ()):
            if w not in seen:
                seen.add(w); todo.append(w)
    return False


def layer_rank(pyproject: Path, top: str) -> dict[str, int]:
    """Package -> rank (0 = the bottom) from the import-linter "layers" contract."""
    try:
        cfg = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    for c in cfg.get("tool", {}).get("importlinter", {}).get("contracts", []):
        if c.get("type") == "layers":
            layers = c["layers"]
            rank = {}
            for i, layer in enumerate(reversed(layers)):
                for name in layer.replace(":", "|").split("|"):
                    rank[name.strip().removeprefix(top + ".")] = i
            return rank
    return {}


def report(root: Path, pyproject: Path, rank: dict[str, int] | None = None) -> dict:
    top = root.name
    mods = modules(root)
    edges = imports(mods, top)
    rank = rank if rank is not None else layer_rank(pyproject, top)

    def home(pkg: str) -> str:
        return pkg if pkg in rank else OLD_HOMES.get(pkg, pkg)

    pkg_graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in edges:
        pa, pb = package_of(a, top), package_of(b, top)
        if pa != pb and pb != top:  # ``from dubstudio import __version__``: the root, not a layer
            pkg_graph[pa].add(pb)
    pkg_cycles = [c for c in sccs(pkg_graph, sorted({package_of(m, top) for m in mods})) if len(c) > 1]
    top_graph: dict[str, set[str]] = defaultdict(set)
    all_graph: dict[str, set[str]] = defaultdict(set)
    for a, b, module_level in edges:
        all_graph[a].add(b)
        if module_level:
            top_graph[a].add(b)
    mod_cycles_top = [c for c in sccs(top_graph, sorted(mods)) if len(c) > 1]
    mod_cycles_all = [c for c in sccs(all_graph, sorted(mods)) if len(c) > 1]
    upward, sideways = [], []
    for a, b, module_level in edges:
        ha, hb = home(package_of(a, top)), home(package_of(b, top))
        ra, rb = rank.get(ha), rank.get(hb)
        if ra is not None and rb is not None and rb > ra:
            upward.append(f"{a} -> {b}")
        elif ra is not None and ra == rb and ha != hb:  # between independent siblings ("a | b")
            sideways.append(f"{a} -> {b}")
    fn_level = [(a, b) for a, b, module_level in edges if not module_level]
    dodging = sorted({f"{a} -> {b}" for a, b in fn_level if reachable(top_graph, b, a)})
    in_pkg_cycle = {p: i for i, c in enumerate(pkg_cycles) for p in c}
    fn_in_cycle = sorted({f"{a} -> {b}" for a, b in fn_level
                          if package_of(a, top) != package_of(b, top)
                          and in_pkg_cycle.get(package_of(a, top), -1) == in_pkg_cycle.get(package_of(b, top), -2)})
    return {
        "modules": len(mods),
        "internal_imports": len(edges),
        "function_level_imports": len(fn_level),
        "function_level_dodging_a_cycle": len(dodging),
        "function_level_within_a_package_cycle": len(fn_in_cycle),
        "package_cycles": pkg_cycles,
        "packages_in_cycles": sum(len(c) for c in pkg_cycles),
        "module_cycles_at_import": [len(c) for c in mod_cycles_top],
        "module_cycles_any_import": [len(c) for c in mod_cycles_all],
        "upward_imports": len(upward),
        "upward_import_list": sorted(set(upward)),
        "sibling_imports": len(sideways),
        "sibling_import_list": sorted(set(sideways)),
        "dodging_list": dodging,
        "layers_ranked": {k: v for k, v in sorted(rank.items(), key=lambda kv: -kv[1])},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "dubstudio"), help="the package folder")
    ap.add_argument("--layers-from", help="pyproject.toml whose import-linter layers rank the packages "
                                          "(default: the one beside --root)")
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the upward and cycle-dodging imports")
    args = ap.parse_args(argv)
    root = Path(args.root).resolve()
    pyproject = Path(args.layers_from) if args.layers_from else root.parent / "pyproject.toml"
    r = report(root, pyproject)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n", encoding="utf-8")
    print(f"{r['modules']} modules, {r['internal_imports']} internal imports "
          f"({r['function_level_imports']} inside functions: {r['function_level_dodging_a_cycle']} would close a module cycle at the "
          f"top of their module, {r['function_level_within_a_package_cycle']} cross packages that import each other)")
    print(f"package cycles: {len(r['package_cycles'])} ({r['packages_in_cycles']} packages): "
          + "; ".join(" <-> ".join(c) for c in r["package_cycles"]))
    print(f"module cycles at import time: {r['module_cycles_at_import']}; counting imports inside functions: {r['module_cycles_any_import']}")
    print(f"upward imports (against the layer order): {r['upward_imports']}; between independent siblings: {r['sibling_imports']}")
    if args.verbose:
        for line in r["upward_import_list"]:
            print("  up:", line)
        for line in r["sibling_import_list"]:
            print("  sideways:", line)
        for line in r["dodging_list"]:
            print("  dodge:", line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
