"""JAX's names that ftrans lacks say so, and the README's 'Not there yet' lists them."""
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

import ftrans  # noqa: F401
from ftrans._unavailable import JAX_NAMES, MORE_JAX_NAMES

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ours(module):
    return importlib.import_module("ftrans" + module[len("jax"):])


def _missing(names_by_module):
    out = []
    for module, names in names_by_module.items():
        try:
            ours = _ours(module)
        except ImportError:
            continue
        out += [(module, ours, name) for name in names if not hasattr(ours, name)]
    return out


@pytest.mark.parametrize("table", ["probe", "beyond"])
def test_a_jax_name_not_ported_says_it_is_not_there_yet(table):
    missing = _missing(JAX_NAMES if table == "probe" else MORE_JAX_NAMES)
    if table == "beyond":
        assert missing, "MORE_JAX_NAMES lists only what is ported: extend it with what is not"
    for module, ours, name in missing:
        with pytest.raises(AttributeError, match=rf"{ours.__name__} has no `{name}` yet \({module}\.{name} is not"):
            getattr(ours, name)


def test_an_unknown_name_gets_python_s_usual_message():
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        ftrans.numpy.no_such_thing  # noqa: B018


def test_the_readme_table_lists_exactly_the_names_not_ported():
    """The README's 'Not there yet' table is what `api_coverage.py --beyond --markdown` prints."""
    printed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "api_coverage.py"), "--beyond", "--markdown"],
                             capture_output=True, text=True, check=True, cwd=ROOT,
                             env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout
    rows = [line for line in printed.splitlines() if line.startswith("| `")]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Not there yet", 1)[1].split("\n## ", 1)[0]
    assert [line for line in section.splitlines() if line.startswith("| `")] == rows, \
        "README 'Not there yet' is stale: paste `python benchmarks/api_coverage.py --beyond --markdown`"
