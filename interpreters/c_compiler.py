"""The CPU kernels' compiler driver: find the system C compiler, compile one
generated translation unit into a shared library, cache it on disk, load it
with ctypes (standard library only: no new dependency).

    compiler_status()      the compiler found at first use (memoized), probed once
    load_library(source)   a ctypes.CDLL of `source`, compiled or from the disk cache
    kernels_enabled()      whether jit should use C kernels (ft.config "cpu_kernels")
    kernel_threads()       the OpenMP threads a kernel's parallel loops use

The compiler: `$CC` if set (it may hold words, "ccache gcc"), else the first of
`cc`, `gcc`, `clang` on PATH that compiles and runs a small test program
(OpenMP, libm, a `declare simd` tanh). The probe tries the full flags first;
when they fail it keeps the optional parts that work alone: without `-fopenmp`
(clang without libomp) kernels run on one thread (with -fopenmp-simd, which
keeps the simd pragmas, where it works), without `-lmvec` (no glibc)
transcendentals are scalar calls, without `-march=native` the code is generic.
It also compiles and runs a test of `_Float16` (status.float16: its conversions
from float and from double, rounded directly as NumPy's npy_double_to_half, not
through float): without it, float16 stays NumPy calls (GCC < 12, clang < 15,
architectures without the type). What it found is kept in the disk cache (a
second process runs no probe).

The disk cache: `$FTRANS_CACHE_DIR`, else `$XDG_CACHE_HOME/ftrans/c-kernels`,
else `~/.cache/ftrans/c-kernels`; created with mode 0700. A directory not owned
by this user, or writable by group or others, is refused: the libraries of this
process then go to a private temporary directory (removed at exit), with a
debug note. A library is stored as `<key>-<hash>.so` beside `<key>.json`, its
record (the library's SHA-256); a cached library is loaded only when the file's
actual hash matches the record, so a truncated or altered file is compiled
again, never loaded. Every file is written under a temporary name in the same
directory and `os.replace`d into place (readers never see half a file), and a
per-key lock file (fcntl.flock, where there is one) lets one process compile a
source while the others wait and then load its result. The key hashes the
source, the compiler command and its `--version`, the flags, and the machine
(platform.machine() and the CPU's model and feature flags: -march=native code
may not run on another CPU). Loaded libraries are memoized in the process by key.
status.float16 is not in the key: it decides which source lowering_c writes (only
a unit with float16 kernels holds `_Float16`), not how a source compiles.

Nothing here reads the IR: the generated source is cgen's (lowering_c.py), which
puts in it only validated numbers and generated identifiers.
"""
from __future__ import annotations

import atexit
import ctypes
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: no flock; atomic replaces and hash checks still keep the cache sound
    fcntl = None

from interpreters import lowering_numpy_runtime as _runtime
from ir import config as _config
from ir.errors import KernelCompileError

log = logging.getLogger("ftrans.cpu_kernels")

# -------------------- flags --------------------
#
# Why each flag (and why no -ffast-math):
#   -O3                 loop vectorization and inlining of the generated one-loop kernels.
#   -march=native       this CPU's vector units (AVX2, AVX-512, NEON); hence the CPU's model and
#                       flags are part of the cache key.
#   -mprefer-vector-width=512 (x86-64 only, with -march=native) GCC's tuning for Intel's AVX-512
#                       CPUs uses 256-bit vectors unless told otherwise, which halves the throughput
#                       of libmvec's tanh/exp (on an Ice Lake Xeon, gelu_tanh on 10^7 float64 values
#                       at 2 threads: 27.0 ms at 256 bits, 16.6 ms at 512); a CPU without AVX-512
#                       has no 512-bit vectors, and the flag changes nothing there.
#   -fPIC -shared       a shared library that ctypes can load.
#   -fopenmp            `#pragma omp parallel for` splits large loops across threads, and
#                       `omp simd` / `omp declare simd` mark loops and math functions vectorizable.
#                       Where it fails (clang without libomp), -fopenmp-simd keeps the simd pragmas
#                       (no runtime library needed) and kernels run on one thread.
#   -fno-math-errno     math functions need not set errno (NumPy never reads it): lets the compiler
#                       vectorize calls and inline sqrt as an instruction; no value changes.
#   -ffp-contract=off   no contraction of a*b+c into one fused multiply-add: NumPy rounds the product
#                       and the sum separately, and so must the kernels, bit for bit.
#   -fwrapv             signed integer overflow wraps (two's complement) as NumPy's does, instead of
#                       being undefined behaviour the optimizer may assume away.
#   -lmvec -lm          glibc's libmvec holds the vector variants (`_ZGV...tanh`) that a loop calls
#                       for a function declared `#pragma omp declare simd notinbranch`; libm the
#                       scalar ones. Only where libmvec exists (glibc).
# No -ffast-math: it allows reassociation (sums in another order), assumes no NaN or inf
# (-ffinite-math-only), drops signed zeros, and linking a shared library with it (crtfastmath.o)
# sets flush-to-zero for the whole process. glibc's math.h declares its vector variants only under
# __FAST_MATH__, so the generated source declares the functions it vectorizes itself.
OPTIMIZE = ("-O3",)
NATIVE = ("-march=native",) + (("-mprefer-vector-width=512",)
                                if platform.machine().lower() in ("x86_64", "amd64") else ())
SHARED = ("-fPIC", "-shared")
OPENMP = ("-fopenmp",)
OPENMP_SIMD = ("-fopenmp-simd",)
FLOATING_POINT = ("-fno-math-errno", "-ffp-contract=off", "-fwrapv")
LIBMVEC = ("-lmvec",)
LIBM = ("-lm",)

CANDIDATES = ("cc", "gcc", "clang")
COMPILE_TIMEOUT_S = 600  # a compiler that hangs is an error, not a hung jit
_FORMAT = 1  # bump when the layout of the cache or of the key changes

# -------------------- the compiler --------------------


@dataclasses.dataclass(frozen=True)
class CompilerStatus:
    """The system C compiler as the probe found it.

    available: it compiled, loaded and ran the test program; command: its argv
    prefix (None when none was found); version: the first line of its
    `--version`; openmp: `-fopenmp` works (else kernels run on one thread);
    reason: what is missing when not available ('' when it is). libmvec,
    native, openmp_simd: whether `-lmvec`, `-march=native` and (without
    `-fopenmp`) `-fopenmp-simd` are used; compile_flags and link_flags: the
    flags load_library passes before and after the source; float16: the
    compiler has `_Float16`, converting to it from float and double as NumPy
    does (lowering_c then lowers float16 groups to C)."""
    available: bool
    command: tuple[str, ...] | None
    version: str
    openmp: bool
    reason: str
    libmvec: bool = False
    native: bool = False
    compile_flags: tuple[str, ...] = ()
    link_flags: tuple[str, ...] = ()
    openmp_simd: bool = False
    float16: bool = False


def _flags(native, openmp, simd, libmvec):
    openmp_flags = OPENMP if openmp else OPENMP_SIMD if simd else ()
    compile_flags = OPTIMIZE + (NATIVE if native else ()) + SHARED + openmp_flags + FLOATING_POINT
    link_flags = (LIBMVEC if libmvec else ()) + LIBM
    return compile_flags, link_flags


_status = None
_status_lock = threading.Lock()


def compiler_status() -> CompilerStatus:
    """The compiler found at first use, probed once (memoized for the process)."""
    global _status
    if _status is None:
        with _status_lock:
            if _status is None:
                _status = _find_compiler()
    return _status


def _find_compiler():
    problems = []
    cc = os.environ.get("CC", "").strip()
    if cc:
        try:
            words = shlex.split(cc)
        except ValueError as error:
            return _unavailable(f"CC={cc!r} is not a valid command line ({error})")
        candidates = [(f"CC={cc!r}", words)]
    else:
        candidates = [(name, [name]) for name in CANDIDATES]
    for label, words in candidates:
        executable = shutil.which(words[0])
        if executable is None:
            problems.append(f"{label}: not found on PATH")
            continue
        status = _probe(label, (executable, *words[1:]))
        if status.available:
            return status
        problems.append(status.reason)
    if not cc and all(p.endswith("not found on PATH") for p in problems):
        return _unavailable(f"no C compiler on PATH (looked for {', '.join(CANDIDATES)}; set CC to use another)")
    return _unavailable("; ".join(problems))


def _unavailable(reason):
    return CompilerStatus(available=False, command=None, version="", openmp=False, reason=reason)


_PROBE_SOURCE = r"""
#include <math.h>
#pragma omp declare simd notinbranch
extern double tanh(double);
int ftrans_probe(const double *restrict x, double *restrict y, long n, int threads) {
    #pragma omp parallel for simd num_threads(threads) schedule(static)
    for (long i = 0; i < n; i++) y[i] = tanh(x[i]) + exp(x[i]) + log1p(x[i] * x[i]);
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
"""


_identity_versions = {}  # compiler command -> its whole `--version` text (part of every key)


def _probe(label, command):
    """`command` probed: the full flags first, else the optional parts that work alone."""
    try:
        version_text = _version_text(command)
    except (OSError, subprocess.SubprocessError) as error:
        return _unavailable(f"{label}: `{shlex.join(command)} --version` failed ({error})")
    version = version_text.splitlines()[0].strip() if version_text.strip() else "unknown"
    identity = {"command": list(command), "version": version_text}
    _identity_versions[tuple(command)] = version_text
    directory = cache_directory()
    record = _read_probe_record(directory, identity)
    if record is not None:
        *features, float16 = record
        status = _try_features(command, version, identity, *features)
        if status.available:  # (float16 tried again where it worked: its test program is in the cache)
            return dataclasses.replace(status, float16=float16 and _float16_works(status, identity))
    full = _try_features(command, version, identity, True, True, False, True)
    if full.available:
        float16 = _float16_works(full, identity)
        _write_probe_record(directory, identity, (True, True, False, True, float16))
        return dataclasses.replace(full, float16=float16)
    base = _try_features(command, version, identity, False, False, False, False)
    if not base.available:
        return _unavailable(f"{label} cannot build a working shared library: {base.reason}")
    native = _try_features(command, version, identity, True, False, False, False).available
    openmp = _try_features(command, version, identity, False, True, False, False).available
    simd = not openmp and _try_features(command, version, identity, False, False, True, False).available
    libmvec = _try_features(command, version, identity, False, False, False, True).available
    status = _try_features(command, version, identity, native, openmp, simd, libmvec)
    if not status.available:  # the parts work alone but not together: keep what is safest
        native = libmvec = False
        status = _try_features(command, version, identity, False, openmp, simd, False)
        if not status.available:
            openmp, simd, status = False, False, base
    float16 = _float16_works(status, identity)
    _write_probe_record(directory, identity, (native, openmp, simd, libmvec, float16))
    log.debug("C compiler %s: -march=native %s, -fopenmp %s, -fopenmp-simd %s, -lmvec %s, _Float16 %s",
              shlex.join(command), native, openmp, simd, libmvec, float16)
    return dataclasses.replace(status, float16=float16)


def _version_text(command):
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise subprocess.SubprocessError(f"exit status {done.returncode}: {done.stderr.strip()[:500]}")
    return done.stdout


def _try_features(command, version, identity, native, openmp, simd, libmvec):
    compile_flags, link_flags = _flags(native, openmp, simd, libmvec)
    status = CompilerStatus(available=True, command=tuple(command), version=version, openmp=openmp, reason="",
                            libmvec=libmvec, native=native, compile_flags=compile_flags, link_flags=link_flags,
                            openmp_simd=simd)
    try:
        library = _library(_PROBE_SOURCE, status, identity)
        probe = library.ftrans_probe
        probe.restype = ctypes.c_int
        probe.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double), ctypes.c_long,
                          ctypes.c_int]
        xs = [0.0, -0.5, 1.25, -3.0, 20.0, 0.75, 2.0, -1e-3] * 5
        x, y = (ctypes.c_double * len(xs))(*xs), (ctypes.c_double * len(xs))()
        used_openmp = probe(x, y, len(xs), 1)  # (one thread: a parallel region now would make fork unsafe)
    except (KernelCompileError, OSError, AttributeError) as error:
        return dataclasses.replace(status, available=False, reason=str(error))
    for value, got in zip(xs, y):
        want = math.tanh(value) + math.exp(value) + math.log1p(value * value)
        if not abs(got - want) <= 1e-13 * abs(want):
            return dataclasses.replace(status, available=False,
                                       reason=f"the test program computed {got!r} for {want!r}")
    if used_openmp != int(openmp):
        return dataclasses.replace(status, available=False, reason="-fopenmp did not define _OPENMP")
    return status


_FLOAT16_PROBE_SOURCE = r"""
void ftrans_probe_float16(const double *restrict x, _Float16 *restrict from_double, _Float16 *restrict from_float,
                          float *restrict back, long n) {
    for (long i = 0; i < n; i++) {
        from_double[i] = (_Float16)x[i];
        from_float[i] = (_Float16)(float)x[i];
        back[i] = (float)from_double[i];
    }
}
"""
# Where rounding a double to float first (then to half) would give another half: 1 + 2^-11 + 2^-40
# is just above the midpoint of 1 and 1 + 2^-10 (float rounds it onto the midpoint, which rounds to
# even); then overflow (65520 is inf; 65519 is 65504), half and three quarters of the smallest
# subnormal (0 by the tie to even, and 2^-24), signed zero
_FLOAT16_PROBE_VALUES = (1 + 2.0 ** -11 + 2.0 ** -40, -(1 + 2.0 ** -11 + 2.0 ** -40), 65519.0, 65520.0, -65520.0,
                         2.0 ** -25, 3 * 2.0 ** -26, -0.0, 0.1, 1e300)


def _half_bits(value):
    """The bits of `value` rounded to half, as IEEE's round-to-nearest-even from the double (struct's)."""
    try:
        return struct.unpack("<H", struct.pack("<e", value))[0]
    except OverflowError:  # struct refuses what rounds to an infinity
        return 0x7C00 | (0x8000 if value < 0 else 0)


def _float16_works(status, identity):
    """Whether the compiler of `status` has _Float16 and converts to it as NumPy does: from
    double directly (npy_double_to_half), from float, and back to float exactly."""
    try:
        probe = _library(_FLOAT16_PROBE_SOURCE, status, identity).ftrans_probe_float16
    except (KernelCompileError, OSError, AttributeError) as error:
        log.debug("no _Float16 kernels: %s", error)
        return False
    n = len(_FLOAT16_PROBE_VALUES)
    probe.restype = None
    probe.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_uint16),
                      ctypes.POINTER(ctypes.c_uint16), ctypes.POINTER(ctypes.c_float), ctypes.c_long]
    x, from_double = (ctypes.c_double * n)(*_FLOAT16_PROBE_VALUES), (ctypes.c_uint16 * n)()
    from_float, back = (ctypes.c_uint16 * n)(), (ctypes.c_float * n)()
    probe(x, from_double, from_float, back, n)
    for k, value in enumerate(_FLOAT16_PROBE_VALUES):
        as_float = struct.unpack("<f", struct.pack("<f", value))[0] if abs(value) < 3e38 else value
        want = _half_bits(value)
        exact = struct.unpack("<e", struct.pack("<H", want))[0]
        back_exact = struct.pack("<f", back[k]) == struct.pack("<f", exact)  # (-0.0 too)
        if from_double[k] != want or from_float[k] != _half_bits(as_float) or not back_exact:
            log.debug("no _Float16 kernels: %r converts to half as %#06x (from float %#06x), want %#06x", value,
                      from_double[k], from_float[k], want)
            return False
    return True


def _probe_record_path(directory, identity):
    return os.path.join(directory, "probe-" + _digest(identity) + ".json")


def _read_probe_record(directory, identity):
    try:
        with open(_probe_record_path(directory, identity)) as file:
            record = json.load(file)
        features = (record["native"], record["openmp"], record["openmp_simd"], record["libmvec"], record["float16"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return features if all(isinstance(f, bool) for f in features) else None


def _write_probe_record(directory, identity, features):
    native, openmp, simd, libmvec, float16 = features
    text = json.dumps({"native": native, "openmp": openmp, "openmp_simd": simd, "libmvec": libmvec,
                       "float16": float16})
    try:
        _write_atomically(_probe_record_path(directory, identity), text.encode())
    except OSError as error:
        log.debug("could not record the C compiler probe in %s: %s", directory, error)


# -------------------- the cache directory --------------------

def default_cache_directory():
    """`$XDG_CACHE_HOME/ftrans/c-kernels` (an absolute XDG_CACHE_HOME), else `~/.cache/ftrans/c-kernels`."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ftrans", "c-kernels")


_directories = {}  # requested directory -> the one used
_directories_lock = threading.Lock()


def cache_directory():
    """The disk cache this process uses now: `$FTRANS_CACHE_DIR` or the default, when
    it is safe (owned by this user, not writable by others); else a private
    temporary directory, with a debug note."""
    wanted = os.environ.get("FTRANS_CACHE_DIR", "").strip() or default_cache_directory()
    wanted = os.path.abspath(os.path.expanduser(wanted))
    used = _directories.get(wanted)
    if used is None or not os.path.isdir(used):  # (first use, or removed since: made again)
        with _directories_lock:
            used = _directories.get(wanted)
            if used is None or not os.path.isdir(used):
                problem = _prepare_directory(wanted)
                if problem is None:
                    used = wanted
                else:
                    used = _private_temporary_directory()
                    log.debug("not using %s for the C kernel cache (%s); this process uses %s", wanted, problem,
                              used)
                _directories[wanted] = used
    return used


def _prepare_directory(path):
    """None when `path` is (now) a directory safe to cache in, else what is wrong with it."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, 0o700)
            os.chmod(path, 0o700)  # the umask may have taken bits that mkdir was given: set exactly 0700
        except FileExistsError:
            pass
        info = os.stat(path)
    except OSError as error:
        return f"cannot create it: {error}"
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"owned by user id {info.st_uid}, not by this user ({os.getuid()})"
    if hasattr(os, "getuid") and info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(info.st_mode):#o})"
    if not os.access(path, os.W_OK | os.X_OK):
        return "not writable by this user"
    return None


_temporary = []


def _private_temporary_directory():
    if not _temporary or not os.path.isdir(_temporary[0]):
        _temporary.clear()
        path = tempfile.mkdtemp(prefix="ftrans-c-kernels-")  # mode 0700, owned by this user
        _temporary.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _temporary[0]


# -------------------- compiling and loading --------------------

_loaded = {}  # key -> ctypes.CDLL (never unloaded: functions of it may be held anywhere)
_key_locks = {}
_loaded_lock = threading.Lock()
_compiles = 0
_compile_seconds = 0.0
_LIBRARY_NAME = re.compile(r"[0-9a-f]{64}-[0-9a-f]{16}\.so")


def compile_count() -> int:
    """How many times this process has run the compiler (kernels and probes): 0 in a
    process that found everything in the disk cache."""
    return _compiles


def compile_seconds() -> float:
    """The wall time this process has spent in the compiler."""
    return _compile_seconds


def load_library(source: str) -> ctypes.CDLL:
    """`source` (one C99/C11 translation unit) compiled into a shared library and
    loaded, or loaded from the disk cache; memoized in the process. Raises
    KernelCompileError when there is no working compiler or it rejects `source`
    (with its stderr and the path of the source file it was given)."""
    if not isinstance(source, str):
        raise TypeError(f"load_library takes the C source as a str, got {type(source).__name__}")
    status = compiler_status()
    if not status.available:
        raise KernelCompileError(f"C kernels need a working C compiler: {status.reason}")
    return _library(source, status, _identity(status))


def _identity(status):
    """The compiler as the cache key sees it: its command and whole `--version` text
    (the status keeps the first line)."""
    return {"command": list(status.command), "version": _identity_versions[status.command]}


def cache_key(source, status=None):
    """The disk cache's key of `source` compiled as `status` (by default the compiler
    found) says: a SHA-256 over the source, the compiler's command and `--version`,
    the flags, and the machine (machine_identity())."""
    status = compiler_status() if status is None else status
    return _cache_key(source, status, _identity(status))


def _cache_key(source, status, identity):
    return _digest({"format": _FORMAT, "source": source, "compiler": identity, "compile_flags": status.compile_flags,
                    "link_flags": status.link_flags, "machine": machine_identity()})


def _library(source, status, identity):
    key = _cache_key(source, status, identity)
    library = _loaded.get(key)
    if library is not None:
        return library
    with _loaded_lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        library = _loaded.get(key)
        if library is None:
            directory = cache_directory()
            with _file_lock(os.path.join(directory, key + ".lock")):
                library = _load_cached(directory, key, status)
                if library is None:
                    library = _compile(directory, key, source, status)
            _loaded[key] = library
    return library


# -------------------- OpenMP's waiting threads --------------------
#
# After a parallel region, libgomp's threads spin (GOMP_SPINCOUNT 300,000 by default) before they
# sleep: a core stays busy for a while after every kernel, which the NumPy and BLAS calls that jit
# runs between kernels then lack. Measured on the 2-core test machine (others' jobs on it, load
# 4.5-6; /tmp script: a 784-512-512 MLP-like step, two BLAS matmuls and two gelu kernels, best of
# 7x50, three interleaved runs): default 78-146 ms, OMP_WAIT_POLICY=passive 8-34 ms; a kernel and
# NumPy sin alternated over 10^6 elements: 46-67 ms against 24-32 ms. So, unless the user chose
# (OMP_WAIT_POLICY or GOMP_SPINCOUNT set), the OpenMP runtime starts passive: its threads sleep at
# once. The price is their waking at each parallel region: a 2^16-element kernel called back to back
# took 24-133 us passive against 6-11 us spinning (same machine and load), so parallel regions
# belong to loops large enough to pay it (cgen's threshold). The
# runtime reads the variable when it is first loaded (with the first OpenMP kernel), so it is set
# for that load only and removed after: processes this one starts inherit nothing.
WAIT_POLICY = "PASSIVE"
_runtime_started = False
_runtime_lock = threading.Lock()
_OPENMP_RUNTIMES = ("libgomp.so.1", "libomp.so", "libomp.so.5", "libiomp5.so")


def _dlopen(path, status):
    """ctypes.CDLL(path), the first OpenMP library of the process loaded with WAIT_POLICY."""
    global _runtime_started
    if _runtime_started or not status.openmp:
        return ctypes.CDLL(path)
    with _runtime_lock:
        if _runtime_started:
            return ctypes.CDLL(path)
        chosen = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
        if chosen or _openmp_runtime_loaded():
            library = ctypes.CDLL(path)
        else:
            os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
            try:
                library = ctypes.CDLL(path)
            finally:
                del os.environ["OMP_WAIT_POLICY"]
        _runtime_started = True
        return library


def _openmp_runtime_loaded():
    """Whether an OpenMP runtime is in the process already (then it has read its settings)."""
    if not hasattr(os, "RTLD_NOLOAD"):
        return False
    for name in _OPENMP_RUNTIMES:
        try:
            ctypes.CDLL(name, mode=os.RTLD_NOLOAD)
            return True
        except OSError:
            pass
    return False


def _load_cached(directory, key, status):
    """The cached library of `key` when its record names a file whose SHA-256 matches, else None."""
    record_path = os.path.join(directory, key + ".json")
    try:
        with open(record_path) as file:
            record = json.load(file)
        name, recorded = record["library"], record["sha256"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.debug("unreadable C kernel record %s (%s): compiling again", record_path, error)
        return None
    if not isinstance(name, str) or not _LIBRARY_NAME.fullmatch(name) or not name.startswith(key):
        log.debug("C kernel record %s names no library of its key: compiling again", record_path)
        return None
    path = os.path.join(directory, name)
    try:
        actual = _file_sha256(path)
    except OSError as error:
        log.debug("cached C kernel %s unreadable (%s): compiling again", path, error)
        return None
    if actual != recorded:
        log.debug("cached C kernel %s does not match its recorded SHA-256: compiling again", path)
        return None
    try:
        return _dlopen(path, status)
    except OSError as error:  # (removed meanwhile by a process that compiled it again, without flock)
        log.debug("cached C kernel %s does not load (%s): compiling again", path, error)
        return None


def _compile(directory, key, source, status):
    global _compiles, _compile_seconds
    source_path = os.path.join(directory, key + ".c")
    _write_atomically(source_path, source.encode())
    scratch = os.path.join(directory, f"tmp-{os.getpid()}-{threading.get_ident()}-{key[:16]}.so")
    argv = [*status.command, *status.compile_flags, "-o", scratch, source_path, *status.link_flags]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _remove(scratch)
        raise KernelCompileError(f"the C compiler ran over {COMPILE_TIMEOUT_S} s on {source_path}\n"
                                 f"  command: {shlex.join(argv)}") from None
    finally:
        with _loaded_lock:
            _compiles += 1
            _compile_seconds += time.perf_counter() - start
    if done.returncode != 0:
        _remove(scratch)
        stderr = done.stderr.strip()
        if len(stderr) > 20_000:
            stderr = stderr[:10_000] + "\n[...]\n" + stderr[-10_000:]
        raise KernelCompileError(f"the C compiler failed (exit status {done.returncode}) on {source_path}\n"
                                 f"  command: {shlex.join(argv)}\n{stderr}")
    log.debug("compiled %s in %.3f s", source_path, time.perf_counter() - start)
    try:
        digest = _file_sha256(scratch)
        name = f"{key}-{digest[:16]}.so"
        path = os.path.join(directory, name)
        os.replace(scratch, path)
    except OSError:
        _remove(scratch)
        raise
    try:
        library = _dlopen(path, status)  # loaded before the record names it: a file the record replaces may go
    except OSError as error:
        raise KernelCompileError(f"the C compiler built {path} from {source_path}, but it does not load: "
                                 f"{error}") from None
    previous = _recorded_library(directory, key)
    record = {"library": name, "sha256": digest, "compiler": list(status.command), "version": status.version,
              "flags": [*status.compile_flags, *status.link_flags]}
    _write_atomically(os.path.join(directory, key + ".json"), json.dumps(record).encode())
    if previous is not None and previous != name:
        _remove(os.path.join(directory, previous))  # a process that loaded it keeps its pages
    return library


def _recorded_library(directory, key):
    try:
        with open(os.path.join(directory, key + ".json")) as file:
            name = json.load(file)["library"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) and _LIBRARY_NAME.fullmatch(name) else None


class _file_lock:
    """An exclusive flock on `path` (created if need be) while held; nothing where fcntl is absent."""

    def __init__(self, path):
        self.path, self.fd = path, None

    def __enter__(self):
        if fcntl is not None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _write_atomically(path, data):
    """`data` written to a temporary file of `path`'s directory, then moved onto `path`."""
    fd, scratch = tempfile.mkstemp(dir=os.path.dirname(path), prefix="tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(scratch, path)
    except BaseException:
        _remove(scratch)
        raise


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _file_sha256(path):
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


_machine = None


def machine_identity():
    """The CPU as -march=native sees it: platform.machine(), and the model and
    feature flags of /proc/cpuinfo (Linux) or platform.processor() elsewhere."""
    global _machine
    if _machine is None:
        fields = {}
        try:
            with open("/proc/cpuinfo") as file:
                for line in file:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name in ("model name", "flags", "features", "cpu implementer", "cpu part", "vendor_id",
                                "cpu family", "model", "isa") and name not in fields:
                        fields[name] = " ".join(value.split())
        except OSError:
            pass
        _machine = {"machine": platform.machine(), "processor": platform.processor(), "system": sys.platform,
                    "cpu": fields}
    return _machine


# -------------------- settings --------------------

_FROM_ENVIRONMENT = "environment"
_ENV = "FTRANS_CPU_KERNELS"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_AUTO = ("", "auto")


def cpu_kernels_setting():
    """ft.config's "cpu_kernels": None (auto), True (required) or False (off); until
    ft.config.update sets it, the environment variable FTRANS_CPU_KERNELS decides
    (1/true/yes/on, 0/false/no/off, auto or unset)."""
    value = _config.cpu_kernels
    if value != _FROM_ENVIRONMENT:
        return value
    text = os.environ.get(_ENV, "").strip().lower()
    if text in _AUTO:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{_ENV} must be 1 (C kernels required), 0 (off) or auto (the default: used when a C "
                     f"compiler works), not {os.environ[_ENV]!r}")


_noted = False


def kernels_enabled() -> bool:
    """Whether jit should compile C kernels on the CPU. Auto (None, the default):
    when compiler_status() is available, else no (one debug note); False: never;
    True: yes, and a KernelCompileError naming what is missing when no compiler works."""
    global _noted
    setting = cpu_kernels_setting()
    if setting is False:
        return False
    status = compiler_status()
    if status.available:
        return True
    if setting is True:
        raise KernelCompileError(f"C kernels were asked for (cpu_kernels=True or {_ENV}=1), but "
                                 f"{status.reason}")
    if not _noted:
        _noted = True
        log.debug("no C kernels: %s; jit runs NumPy code", status.reason)
    return False


# OpenMP (GCC's libgomp) does not survive fork: a child forked after its parent ran a parallel
# region hangs at its own first one with more than one thread (its parent's pool threads are gone).
# A parent that was told to use several threads may have run one, so its forked children use one,
# as PyTorch's do.
_gave_out_threads = False
_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = _forked_child or _gave_out_threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel_threads() -> int:
    """The threads an OpenMP kernel's parallel loops use: jit's thread setting
    (FTRANS_JIT_THREADS, by default the CPUs this process may use, at most 8); 1
    when the compiler has no OpenMP, or in a process forked from one whose
    kernels may have run threads. Read it at each call (it costs a fraction of
    a microsecond), not once when lowering: a function jitted before a fork is
    called after it, and a forked child given several threads hangs."""
    global _gave_out_threads
    if _forked_child:
        return 1
    status = _status if _status is not None else compiler_status()
    if not status.openmp:
        return 1
    threads = _runtime.THREADS or _runtime.thread_count()
    if threads > 1:
        _gave_out_threads = True
    return threads
