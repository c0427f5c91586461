"""Which of ~300 commonly used JAX names ftrans has (issue 16): a port by renaming `jax` to
`ftrans` works exactly when every name it uses is there.

For each name of ftrans._unavailable.JAX_NAMES (jax, jax.numpy, jax.numpy.linalg, jax.lax,
jax.scipy.*, jax.tree_util, jax.tree, jax.nn, jax.random, jax.debug) it looks up the same
name under ftrans and prints, per module, the count present and the names missing, then the
percentage present overall.

Run: python benchmarks/api_coverage.py [--list] [--markdown] [--beyond]
    --list      also print every name with present/missing
    --markdown  print the table of missing names
    --beyond    probe JAX's less common names (ftrans._unavailable.MORE_JAX_NAMES) instead:
                with --markdown, the table of the README's 'Not there yet' 
"""
from __future__ import annotations

import importlib
import sys

import ftrans  # noqa: F401 (the probe needs the package)
from ftrans._unavailable import JAX_NAMES, MORE_JAX_NAMES


def _resolve(module, name):
    """Whether `module.name` (module like 'jax.numpy') exists under ftrans."""
    ours = "ftrans" + module[len("jax"):]
    try:
        obj = importlib.import_module(ours)
    except ImportError:
        parent, _, last = ours.rpartition(".")
        try:
            obj = getattr(importlib.import_module(parent), last)
        except (ImportError, AttributeError):
            return False
    try:
        getattr(obj, name)
    except AttributeError:
        try:
            importlib.import_module(f"{ours}.{name}")
        except ImportError:
            return False
    return True


def coverage(names_by_module=JAX_NAMES):
    """[(module, present names, missing names)] in the order of `names_by_module`."""
    rows = []
    for module, names in names_by_module.items():
        present = [n for n in names if _resolve(module, n)]
        rows.append((module, present, [n for n in names if n not in present]))
    return rows


def main(argv):
    rows = coverage(MORE_JAX_NAMES if "--beyond" in argv else JAX_NAMES)
    total = sum(len(p) + len(m) for _, p, m in rows)
    found = sum(len(p) for _, p, _ in rows)
    if "--markdown" in argv:
        print("| JAX module | not in ftrans yet |\n|---|---|")
        for module, _, missing in rows:
            if missing:
                print(f"| `{module}` | {', '.join(f'`{n}`' for n in missing)} |")
        print(f"\n{found} of {total} probed names ({100 * found / total:.0f} %) are there.")
        return
    for module, present, missing in rows:
        n = len(present) + len(missing)
        print(f"{module:20s} {len(present):4d} / {n:<4d} ({100 * len(present) / n:5.1f} %)")
        if missing:
            print(f"{'':20s} missing: {' '.join(missing)}")
        if "--list" in argv:
            for name in present:
                print(f"{'':20s}   present {module}.{name}")
    print(f"\ntotal: {found} of {total} names present: {100 * found / total:.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
