"""Every example runs and checks its own results (each asserts against a reference)."""
import importlib.util
import pathlib
import re

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))
# main()'s keyword arguments for a quick run
SMALL_SIZES = {"export_and_serve": {"steps": 60}, "small_graphs": {"size": 2}, "implicit_layer": {"steps": 60},
               "two_layer_net": {"steps": 100}, "cnn_digits": {"epochs": 3, "min_accuracy": 0.5}}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(path, capsys):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(**SMALL_SIZES.get(path.stem, {}))
    assert capsys.readouterr().out.strip(), f"{path.name} printed nothing"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_says_how_to_run_it_as_a_script(path):
    """Its docstring's `Run:` line is `python examples/<its name>.py`, which its
    `__main__` guard makes run main() (the README runs quickstart so)."""
    source = path.read_text()
    run_lines = re.findall(r"^Run: (python \S+)", source, re.MULTILINE)
    assert run_lines == [f"python examples/{path.name}"], run_lines
    assert re.search(r'^if __name__ == "__main__":\n    main\(', source, re.MULTILINE)
