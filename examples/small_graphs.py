"""The textbook computation graphs, drawn: c·(a+b) and (x+y) + x·(x+y).

Each is drawn as traced and after CSE (where x+y becomes one shared node), and
its gradient is drawn with the forward equations in blue, the backward
(transposed) ones in red and the residuals that cross between them in orange.
The pictures are written as SVG when Graphviz's `dot` is installed, as DOT
text otherwise. The derivatives are checked against the hand-computed ones:

    f(a, b, c) = sum(c·(a+b)):        df/da = df/db = c,   df/dc = a + b
    g(x, y) = sum((x+y) + x·(x+y)):   dg/dx = 1 + 2x + y,  dg/dy = 1 + x

Run: python examples/small_graphs.py
"""
import pathlib
import shutil
import tempfile

import numpy as np

import ftrans as ft
import ftrans.numpy as fnp


def f(a, b, c):
    return fnp.sum(c * (a + b))


def g(x, y):
    return fnp.sum((x + y) + x * (x + y))


def write(graph, directory, name):
    """`graph` as name.svg if Graphviz is there, else as name.dot; returns the path."""
    if shutil.which("dot"):
        return graph.render(directory / f"{name}.svg")
    path = directory / f"{name}.dot"
    path.write_text(graph.source)
    return path


def check(what, ok):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    assert ok, what


def main(size=4, out_dir=None):
    directory = pathlib.Path(out_dir or tempfile.mkdtemp(prefix="small_graphs_"))
    directory.mkdir(parents=True, exist_ok=True)
    a, b, c, x, y = (ft.random.normal(key, (size,)) for key in ft.random.split(ft.random.PRNGKey(0), 5))
    kind = "SVG" if shutil.which("dot") else "DOT text: Graphviz is not installed"
    print(f"writing pictures to {directory} ({kind})")

    print("c·(a+b)")
    grad_f = ft.grad(f, argnums=(0, 1, 2))
    pictures = {"f": ft.draw(f, a, b, c), "f_cse": ft.draw(f, a, b, c, optimize=True),
                "grad_f": ft.draw(grad_f, a, b, c), "grad_f_cse": ft.draw(grad_f, a, b, c, optimize=True)}
    da, db, dc = grad_f(a, b, c)
    check("df/da = c, df/db = c, df/dc = a + b",
          np.allclose(da, c) and np.allclose(db, c) and np.allclose(dc, a + b))
    check("nothing to share: the same graph after CSE", pictures["f"].source == pictures["f_cse"].source)

    print("(x+y) + x·(x+y)")
    grad_g = ft.grad(g, argnums=(0, 1))
    pictures |= {"g": ft.draw(g, x, y), "g_cse": ft.draw(g, x, y, optimize=True),
                 "grad_g": ft.draw(grad_g, x, y), "grad_g_cse": ft.draw(grad_g, x, y, optimize=True)}
    dx, dy = grad_g(x, y)
    check("dg/dx = 1 + 2x + y, dg/dy = 1 + x", np.allclose(dx, 1 + 2 * x + y) and np.allclose(dy, 1 + x))
    adds = lambda graph: graph.source.count('[label="add"')
    check(f"x+y is one node after CSE ({adds(pictures['g'])} adds traced, {adds(pictures['g_cse'])} after)",
          adds(pictures["g"]) == 3 and adds(pictures["g_cse"]) == 2)
    check("the jitted gradient matches", all(np.allclose(u, v) for u, v in zip(ft.jit(grad_g)(x, y), (dx, dy))))

    print("forward and backward")
    for name in ("grad_f", "grad_g", "grad_g_cse"):
        source = pictures[name].source
        check(f"{name}: forward and backward parts, residuals marked",
              "blue: forward" in source and source.count("residual") >= 2)
    for name, graph in pictures.items():
        print(f"  {name:11s} {graph.num_nodes:3d} nodes {graph.num_edges:3d} edges -> {write(graph, directory, name)}")


if __name__ == "__main__":
    main()
