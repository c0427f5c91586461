"""The README says what is true: its examples run as written, its commands are
the ones the project runs, and its install section matches pyproject.toml.

Python blocks: every ```python block of README.md runs, in the order they
appear, each in a fresh namespace that holds only `np`, `ft` and `fnp` (the
imports of the first block), so a block must define everything else it uses,
as a reader who starts at its section needs. An untagged block that directly
follows a python block is what that block prints, and is compared with it
exactly (trailing spaces aside). Failures point at README.md's own lines.

Bash blocks: each command is one the test knows how to check: `pip install`
of the project or of one of its extras, `python -m pytest` (the test command
of .ci/run), or `python <script>`, which runs here.
"""
import contextlib
import io
import os
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

import ftrans as ft
import ftrans.numpy as fnp
from ftrans import _device
from interpreters import lowering_cupy

ROOT = pathlib.Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _blocks():
    """(language, source, line of the first source line, the untagged block directly after or None)."""
    fences = list(_FENCE.finditer(README))
    blocks = []
    for n, fence in enumerate(fences):
        following = fences[n + 1] if n + 1 < len(fences) else None
        output = None
        if following is not None and following.group(1) == "" \
                and not README[fence.end():following.start()].strip():
            output = following.group(2)
        blocks.append((fence.group(1), fence.group(2), README.count("\n", 0, fence.start()) + 2, output))
    return blocks


BLOCKS = _blocks()
PYTHON_BLOCKS = [block for block in BLOCKS if block[0] == "python"]
BASH_COMMANDS = [command for language, source, _, _ in BLOCKS if language == "bash"
                 for line in source.splitlines()
                 for command in [line.split("#", 1)[0].strip()] if command]


def test_the_readme_has_the_blocks_this_test_reads():
    assert len(PYTHON_BLOCKS) >= 5 and BASH_COMMANDS


@pytest.mark.parametrize("language, source, line, printed", PYTHON_BLOCKS,
                         ids=[f"line-{line}" for _, _, line, _ in PYTHON_BLOCKS])
def test_readme_python_block_runs_as_written(language, source, line, printed):
    code = compile("\n" * (line - 1) + source, str(ROOT / "README.md"), "exec")
    namespace = {"np": np, "ft": ft, "fnp": fnp, "__name__": "__readme__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, namespace)
    if printed is not None:
        strip = lambda text: [row.rstrip() for row in text.strip("\n").splitlines()]
        assert strip(out.getvalue()) == strip(printed), f"README.md:{line} prints otherwise than the README shows"


def _ci_run_commands():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_readme_test_command_is_the_one_ci_runs():
    test_commands = [command for command in BASH_COMMANDS if "pytest" in command]
    assert test_commands == ["pip install '.[test,mpi]' && python -m pytest"]
    assert test_commands[0] in _ci_run_commands()


def _pip_install_target_is_the_project(words):
    """`pip install .` or `pip install '.[a,b]'`, with extras pyproject.toml declares."""
    assert words[:2] == ["pip", "install"] and len(words) == 3, words
    target = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", words[2])
    assert target, f"README installs {words[2]!r}, not the project"
    for extra in (target.group(1) or "").split(","):
        assert not extra or extra in EXTRAS, f"README names the extra [{extra}], which pyproject.toml lacks"


@pytest.mark.parametrize("command", BASH_COMMANDS)
def test_readme_bash_command_does_what_it_says(command):
    for part in command.split("&&"):
        words = shlex.split(part)
        if words[:2] == ["pip", "install"]:
            _pip_install_target_is_the_project(words)
        elif words == ["python", "-m", "pytest"]:
            assert f"&& {part.strip()}" in command and command in _ci_run_commands()
        elif len(words) == 2 and words[0] == "python" and words[1].endswith(".py"):
            # `pip install .` puts the three packages on the path; PYTHONPATH does here
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            done = subprocess.run([sys.executable, words[1]], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            assert "{ lambda" in done.stdout, f"{words[1]} printed no jaxpr"
        else:
            pytest.fail(f"the README's command {part.strip()!r} is one this test cannot check")


def test_pip_install_installs_the_three_packages():
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    for package in ("ftrans", "ir", "interpreters"):
        assert any(re.fullmatch(pattern.replace("*", ".*"), package) for pattern in found["include"])
        assert (ROOT / package / "__init__.py").exists()


def test_readme_names_only_examples_and_benchmarks_that_exist():
    named = set(re.findall(r"\b((?:examples|benchmarks)/[\w/]+\.(?:py|sh))\b", README))
    assert named, "the README names no example"
    assert [path for path in sorted(named) if not (ROOT / path).exists()] == []


# -------------------- the GPU extras --------------------

_WHEEL_OF_EXTRA = {"gpu": "cupy-cuda12x", "gpu-cuda13": "cupy-cuda13x"}


def _requirement_name(requirement):
    return re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower()


def test_gpu_extras_ask_for_cupy_binary_wheels_not_the_source_package():
    for extra, wheel in _WHEEL_OF_EXTRA.items():
        assert [_requirement_name(r) for r in EXTRAS[extra]] == [wheel], EXTRAS[extra]
        assert re.search(r">=\s*\d", EXTRAS[extra][0]), f"[{extra}] gives CuPy no version floor"
    assert all(_requirement_name(r) != "cupy" for requirements in EXTRAS.values() for r in requirements)


def _says_both_extras(text):
    for extra, wheel in _WHEEL_OF_EXTRA.items():
        assert f"'.[{extra}]'" in text and wheel in text, (extra, text)


def test_readme_says_how_to_install_cupy_in_its_install_section_only():
    install_section = README[:README.index("\n## ")]
    _says_both_extras(install_section)
    rest = README[len(install_section):]
    assert "[gpu" not in rest and "cupy-cuda" not in rest, "the README says how to install CuPy twice"


@pytest.fixture
def cupy_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # then `import cupy` raises ImportError
    _device._gpu_problem.cache_clear()
    yield
    _device._gpu_problem.cache_clear()


def test_cupy_missing_error_names_the_gpu_extras(cupy_missing):
    with pytest.raises(RuntimeError) as backend_error:
        lowering_cupy.import_cupy()
    with pytest.raises(RuntimeError) as device_error:
        ft.device_put(np.ones(2), device="gpu")
    for error in (backend_error, device_error):
        message = str(error.value)
        _says_both_extras(message)
        named = re.findall(r"'\.\[([\w-]+)\]'", message)
        assert named and all(extra in EXTRAS for extra in named), named
