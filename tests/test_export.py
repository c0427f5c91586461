"""ft.export / ft.load: programs saved as files and run, jitted, vmapped and
differentiated in a fresh Python process that never saw their source; and
corrupted or hostile files refused with a clear error.

The round trips run one subprocess for all the programs (a fresh `python -c`
that imports only ftrans and NumPy): it loads each exported directory and
writes what the loaded function gives (its outputs, jit of it, grad of it,
vmap of it) to an .npz, which this process compares with the original
function: eager and jit outputs, grad, and a Python loop for vmap.
"""
import json
import os
import pathlib
import subprocess
import sys
import zipfile
from typing import NamedTuple

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
ExportError = ft.ExportError

REPO = pathlib.Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(0)
W1, B1, W2 = RNG.normal(size=(3, 4)), RNG.normal(size=(4,)), RNG.normal(size=(4, 2))  # closed-over constants



def _load_fails(exported, match):
    """ft.load of the (tampered) export raises an ExportError whose message matches `match`."""
    with pytest.raises(ExportError, match=match):
        ft.load(exported)

def mlp_with_constants(params, x):
    h = fnp.tanh(x @ (W1 * params["scale"]) + B1)
    return fnp.sum((h @ W2) ** 2) + params["bias"]


def scan_recurrence(x, xs):
    def body(carry, x_t):
        new = fnp.tanh(carry @ W1[:, :3] + x_t)
        return new, fnp.sum(new * B1[:3])
    final, ys = ft.lax.scan(body, x, xs)
    return final, ys


def cond_piecewise(x, y):
    branch = ft.lax.cond(fnp.sum(x) > 0.0, lambda a: fnp.sin(a) * y, lambda a: a * a - y, x)
    return branch * W2[0, 0]


def fori_polynomial(x):
    return ft.lax.fori_loop(0, 4, lambda i, c: c * fnp.cos(c) + 0.5 * i, x)


class Prediction(NamedTuple):
    mean: object
    extras: object


def nested_structures(params, x, temperature):
    logits = x @ params["layers"][0] + params["layers"][1]
    return Prediction(mean={"logits": logits / temperature, "max": fnp.max(logits)},
                      extras=[None, fnp.exp(-temperature) * fnp.sum(x)])


PROGRAMS = {  # name -> (function, example arguments, the leaves vmap batches: one flag per argument)
    "mlp_with_constants": (mlp_with_constants, ({"scale": np.array(1.5), "bias": np.array(0.25)},
                                                RNG.normal(size=(5, 3))), (False, True)),
    "scan_recurrence": (scan_recurrence, (RNG.normal(size=(3,)), RNG.normal(size=(6, 3))), (True, True)),
    "cond_piecewise": (cond_piecewise, (RNG.normal(size=(4,)), np.array(0.7)), (True, False)),
    "cond_other_branch": (cond_piecewise, (-np.abs(RNG.normal(size=(4,))), np.array(0.7)), (True, True)),
    "fori_polynomial": (fori_polynomial, (RNG.normal(size=(3,)),), (True,)),
    "nested_structures": (nested_structures, ({"layers": [RNG.normal(size=(3, 2)), RNG.normal(size=(2,))]},
                                              RNG.normal(size=(4, 3)), 2.0), (False, True, False)),
}

CHILD = r"""
import sys
import numpy as np
import ftrans as ft
import ftrans.numpy as fnp

assert "test_export" not in sys.modules and "tests" not in sys.modules  # the programs' source is not here
out_dir, names = sys.argv[1], sys.argv[2:]
for name in names:
    g = ft.load(f"{out_dir}/{name}/program")
    inputs = np.load(f"{out_dir}/{name}/inputs.npz", allow_pickle=False)
    leaves = [inputs[f"a{i}"] for i in range(len(inputs.files) // 2)]
    batched = [inputs[f"b{i}"] for i in range(len(inputs.files) // 2)]
    args = ft.tree_util.tree_unflatten(g.in_tree, leaves)
    flags = [bool(f) for f in np.load(f"{out_dir}/{name}/flags.npy")]

    def total(*a):
        return sum(fnp.sum(leaf) for leaf in ft.tree_util.tree_leaves(g(*a)))

    results = {}
    def put(prefix, tree):
        for i, leaf in enumerate(ft.tree_util.tree_leaves(tree)):
            results[f"{prefix}{i}"] = np.asarray(leaf)
    put("out", g(*args))
    put("jit", ft.jit(g)(*args))
    put("grad", ft.grad(total)(*args))
    put("jitgrad", ft.jit(ft.grad(total))(*args))
    leaf_flags = [f for f, arg in zip(flags, args) for _ in ft.tree_util.tree_leaves(arg)]  # an argument's flag, per leaf
    batched_args = ft.tree_util.tree_unflatten(g.in_tree, [b if f else a for a, b, f in zip(leaves, batched, leaf_flags)])
    put("vmap", ft.vmap(g, in_axes=tuple(0 if f else None for f in flags))(*batched_args))
    results["structure"] = np.array(repr(ft.tree_util.tree_structure(g(*args))))
    np.savez(f"{out_dir}/{name}/results.npz", **results)
print("ok", len(names))
"""


def _batch_of(leaf):
    leaf = np.asarray(leaf)
    return np.stack([leaf, leaf * 0.5 + 0.1, -leaf])


def _leaf_flags(args, flags):
    return [f for f, arg in zip(flags, args, strict=True) for _ in ft.tree_util.tree_leaves(arg)]


def _total(fun):
    return lambda *a: sum(fnp.sum(leaf) for leaf in ft.tree_util.tree_leaves(fun(*a)))


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    """Export every program here, run the fresh process over them all, return
    (the output directory, the child's stdout)."""
    out = tmp_path_factory.mktemp("exported")
    for name, (fun, args, flags) in PROGRAMS.items():
        directory = out / name
        ft.export(fun, *args, path=directory / "program")
        leaves = ft.tree_util.tree_leaves(args)
        np.savez(directory / "inputs.npz", **{f"a{i}": np.asarray(x) for i, x in enumerate(leaves)},
                 **{f"b{i}": _batch_of(x) for i, x in enumerate(leaves)})
        np.save(directory / "flags.npy", np.array(flags))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(out), *PROGRAMS], cwd=out, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return out, child.stdout


def _results(out, name):
    return np.load(out / name / "results.npz", allow_pickle=False)


def _assert_leaves_close(results, prefix, tree, rtol=1e-12, atol=1e-13):
    leaves = ft.tree_util.tree_leaves(tree)
    got = [results[f"{prefix}{i}"] for i in range(len(leaves))]
    assert f"{prefix}{len(leaves)}" not in results.files
    for g, w in zip(got, leaves, strict=True):
        assert g.shape == np.shape(w) and g.dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_loaded_in_a_fresh_process_computes_what_the_original_does(round_trips, name):
    out, stdout = round_trips
    assert stdout.strip() == f"ok {len(PROGRAMS)}"
    fun, args, _ = PROGRAMS[name]
    results = _results(out, name)
    _assert_leaves_close(results, "out", fun(*args))
    _assert_leaves_close(results, "jit", ft.jit(fun)(*args))
    assert str(results["structure"]) == repr(ft.tree_util.tree_structure(ft.jit(fun)(*args)))


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_grad_of_the_loaded_function_is_grad_of_the_original(round_trips, name):
    out, _ = round_trips
    fun, args, _ = PROGRAMS[name]
    results = _results(out, name)
    want = ft.grad(_total(fun))(*args)
    _assert_leaves_close(results, "grad", want)
    _assert_leaves_close(results, "jitgrad", want)


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_vmap_of_the_loaded_function_is_a_loop_of_the_original(round_trips, name):
    out, _ = round_trips
    fun, args, flags = PROGRAMS[name]
    results = _results(out, name)
    leaves, in_tree = ft.tree_util.tree_flatten(args)
    leaf_flags = _leaf_flags(args, flags)
    per_example = []
    for k in range(3):
        example = [_batch_of(x)[k] if f else x for x, f in zip(leaves, leaf_flags, strict=True)]
        per_example.append(fun(*ft.tree_util.tree_unflatten(in_tree, example)))
    stacked = ft.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *per_example)
    _assert_leaves_close(results, "vmap", stacked)


def test_export_writes_text_constants_and_a_manifest(tmp_path):
    closed = ft.export(mlp_with_constants, *PROGRAMS["mlp_with_constants"][1], path=tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["constants.npz", "manifest.json", "program.jaxpr"]
    text = (tmp_path / "m" / "program.jaxpr").read_text()
    assert text == str(closed) and text.startswith("{ lambda ")
    assert str(ft.parse_jaxpr(text)) == text
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format"] == "ftrans-export" and manifest["version"] == 1
    assert manifest["name"] == "mlp_with_constants"
    assert manifest["inputs"]["types"] == ["f64[]", "f64[]", "f64[5,3]"]
    assert manifest["outputs"]["types"] == ["f64[]"]
    assert [c["type"] for c in manifest["constants"]] == [v.aval.str_short() for v in closed.jaxpr.constvars]
    with np.load(tmp_path / "m" / "constants.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == [f"c{i}" for i in range(len(closed.consts))]
        for i, c in enumerate(closed.consts):
            np.testing.assert_array_equal(npz[f"c{i}"], c)
    assert any(np.array_equal(c, B1) for c in closed.consts)  # the closed-over arrays are constants


def test_export_optimizes_the_program(tmp_path):
    def repeated(x):
        a = fnp.sin(x) + 1.0
        b = fnp.sin(x) + 1.0
        return a * b * 1.0
    closed = ft.export(repeated, np.ones(3), path=tmp_path / "p")
    assert [e.primitive.name for e in closed.eqns].count("sin") == 1  # CSE ran


def test_loaded_function_checks_its_arguments(tmp_path):
    ft.export(mlp_with_constants, *PROGRAMS["mlp_with_constants"][1], path=tmp_path / "m")
    g = ft.load(tmp_path / "m")
    params, x = PROGRAMS["mlp_with_constants"][1]
    with pytest.raises(TypeError, match=r"takes arguments of structure"):
        g(x, params)
    with pytest.raises(TypeError, match=r"f64\[5,3\]"):
        g(params, np.ones((2, 3)))
    assert "mlp_with_constants" in repr(g)


def test_export_refuses_structures_load_could_not_rebuild(tmp_path):
    class Box:
        def __init__(self, v):
            self.v = v
    ft.tree_util.register_pytree_node(Box, lambda b: ((b.v,), None), lambda _, c: Box(c[0]))
    with pytest.raises(ExportError, match="registered pytree class"):
        ft.export(lambda b: b.v * 2, Box(np.ones(2)), path=tmp_path / "b")
    with pytest.raises(ExportError, match="key of type tuple"):
        ft.export(lambda d: d[(1, 2)] * 2, {(1, 2): np.ones(2)}, path=tmp_path / "d")
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="not a directory"):
        ft.export(lambda x: x, np.ones(2), path=tmp_path / "file")


# -------------------- corrupted and hostile files --------------------

@pytest.fixture
def exported(tmp_path):
    path = tmp_path / "model"
    ft.export(mlp_with_constants, *PROGRAMS["mlp_with_constants"][1], path=path)
    return path


def _reseal(path):
    """The manifest's checksums made to fit the files again, as a hostile author
    would: what the checks after the checksums must catch on their own."""
    import hashlib
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["sha256"] = {name: hashlib.sha256((path / name).read_bytes()).hexdigest()
                          for name in ("program.jaxpr", "constants.npz")}
    (path / "manifest.json").write_text(json.dumps(manifest))


def _edit_manifest(path, edit):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_not_a_directory_or_no_manifest(tmp_path):
    with pytest.raises(ExportError, match="is not a directory"):
        ft.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="cannot read manifest.json"):
        ft.load(tmp_path / "empty")


@pytest.mark.parametrize("text,message", [
    ("{not json", "manifest.json is not JSON"),
    ("[" * 100000 + "]" * 100000, "manifest.json is not JSON"),
    ('{"format": "something else"}', "is not an ftrans export"),
    ('{"format": "ftrans-export", "version": 2}', "format version 2; this ftrans reads version 1"),
    ('{"format": "ftrans-export", "version": 1}', "has the fields"),
    (b"\xff\xfe".decode("latin-1"), "not UTF-8|not JSON"),
], ids=["not json", "nested deeper than the stack", "other format", "newer version", "missing fields", "not utf-8"])
def test_bad_manifest(exported, text, message):
    (exported / "manifest.json").write_text(text, encoding="latin-1" if "\xff" in text else "utf-8")
    _load_fails(exported, message)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(name="os.system"), '"name" must be an identifier'),
    (lambda m: m["inputs"].update(types=["f32[]", "f64[]", "f64[5,3]"]), "gives the inputs the types"),
    (lambda m: m["constants"].pop(), "gives the constants the types"),
    (lambda m: m["constants"][0].update(name="../../etc/passwd"), '"constants" must list'),
    (lambda m: m["inputs"].update(tree=["*", "*", "*", {"node": "tuple", "children": 9, "leaves": False}]),
     "takes 9 children but only 3 precede it"),
    (lambda m: m["inputs"].update(tree=["*"]), "trees have 1 input"),
    (lambda m: m["inputs"].update(tree=[{"node": "__import__", "children": 0, "leaves": True}]), "node record"),
    (lambda m: m["outputs"].update(tree=["*", {"node": "namedtuple", "name": "x; import os", "fields": ["a"],
                                               "children": 1, "leaves": True}]), "identifier for its name"),
    (lambda m: m["outputs"].update(tree=[{"node": "dict", "keys": [["str", "b"], ["str", "a"]], "children": 2,
                                          "leaves": True}]), "distinct, of one type, and sorted"),
    (lambda m: m["outputs"].update(tree=[{"node": "dict", "keys": [["object", "b"]], "children": 1,
                                          "leaves": True, "extra": 1}]), "has exactly the fields"),
])
def test_malformed_manifest_fields(exported, edit, message):
    _edit_manifest(exported, edit)
    _load_fails(exported, message)


def test_files_changed_after_export_fail_their_checksum(exported):
    program = (exported / "program.jaxpr").read_text()
    (exported / "program.jaxpr").write_text(program.replace("tanh", "sin"))
    _load_fails(exported, "program.jaxpr does not match its SHA-256 in manifest.json")
    (exported / "program.jaxpr").write_text(program)
    data = bytearray((exported / "constants.npz").read_bytes())
    data[-200] ^= 1  # inside an array's data: only the checksum can tell
    (exported / "constants.npz").write_bytes(bytes(data))
    _load_fails(exported, "constants.npz does not match its SHA-256")
    _edit_manifest(exported, lambda m: m["sha256"].update({"program.jaxpr": "0" * 63}))
    _load_fails(exported, '"sha256" must give')


def test_program_text_errors_keep_the_parsers_line_and_column(exported):
    (exported / "program.jaxpr").write_text("{ lambda ; a:f64[3]. let\n  b:f64[3] = sin a a\n  in (b,) }")
    _reseal(exported)
    _load_fails(exported, r"program.jaxpr: line \d+, column \d+")
    (exported / "program.jaxpr").write_bytes(b"\xff\xfe{")
    _reseal(exported)
    _load_fails(exported, "program.jaxpr is not UTF-8")


def test_the_parsers_limits_apply(exported):
    with pytest.raises(ExportError, match="longer than 100 bytes"):
        ft.load(exported, max_bytes=100)
    with pytest.raises(ExportError, match="max_eqns"):
        ft.load(exported, max_eqns=2)
    with pytest.raises(ExportError, match="max_constant_bytes"):
        ft.load(exported, max_constant_bytes=10)


def _rewrite_npz(path, arrays, raw=None):
    """constants.npz holding `arrays` (name -> array), or raw bytes per member."""
    with zipfile.ZipFile(path / "constants.npz", "w") as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w") as f:
                np.lib.format.write_array(f, array, allow_pickle=True)
        for name, data in (raw or {}).items():
            archive.writestr(name, data)
    _reseal(path)


def _constants(path):
    with np.load(path / "constants.npz", allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_constants_must_match_the_programs_constvars(exported):
    consts = _constants(exported)
    wrong_dtype = {**consts, "c0": consts["c0"].astype(np.float32)}
    _rewrite_npz(exported, wrong_dtype)
    _load_fails(exported, r"constants.npz: c0 is float32\[.*but the program declares it f64")
    wrong_shape = {**consts, "c0": consts["c0"].ravel()[:1]}
    _rewrite_npz(exported, wrong_shape)
    _load_fails(exported, "c0 is float64")
    _rewrite_npz(exported, {k: v for k, v in consts.items() if k != "c0"})
    _load_fails(exported, "one array per constant")
    _rewrite_npz(exported, {**consts, "extra": np.ones(1)})
    _load_fails(exported, "one array per constant")


def test_pickled_object_arrays_are_refused_before_unpickling(exported):
    consts = _constants(exported)
    hostile = np.empty(consts["c0"].shape, dtype=object)
    _rewrite_npz(exported, {**consts, "c0": hostile})
    _load_fails(exported, "c0 is object")


def test_a_header_claiming_a_huge_array_is_refused_without_allocating(exported):
    consts = _constants(exported)
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    _rewrite_npz(exported, {k: v for k, v in consts.items() if k != "c0"}, raw={"c0.npy": buffer.getvalue()})
    _load_fails(exported, r"c0 is float64\[1000000000000\]")


def test_truncated_or_oversized_members_and_non_zip_files(exported):
    consts = _constants(exported)
    buffer = __import__("io").BytesIO()
    np.lib.format.write_array(buffer, consts["c0"])
    _rewrite_npz(exported, {k: v for k, v in consts.items() if k != "c0"}, raw={"c0.npy": buffer.getvalue()[:-8]})
    _load_fails(exported, "c0: not a valid .npy array")
    _rewrite_npz(exported, {k: v for k, v in consts.items() if k != "c0"},
                 raw={"c0.npy": buffer.getvalue() + b"\0" * 10**6})
    _load_fails(exported, "too large for")
    (exported / "constants.npz").write_bytes(b"PK\x03\x04 not really a zip")
    _reseal(exported)
    _load_fails(exported, "not a readable .npz archive")


def test_a_valid_export_still_loads_after_the_checks(exported):
    g = ft.load(exported)
    params, x = PROGRAMS["mlp_with_constants"][1]
    np.testing.assert_allclose(g(params, x), mlp_with_constants(params, x), rtol=1e-13)


SECOND_CHILD = r"""
import sys
import numpy as np
import ftrans as ft

directory = sys.argv[1]
g = ft.load(f"{directory}/program")
x = np.load(f"{directory}/x.npy")
again = ft.export(g, x, path=f"{directory}/again")  # a loaded function exports like any other
h = ft.load(f"{directory}/again")
out, tangent = ft.jvp(g, (x,), (np.ones_like(x),))
np.savez(f"{directory}/results.npz", hessian=ft.hessian(g)(x), jacfwd_grad=ft.jacfwd(ft.grad(g))(x),
         jvp_out=out, jvp_tangent=tangent, again=h(x), again_grad=ft.grad(h)(x))
"""


def test_higher_order_derivatives_and_re_export_in_a_fresh_process(tmp_path):
    def energy(x):
        return fnp.sum(fnp.tanh(x @ W1) ** 2) + fnp.sum(fnp.sin(x) * B1[:3])
    x = RNG.normal(size=(3,))
    ft.export(energy, x, path=tmp_path / "program")
    np.save(tmp_path / "x.npy", x)
    child = subprocess.run([sys.executable, "-c", SECOND_CHILD, str(tmp_path)], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    results = np.load(tmp_path / "results.npz", allow_pickle=False)
    hessian = ft.hessian(energy)(x)
    np.testing.assert_allclose(results["hessian"], hessian, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(results["jacfwd_grad"], hessian, rtol=1e-12, atol=1e-13)
    out, tangent = ft.jvp(energy, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(results["jvp_out"], out, rtol=1e-13)
    np.testing.assert_allclose(results["jvp_tangent"], tangent, rtol=1e-12)
    np.testing.assert_allclose(results["again"], energy(x), rtol=1e-13)
    np.testing.assert_allclose(results["again_grad"], ft.grad(energy)(x), rtol=1e-12)


# -------------------- fuzzing: any corruption is an ExportError or a faithful load --------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False)
                           | st.text(max_size=8) | st.sampled_from(["*", "tuple", "dict", "f64[]", "c0"]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=3),
                           max_leaves=6)


def _paths(value, prefix=()):
    """Every place in a JSON value, as a tuple of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _replaced(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("pristine") / "model"
    ft.export(nested_structures, *PROGRAMS["nested_structures"][1], path=path)
    return {name: (path / name).read_bytes() for name in ("manifest.json", "program.jaxpr", "constants.npz")}


def _load_or_refuse(files, tmp_path, reseal=False):
    path = tmp_path / "fuzzed"
    path.mkdir(exist_ok=True)
    for name, data in files.items():
        (path / name).write_bytes(data)
    if reseal:
        _reseal(path)
    try:
        g = ft.load(path)
    except ExportError:
        return
    args = PROGRAMS["nested_structures"][1]  # what loads must still compute the original (or refuse the arguments)
    try:
        got = g(*args)
    except TypeError:
        return
    for a, b in zip(ft.tree_util.tree_leaves(got), ft.tree_util.tree_leaves(nested_structures(*args)), strict=True):
        assert np.shape(a) == np.shape(b)


@settings(max_examples=60)
@given(data=st.data())
def test_fuzzed_manifest_is_refused_or_loads(pristine, tmp_path_factory, data):
    manifest = json.loads(pristine["manifest.json"])
    place = data.draw(st.sampled_from(list(_paths(manifest))))
    fuzzed = _replaced(manifest, place, data.draw(JSON_VALUES))
    files = {**pristine, "manifest.json": json.dumps(fuzzed).encode()}
    _load_or_refuse(files, tmp_path_factory.mktemp("m"))


def _flipped(data, blob):
    blob = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[:data.draw(st.integers(0, len(blob)))]
    return bytes(blob)


@settings(max_examples=40)
@given(data=st.data(), which=st.sampled_from(["program.jaxpr", "constants.npz"]))
def test_flipped_bytes_fail_the_checksum(pristine, tmp_path_factory, data, which):
    blob = _flipped(data, pristine[which])
    path = tmp_path_factory.mktemp("c") / "fuzzed"
    path.mkdir()
    for name, content in {**pristine, which: blob}.items():
        (path / name).write_bytes(content)
    if blob == pristine[which]:
        ft.load(path)
    else:
        with pytest.raises(ExportError, match="does not match its SHA-256|cannot read"):
            ft.load(path)


@settings(max_examples=60)
@given(data=st.data(), which=st.sampled_from(["program.jaxpr", "constants.npz", "manifest.json"]))
def test_flipped_bytes_with_fitting_checksums_are_refused_or_load(pristine, tmp_path_factory, data, which):
    _load_or_refuse({**pristine, which: _flipped(data, pristine[which])}, tmp_path_factory.mktemp("b"),
                    reseal=which != "manifest.json")
