"""The CPU kernels' compiler driver (interpreters/c_compiler.py): the compiler
found and probed once, libraries compiled and loaded with ctypes, the disk
cache (a second process compiles nothing; a tampered file is compiled again,
never loaded; owner-only directory; two processes compiling one source at
once), the fallback without a compiler, the cpu_kernels setting, and the flags
(no -ffast-math; libmvec's vector tanh).

Tests that need a compiler skip, saying why, where compiler_status() finds
none. Processes started here share nothing but what the test gives them: a
fresh FTRANS_CACHE_DIR of their own, unless the test is about sharing one.
"""
import ctypes
import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
import platform
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
import ir.config
from interpreters import c_compiler
from interpreters.lowering_numpy_runtime import thread_count
from ir.errors import KernelCompileError

ROOT = pathlib.Path(__file__).parent.parent
STATUS = c_compiler.compiler_status()
needs_compiler = pytest.mark.skipif(not STATUS.available, reason=f"no working C compiler: {STATUS.reason}")


def unique(source):
    """`source` made a source no other test (nor an earlier run) compiled: a fresh comment."""
    return f"/* {uuid.uuid4().hex} */\n{source}"


AXPY = textwrap.dedent("""
    void axpy(long n, double a, const double *restrict x, double *restrict y) {
        for (long i = 0; i < n; i++) y[i] = a * x[i] + y[i];
    }
""")


def call_axpy(library, a, x, y):
    axpy = library.axpy
    axpy.restype = None
    axpy.argtypes = [ctypes.c_long, ctypes.c_double, ctypes.c_void_p, ctypes.c_void_p]
    axpy(x.size, a, x.ctypes.data, y.ctypes.data)


def run_python(code, cache_dir, **env):
    """`code` run by a fresh interpreter with FTRANS_CACHE_DIR=cache_dir (and `env`: a None
    value unsets a variable); returns the JSON it prints last."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_CACHE_DIR": str(cache_dir)}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# a process that loads the source in the file $AXPY_SOURCE_FILE, runs its axpy, and prints its
# compile count and result
LOAD_AND_RUN = """
    import json, os, ctypes
    import numpy as np
    from interpreters import c_compiler
    source = open(os.environ["AXPY_SOURCE_FILE"]).read()
    library = c_compiler.load_library(source)
    x, y = np.arange(5.0), np.ones(5)
    library.axpy.argtypes = [ctypes.c_long, ctypes.c_double, ctypes.c_void_p, ctypes.c_void_p]
    library.axpy(5, 2.0, x.ctypes.data, y.ctypes.data)
    print(json.dumps({"compiles": c_compiler.compile_count(), "y": y.tolist()}))
"""
AXPY_RESULT = [1.0, 3.0, 5.0, 7.0, 9.0]


def write_source(tmp_path, source):
    path = tmp_path / "kernel.c.txt"
    path.write_text(source)
    return str(path)


def cached_library(cache_dir, source):
    """The path of the library the disk cache holds for `source` (its record names it)."""
    [c_file] = [p for p in pathlib.Path(cache_dir).glob("*.c") if p.read_text() == source]
    record = json.loads(c_file.with_suffix(".json").read_text())
    return pathlib.Path(cache_dir) / record["library"]


# -------------------- compiling and calling --------------------

@needs_compiler
def test_a_compiled_kernel_runs_through_ctypes():
    library = c_compiler.load_library(unique(AXPY))
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(1000), rng.standard_normal(1000)
    want = 1.5 * x + y  # NumPy's two roundings: -ffp-contract=off keeps them
    call_axpy(library, 1.5, x, y)
    np.testing.assert_array_equal(y, want)


@needs_compiler
def test_the_same_source_in_one_process_compiles_once():
    source = unique(AXPY)
    before = c_compiler.compile_count()
    first = c_compiler.load_library(source)
    assert c_compiler.compile_count() == before + 1
    assert c_compiler.load_library(source) is first
    assert c_compiler.compile_count() == before + 1
    c_compiler.load_library(unique(AXPY))  # another source is another library
    assert c_compiler.compile_count() == before + 2


@needs_compiler
def test_a_second_process_compiles_nothing(tmp_path):
    source_file = write_source(tmp_path, unique(AXPY))
    first = run_python(LOAD_AND_RUN, tmp_path / "cache", AXPY_SOURCE_FILE=source_file)
    second = run_python(LOAD_AND_RUN, tmp_path / "cache", AXPY_SOURCE_FILE=source_file)
    assert first["compiles"] >= 1  # the probe, then the kernel (a fresh cache)
    assert second["compiles"] == 0  # neither: both come from the disk cache
    assert first["y"] == second["y"] == AXPY_RESULT
    library = cached_library(tmp_path / "cache", pathlib.Path(source_file).read_text())
    record = json.loads(library.with_name(library.name.split("-")[0] + ".json").read_text())
    assert record["sha256"] == hashlib.sha256(library.read_bytes()).hexdigest()


@needs_compiler
def test_the_key_covers_the_source_the_compiler_the_flags_and_the_machine(monkeypatch):
    key = c_compiler.cache_key(AXPY)
    assert c_compiler.cache_key(AXPY) == key and len(key) == 64
    assert c_compiler.cache_key(AXPY + " ") != key
    assert c_compiler.cache_key(AXPY, dataclasses.replace(STATUS, compile_flags=STATUS.compile_flags[1:])) != key
    assert c_compiler.cache_key(AXPY, dataclasses.replace(STATUS, link_flags=())) != key
    monkeypatch.setitem(c_compiler._identity_versions, STATUS.command,
                        c_compiler._identity_versions[STATUS.command] + "patched")
    assert c_compiler.cache_key(AXPY) != key  # another compiler version
    monkeypatch.undo()
    assert c_compiler.cache_key(AXPY) == key
    machine = c_compiler.machine_identity()
    monkeypatch.setattr(c_compiler, "_machine", {**machine, "cpu": {**machine["cpu"], "flags": "sse2"}})
    assert c_compiler.cache_key(AXPY) != key  # another CPU (-march=native)
    assert machine["machine"] and (machine["cpu"] or machine["processor"] or sys.platform != "linux")


@needs_compiler
@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "replace with another library"])
def test_a_tampered_cached_library_is_compiled_again_not_loaded(tmp_path, damage):
    source = unique(AXPY)
    source_file = write_source(tmp_path, source)
    cache = tmp_path / "cache"
    run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=source_file)
    path = cached_library(cache, source)
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[:len(data) // 3]
    else:  # a whole, loadable library, but not the one recorded
        other = unique("void axpy(long n, double a, const double *x, double *y) { }")
        c_compiler.load_library(other)
        data = cached_library(c_compiler.cache_directory(), other).read_bytes()
    path.write_bytes(bytes(data))
    again = run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=source_file)
    assert again["compiles"] == 1  # the kernel (the probe's library was left alone)
    assert again["y"] == AXPY_RESULT  # the recompiled kernel, not the tampered file
    assert run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=source_file)["compiles"] == 0


def start_together(tmp_path, source_file, count, cache, prelude=""):
    """`count` processes running LOAD_AND_RUN on one cache, released at once; their outputs."""
    go = tmp_path / "go"
    code = textwrap.dedent(f"""
        import os, time
        while not os.path.exists({str(go)!r}):
            time.sleep(0.002)
    """) + textwrap.dedent(prelude) + textwrap.dedent(LOAD_AND_RUN)
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_CACHE_DIR": str(cache),
                   "AXPY_SOURCE_FILE": source_file}
    processes = [subprocess.Popen([sys.executable, "-c", code], env=environment, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(count)]
    go.touch()  # all start their compiles (the probe's, then the kernel's) together
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    go.unlink()
    return results


@needs_compiler
@pytest.mark.parametrize("library", ["another key's library", "../outside.so", "garbage record"])
def test_a_record_naming_another_file_is_not_followed(tmp_path, library):
    source = unique(AXPY)
    source_file = write_source(tmp_path, source)
    cache = tmp_path / "cache"
    run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=source_file)
    other = unique("void axpy(long n, double a, const double *x, double *y) { }")
    (tmp_path / "other").mkdir()
    other_file = write_source(tmp_path / "other", other)
    run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=other_file)  # a whole library, recorded under its own key
    path = cached_library(cache, source)
    record_path = path.with_name(path.name.split("-")[0] + ".json")
    if library == "garbage record":
        record_path.write_text("{not json")
    else:
        theirs = cached_library(cache, other)
        if library == "../outside.so":
            theirs = tmp_path / "outside.so"
            shutil.copy(cached_library(cache, other), theirs)
            name = "../outside.so"
        else:
            name = theirs.name
        record = json.loads(record_path.read_text())
        record.update(library=name, sha256=hashlib.sha256(theirs.read_bytes()).hexdigest())
        record_path.write_text(json.dumps(record))
    again = run_python(LOAD_AND_RUN, cache, AXPY_SOURCE_FILE=source_file)
    assert again == {"compiles": 1, "y": AXPY_RESULT}  # compiled again: the other axpy does nothing


@needs_compiler
def test_two_processes_compiling_one_source_at_once_both_succeed(tmp_path):
    source_file = write_source(tmp_path, unique(AXPY))
    results = start_together(tmp_path, source_file, 2, tmp_path / "cache")
    assert [r["y"] for r in results] == [AXPY_RESULT, AXPY_RESULT]
    assert not list((tmp_path / "cache").glob("tmp-*"))  # no scratch file left behind
    alone = run_python(LOAD_AND_RUN, tmp_path / "fresh", AXPY_SOURCE_FILE=source_file)
    if c_compiler.fcntl is not None:  # the lock lets one process compile each source while the other waits
        assert sum(r["compiles"] for r in results) == alone["compiles"]
    assert len(list((tmp_path / "cache").glob("*.so"))) == len(list((tmp_path / "fresh").glob("*.so")))
    assert run_python(LOAD_AND_RUN, tmp_path / "cache", AXPY_SOURCE_FILE=source_file)["compiles"] == 0


@needs_compiler
def test_without_the_lock_concurrent_compiles_still_leave_a_sound_cache(tmp_path):
    """No flock (as on Windows): three processes compile the same sources at once; atomic
    replaces keep every file whole, so all succeed and a later process compiles nothing."""
    source_file = write_source(tmp_path, unique(AXPY))
    results = start_together(tmp_path, source_file, 3, tmp_path / "cache",
                             prelude="from interpreters import c_compiler\nc_compiler.fcntl = None\n")
    assert [r["y"] for r in results] == [AXPY_RESULT] * 3
    assert not list((tmp_path / "cache").glob("tmp-*"))
    assert run_python(LOAD_AND_RUN, tmp_path / "cache", AXPY_SOURCE_FILE=source_file)["compiles"] == 0


@needs_compiler
def test_threads_loading_one_source_compile_it_once():
    from concurrent.futures import ThreadPoolExecutor
    source = unique(AXPY)
    before = c_compiler.compile_count()
    with ThreadPoolExecutor(4) as pool:
        libraries = list(pool.map(lambda _: c_compiler.load_library(source), range(8)))
    assert c_compiler.compile_count() == before + 1
    assert all(library is libraries[0] for library in libraries)


@needs_compiler
def test_a_cache_directory_removed_during_the_run_is_made_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FTRANS_CACHE_DIR", str(cache))
    c_compiler.load_library(unique(AXPY))
    shutil.rmtree(cache)
    c_compiler.load_library(unique(AXPY))
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and len(list(cache.glob("*.so"))) == 1


@needs_compiler
def test_a_compile_error_names_the_source_file_and_shows_the_compiler_output():
    source = unique("int broken(void) { return undeclared_name; }\n")
    with pytest.raises(KernelCompileError, match="undeclared_name") as error:
        c_compiler.load_library(source)
    message = str(error.value)
    assert "the C compiler failed" in message
    [path] = [word for word in message.split() if word.endswith(".c")][:1]
    assert pathlib.Path(path).read_text() == source


def test_the_error_is_public():
    assert ft.KernelCompileError is KernelCompileError and issubclass(KernelCompileError, RuntimeError)
    assert "KernelCompileError" in ft.__all__


def test_load_library_takes_a_string():
    with pytest.raises(TypeError, match="str"):
        c_compiler.load_library(b"int f(void) { return 0; }")


# -------------------- the cache directory --------------------

@needs_compiler
def test_the_cache_directory_is_created_owner_only(tmp_path, monkeypatch):
    wanted = tmp_path / "deep" / "cache"
    monkeypatch.setenv("FTRANS_CACHE_DIR", str(wanted))
    old = os.umask(0o000)  # a permissive umask must not make it group- or world-accessible
    try:
        assert c_compiler.cache_directory() == str(wanted)
    finally:
        os.umask(old)
    assert stat.S_IMODE(wanted.stat().st_mode) == 0o700
    c_compiler.load_library(unique(AXPY))
    assert len(list(wanted.glob("*.so"))) == 1
    for record in wanted.glob("*.json"):
        assert stat.S_IMODE(record.stat().st_mode) & 0o077 == 0


def test_the_default_cache_directory_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert c_compiler.default_cache_directory() == str(tmp_path / "ftrans" / "c-kernels")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: relative paths are ignored
    assert c_compiler.default_cache_directory() == os.path.join(os.path.expanduser("~"), ".cache", "ftrans",
                                                                "c-kernels")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert c_compiler.default_cache_directory() == os.path.join(os.path.expanduser("~"), ".cache", "ftrans",
                                                                "c-kernels")


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX ownership and modes")
def test_a_directory_writable_by_others_is_refused_for_a_private_one(tmp_path, monkeypatch, caplog):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("FTRANS_CACHE_DIR", str(shared))
    with caplog.at_level(logging.DEBUG, logger="ftrans.cpu_kernels"):
        used = c_compiler.cache_directory()
    assert used != str(shared)
    info = os.stat(used)
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    assert any("writable by group or others" in r.getMessage() and str(shared) in r.getMessage()
               for r in caplog.records)
    if STATUS.available:
        c_compiler.load_library(unique(AXPY))
        assert not list(shared.iterdir())  # nothing was written into the refused directory


def test_a_cache_path_that_is_a_file_is_refused(tmp_path, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    monkeypatch.setenv("FTRANS_CACHE_DIR", str(a_file))
    assert c_compiler._prepare_directory(str(a_file)) == "not a directory"
    used = c_compiler.cache_directory()
    assert used != str(a_file) and os.path.isdir(used) and a_file.read_text() == "not a directory"


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to give a directory away")
def test_a_directory_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    monkeypatch.setenv("FTRANS_CACHE_DIR", str(theirs))
    assert c_compiler.cache_directory() != str(theirs)
    assert "owned by user id 65534" in c_compiler._prepare_directory(str(theirs))


# -------------------- no compiler: the fallback --------------------

NO_COMPILER = """
    import json, logging, io
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("ftrans.cpu_kernels").addHandler(handler)
    logging.getLogger("ftrans.cpu_kernels").setLevel(logging.DEBUG)
    import ftrans as ft
    from interpreters import c_compiler
    from ir.errors import KernelCompileError
    status = c_compiler.compiler_status()
    out = {"available": status.available, "reason": status.reason,
           "auto": [c_compiler.kernels_enabled(), c_compiler.kernels_enabled()]}
    out["notes"] = stream.getvalue().count("no C kernels")
    ft.config.update("cpu_kernels", False)
    out["off"] = c_compiler.kernels_enabled()
    ft.config.update("cpu_kernels", True)
    try:
        c_compiler.kernels_enabled()
        out["required"] = "no error"
    except KernelCompileError as error:
        out["required"] = str(error)
    try:
        c_compiler.load_library("int f(void) { return 0; }")
        out["load"] = "no error"
    except KernelCompileError as error:
        out["load"] = str(error)
    print(json.dumps(out))
"""


def test_without_a_compiler_on_path_kernels_are_off_in_auto_mode_and_required_mode_says_why(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run_python(NO_COMPILER, tmp_path / "cache", PATH=str(empty), CC=None, FTRANS_CPU_KERNELS=None)
    assert out["available"] is False
    assert "no C compiler on PATH" in out["reason"] and "cc, gcc, clang" in out["reason"]
    assert out["auto"] == [False, False] and out["notes"] == 1  # silent fallback: one debug note
    assert out["off"] is False
    assert "C kernels were asked for" in out["required"] and "no C compiler on PATH" in out["required"]
    assert "no C compiler on PATH" in out["load"]


def test_a_cc_that_does_not_exist_is_named(tmp_path):
    out = run_python(NO_COMPILER, tmp_path / "cache", CC="/nonexistent/bin/mycc", FTRANS_CPU_KERNELS=None)
    assert out["available"] is False and "CC='/nonexistent/bin/mycc': not found on PATH" in out["reason"]
    assert "CC='/nonexistent/bin/mycc'" in out["required"]


@pytest.mark.parametrize("version_works", [False, True])
def test_a_compiler_that_fails_the_probe_is_unavailable_with_its_stderr(tmp_path, version_works):
    broken = tmp_path / "brokencc"
    version = 'if [ "$1" = --version ]; then echo "brokencc 1.0"; exit 0; fi\n' if version_works else ""
    broken.write_text(f"#!/bin/sh\n{version}echo 'brokencc: fatal error: no licence' >&2\nexit 3\n")
    broken.chmod(0o755)
    out = run_python(NO_COMPILER, tmp_path / "cache", CC=str(broken), FTRANS_CPU_KERNELS=None)
    assert out["available"] is False and out["auto"] == [False, False]
    assert "no licence" in out["reason"] and "no licence" in out["required"]
    assert f"CC='{broken}'" in out["reason"]
    if version_works:  # its --version passed: the probe's compile failed, and the message says so
        assert "cannot build a working shared library" in out["reason"] and "exit status 3" in out["reason"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="the wrapper compiler calls gcc")
def test_a_compiler_without_openmp_or_libmvec_still_builds_kernels(tmp_path):
    """A compiler that rejects -fopenmp, -lmvec and -march=native (clang without libomp,
    no glibc, an old Apple clang): available, on one thread, scalar math calls, generic code."""
    wrapper = tmp_path / "nomp-cc"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        for a in "$@"; do
            case "$a" in
                -fopenmp) echo "nomp-cc: error: unsupported option '-fopenmp'" >&2; exit 1;;
                -lmvec) echo "ld: cannot find -lmvec" >&2; exit 1;;
                -march=native) echo "nomp-cc: error: unsupported argument 'native' to '-march='" >&2; exit 1;;
            esac
        done
        exec {shutil.which("gcc")} "$@"
    """))
    wrapper.chmod(0o755)
    source_file = write_source(tmp_path, unique(AXPY))
    code = LOAD_AND_RUN.replace(
        'print(json.dumps({"compiles": c_compiler.compile_count(), "y": y.tolist()}))',
        'status = c_compiler.compiler_status()\n'
        '    print(json.dumps({"compiles": c_compiler.compile_count(), "y": y.tolist(), "openmp": status.openmp,'
        ' "libmvec": status.libmvec, "flags": [*status.compile_flags, *status.link_flags],'
        ' "threads": c_compiler.kernel_threads()}))')
    out = run_python(code, tmp_path / "cache", CC=str(wrapper), AXPY_SOURCE_FILE=source_file)
    assert out["y"] == AXPY_RESULT
    assert out["openmp"] is False and out["libmvec"] is False and out["threads"] == 1
    assert "-fopenmp" not in out["flags"] and "-lmvec" not in out["flags"] and "-march=native" not in out["flags"]
    assert "-ffp-contract=off" in out["flags"] and "-O3" in out["flags"]
    assert "-fopenmp-simd" in out["flags"]  # gcc behind the wrapper takes it: the simd pragmas stay
    again = run_python(code, tmp_path / "cache", CC=str(wrapper), AXPY_SOURCE_FILE=source_file)
    assert again["compiles"] == 0 and again["openmp"] is False  # the probe's findings are cached too


FLOAT16_PROGRAM = """
    import json
    import numpy as np
    import ftrans as ft
    import ftrans.numpy as fnp
    from interpreters import c_compiler, lowering_c
    ft.config.update("cpu_kernels", True)
    lowering_c.C_MIN_ELEMENTS = 1
    def f(h, x):
        return fnp.tanh(h) * h + fnp.float16(1), fnp.tanh(x) * x + 1
    h = np.linspace(-3, 3, 999).astype(np.float16)
    x = h.astype(np.float32)
    source = ft.jit(f).lower(h, x).as_text()
    got, want = ft.jit(f)(h, x), f(h, x)
    print(json.dumps({"float16": c_compiler.compiler_status().float16, "compiles": c_compiler.compile_count(),
                      "halves_in_c": "_Float16" in source, "tanh_in_c": source.count("(tanhf(x"),
                      # halves bit for bit (float16 tanh is NumPy's at every half), float32 within libmvec's ulps
                      "equal": np.array_equal(np.asarray(got[0]), want[0]) and got[0].dtype == np.float16
                               and np.allclose(np.asarray(got[1]), want[1], rtol=1e-6, atol=0)}))
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="the wrapper compiler calls gcc")
def test_a_compiler_without_float16_leaves_halves_to_numpy(tmp_path):
    """A compiler that has no _Float16 (GCC < 12, clang < 15, another architecture): kernels for
    the other dtypes, float16 as NumPy calls; the probe's finding is cached too."""
    wrapper = tmp_path / "old-cc"
    wrapper.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        for a in "$@"; do
            case "$a" in
                *.c) if grep -q _Float16 "$a"; then echo "old-cc: error: unknown type name '_Float16'" >&2; exit 1; fi;;
            esac
        done
        exec {shutil.which("gcc")} "$@"
    """))
    wrapper.chmod(0o755)
    out = run_python(FLOAT16_PROGRAM, tmp_path / "cache", CC=str(wrapper))
    assert out["float16"] is False and out["tanh_in_c"] == 1 and not out["halves_in_c"] and out["equal"]
    again = run_python(FLOAT16_PROGRAM, tmp_path / "cache", CC=str(wrapper))
    assert again["compiles"] == 0 and again["float16"] is False
    record = json.loads(next((tmp_path / "cache").glob("probe-*.json")).read_text())
    assert record["float16"] is False


@needs_compiler
@pytest.mark.skipif(not STATUS.float16, reason="the C compiler has no _Float16")
def test_a_compiler_with_float16_compiles_half_groups_and_records_it(tmp_path):
    out = run_python(FLOAT16_PROGRAM, tmp_path / "cache")
    assert out["float16"] is True and out["tanh_in_c"] == 2 and out["halves_in_c"] and out["equal"]
    record = json.loads(next((tmp_path / "cache").glob("probe-*.json")).read_text())
    assert record["float16"] is True
    assert run_python(FLOAT16_PROGRAM, tmp_path / "cache")["compiles"] == 0


@needs_compiler
@pytest.mark.skipif(not STATUS.float16, reason="the C compiler has no _Float16")
def test_the_float16_probe_refuses_a_double_rounding_of_doubles(monkeypatch):
    """(_Float16)(float)x where (_Float16)x should be: some of the probe's values round otherwise."""
    identity = c_compiler._identity(STATUS)
    assert c_compiler._float16_works(STATUS, identity)
    rounding_twice = c_compiler._FLOAT16_PROBE_SOURCE.replace("from_double[i] = (_Float16)x[i];",
                                                              "from_double[i] = (_Float16)(float)x[i];")
    assert rounding_twice != c_compiler._FLOAT16_PROBE_SOURCE
    monkeypatch.setattr(c_compiler, "_FLOAT16_PROBE_SOURCE", rounding_twice)
    assert not c_compiler._float16_works(STATUS, identity)


# -------------------- the setting --------------------

@pytest.fixture
def restore_cpu_kernels():
    old = ir.config.cpu_kernels
    yield
    ir.config.cpu_kernels = old


def test_cpu_kernels_takes_true_false_or_none(restore_cpu_kernels, monkeypatch):
    monkeypatch.delenv("FTRANS_CPU_KERNELS", raising=False)
    for value in (True, False, None, np.bool_(False)):
        ft.config.update("cpu_kernels", value)
        assert ft.config.cpu_kernels is (None if value is None else bool(value))
    for bad in ("yes", 1, 0, "auto", 1.0):
        with pytest.raises(TypeError, match=r"cpu_kernels.*True.*False.*None"):
            ft.config.update("cpu_kernels", bad)
    assert "cpu_kernels" in dir(ft.config) and "cpu_kernels=" in repr(ft.config)
    ft.config.update("cpu_kernels", False)
    assert c_compiler.kernels_enabled() is False


@needs_compiler
def test_changing_the_setting_recompiles_what_was_jitted(restore_cpu_kernels):
    x = np.linspace(-2.0, 2.0, 50_000)
    f = ft.jit(lambda x: fnp.tanh(x * 0.5 + 1.0) * x - fnp.exp(-x * x) + 2.0 * x * x * x + 0.25)
    ft.config.update("cpu_kernels", True)
    want = np.asarray(f(x))
    kernels_used = lambda: any(c.lowered.source.count("the C kernels") for c in f._cache.values())  # noqa: E731
    assert kernels_used() and f.trace_count == 1
    ft.config.update("cpu_kernels", True)  # no change: nothing is dropped
    f(x)
    assert f.trace_count == 1
    ft.config.update("cpu_kernels", False)
    np.testing.assert_allclose(f(x), want, rtol=1e-14, atol=1e-14)
    assert not kernels_used() and f.trace_count == 2
    ft.config.update("cpu_kernels", None)
    f(x)
    assert kernels_used() and f.trace_count == 3


@pytest.mark.parametrize("text, setting", [("1", True), ("true", True), ("ON", True), ("yes", True),
                                           ("0", False), ("false", False), ("off", False), ("no", False),
                                           ("", None), ("auto", None), (" 0 ", False)])
def test_the_environment_variable_decides_until_the_option_is_set(text, setting, monkeypatch,
                                                                   restore_cpu_kernels):
    ir.config.cpu_kernels = "environment"
    monkeypatch.setenv("FTRANS_CPU_KERNELS", text)
    assert ft.config.cpu_kernels is setting
    assert c_compiler.kernels_enabled() is (False if setting is False else STATUS.available)
    ft.config.update("cpu_kernels", not setting)  # the option, once set, wins over the environment
    assert ft.config.cpu_kernels is (not setting)


def test_a_bad_environment_value_is_an_error_naming_it(monkeypatch, restore_cpu_kernels):
    ir.config.cpu_kernels = "environment"
    monkeypatch.setenv("FTRANS_CPU_KERNELS", "maybe")
    with pytest.raises(ValueError, match=r"FTRANS_CPU_KERNELS must be 1 .*0 .*auto.*'maybe'"):
        c_compiler.kernels_enabled()


@needs_compiler
def test_required_kernels_with_a_compiler_are_enabled(restore_cpu_kernels):
    ft.config.update("cpu_kernels", True)
    assert c_compiler.kernels_enabled() is True


def test_kernel_threads_are_jits_threads():
    assert c_compiler.kernel_threads() == (thread_count() if STATUS.openmp else 1)
    assert c_compiler.kernel_threads() >= 1


FILL = """
void fill(long n, double *y, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) y[i] = 2.0 * i;
}
"""
FORK = """
    import ctypes, json, os
    import numpy as np
    from interpreters import c_compiler
    library = c_compiler.load_library(os.environ["FILL_SOURCE"])
    library.fill.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_int]
    def run():
        y = np.zeros(1 << 16)
        library.fill(y.size, y.ctypes.data, c_compiler.kernel_threads())
        return bool(np.array_equal(y, 2.0 * np.arange(y.size)))
    parent = {"threads": c_compiler.kernel_threads(), "ok": run()}
    pid = os.fork()
    if pid == 0:
        os.write(1, (json.dumps({"threads": c_compiler.kernel_threads(), "ok": run()}) + "\\n").encode())
        os._exit(0)
    _, code = os.waitpid(pid, 0)
    print(json.dumps({"parent": parent, "exit": code}))
"""


@needs_compiler
@pytest.mark.skipif(not hasattr(os, "fork") or not STATUS.openmp, reason="needs fork and OpenMP")
@pytest.mark.skipif(thread_count() < 2, reason="one CPU: kernels run on one thread anyway")
def test_a_forked_child_runs_kernels_on_one_thread_instead_of_hanging(tmp_path):
    """libgomp hangs in a child forked after its parent ran a parallel region on its
    threads (seen here before this rule): the child's kernels use one thread."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_CACHE_DIR": str(tmp_path / "cache"),
                   "FILL_SOURCE": FILL}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FORK)], env=environment, capture_output=True,
                          text=True, timeout=60)  # (a hang fails here)
    assert done.returncode == 0, done.stderr
    child, parent = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert parent == {"parent": {"threads": thread_count(), "ok": True}, "exit": 0}
    assert child == {"threads": 1, "ok": True}


WAIT = """
    import json, os
    from interpreters import c_compiler
    c_compiler.load_library(os.environ["FILL_SOURCE"])
    print(json.dumps({"left": os.environ.get("OMP_WAIT_POLICY"), "openmp": c_compiler.compiler_status().openmp}))
"""


@needs_compiler
@pytest.mark.skipif(not STATUS.openmp, reason="needs OpenMP")
@pytest.mark.parametrize("chosen, shown", [({}, ("PASSIVE", "0")), ({"OMP_WAIT_POLICY": "active"}, ("ACTIVE", None)),
                                           ({"GOMP_SPINCOUNT": "7"}, ("PASSIVE", "7"))])
def test_openmp_threads_sleep_after_a_kernel_unless_the_user_chose(tmp_path, chosen, shown):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_CACHE_DIR": str(tmp_path / "cache"),
                   "FILL_SOURCE": FILL, "OMP_DISPLAY_ENV": "VERBOSE", **chosen}
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if name not in chosen:
            environment.pop(name, None)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(WAIT)], env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if "GOMP_SPINCOUNT" not in done.stderr:
        pytest.skip("the OpenMP runtime is not GCC's libgomp (it displays no GOMP_SPINCOUNT)")
    policy, spin = shown
    assert f"OMP_WAIT_POLICY = '{policy}'" in done.stderr
    if spin is not None:
        assert f"GOMP_SPINCOUNT = '{spin}'" in done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["left"] == chosen.get("OMP_WAIT_POLICY")  # set for the runtime's first load only


# -------------------- the flags --------------------

UNSAFE = ("-ffast-math", "-Ofast", "-funsafe-math-optimizations", "-ffinite-math-only", "-fno-signed-zeros",
          "-fassociative-math", "-freciprocal-math", "-ffp-contract=fast", "-fno-trapping-math")


@needs_compiler
def test_the_flags_keep_ieee_semantics():
    flags = STATUS.compile_flags + STATUS.link_flags
    assert not set(flags) & set(UNSAFE)
    for needed in ("-O3", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off", "-fwrapv", "-lm"):
        assert needed in flags
    assert ("-fopenmp" in flags) is STATUS.openmp and ("-lmvec" in flags) is STATUS.libmvec
    assert ("-fopenmp-simd" in flags) is STATUS.openmp_simd and not (STATUS.openmp and STATUS.openmp_simd)
    assert ("-march=native" in flags) is STATUS.native
    # GCC tunes Intel's AVX-512 CPUs to 256-bit vectors unless told: libmvec's 512-bit tanh is 1.6x faster
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    assert ("-mprefer-vector-width=512" in flags) is (STATUS.native and x86)


TANH_LOOP = textwrap.dedent("""
    #include <math.h>
    #pragma omp declare simd notinbranch
    extern double tanh(double);
    void tanh_loop(long n, const double *restrict x, double *restrict y) {
        #pragma omp simd
        for (long i = 0; i < n; i++) y[i] = tanh(x[i]);
    }
""")


@needs_compiler
@pytest.mark.skipif(not STATUS.libmvec or not STATUS.openmp, reason="needs OpenMP and glibc's libmvec")
@pytest.mark.skipif(shutil.which("nm") is None, reason="nm is not installed")
def test_a_simd_tanh_loop_calls_a_libmvec_vector_variant():
    library = c_compiler.load_library(unique(TANH_LOOP))
    symbols = subprocess.run(["nm", "-D", "--undefined-only", library._name], capture_output=True, text=True,
                             check=True).stdout
    assert any(name.startswith("_ZGV") and "tanh" in name for name in symbols.split()), symbols
    x = np.linspace(-20.0, 20.0, 4001)
    y = np.empty_like(x)
    library.tanh_loop.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    library.tanh_loop(x.size, x.ctypes.data, y.ctypes.data)
    # libmvec's tanh is within 4 ulp (glibc's manual); measured against Python's (libm's) tanh
    want = np.array([math.tanh(v) for v in x])
    ulps = np.abs(y - want) / np.spacing(np.abs(want))
    assert np.max(ulps[want != 0]) <= 4
    assert y[x.size // 2] == 0.0 and np.array_equal(np.sign(y), np.sign(x))


def test_the_status_says_what_the_probe_found():
    if STATUS.available:
        assert STATUS.command and os.path.isabs(STATUS.command[0]) and STATUS.version and STATUS.reason == ""
    else:
        assert STATUS.command is None and STATUS.reason and STATUS.float16 is False
    assert isinstance(STATUS.float16, bool)
    assert c_compiler.compiler_status() is STATUS  # memoized
    with pytest.raises(dataclasses.FrozenInstanceError):
        STATUS.available = not STATUS.available
