"""How many threads jit's chunked runs use: FTRANS_JIT_THREADS, capped at the
CPUs the process may run on, read (and rejected when bad) at first use."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import ftrans as ft
import ftrans.numpy as fnp
from interpreters import lowering_numpy_runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# 8 MB of float64: a chunked run large enough for threads
THREADED_CALL = """
import threading
import numpy as np
import ftrans as ft
import ftrans.numpy as fnp
from interpreters import lowering_numpy_runtime
x = np.linspace(-1.0, 1.0, 10 ** 6)
np.testing.assert_allclose(ft.jit(lambda x: fnp.tanh(x * 2.0) + x)(x), np.tanh(x * 2.0) + x)
print(lowering_numpy_runtime.THREADS, threading.active_count())
"""


def _run(program, setting):
    return subprocess.run([sys.executable, "-c", program], env={**os.environ, "FTRANS_JIT_THREADS": setting},
                          cwd=ROOT, capture_output=True, text=True)


def _cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("setting, cpus, expected", [
    ("99999", 2, 2), ("3", 2, 2), ("1", 16, 1), ("6", 16, 6), ("", 2, 2), ("", 64, lowering_numpy_runtime.MAX_THREADS),
    (" 4 ", 8, 4)])
def test_thread_setting_is_capped_at_the_cpus(setting, cpus, expected, monkeypatch):
    monkeypatch.setenv("FTRANS_JIT_THREADS", setting)
    monkeypatch.setattr(lowering_numpy_runtime, "_available_cpus", lambda: cpus)
    assert lowering_numpy_runtime._thread_setting() == expected


def test_available_cpus_follow_the_affinity_mask(monkeypatch):
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
        assert lowering_numpy_runtime._available_cpus() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one
    assert lowering_numpy_runtime._available_cpus() == 1


def test_a_huge_thread_setting_starts_no_more_threads_than_cpus():
    done = _run(THREADED_CALL, "99999")
    assert done.returncode == 0, done.stderr
    threads, active = map(int, done.stdout.split())
    assert threads == min(_cpus(), 99999)
    assert active <= threads  # the main thread and at most threads - 1 workers


@pytest.mark.parametrize("bad", ["0", "-3", "two", "1.5", "2 threads"])
def test_a_bad_thread_setting_is_an_error_at_first_use_not_at_import(bad, monkeypatch):
    done = _run("import ftrans, ftrans.numpy, numpy as np\n"
                "print(ftrans.jit(lambda x: ftrans.numpy.sin(x))(np.ones(3)))", bad)
    assert done.returncode == 0, done.stderr  # small runs never need threads: the setting is not read
    monkeypatch.setenv("FTRANS_JIT_THREADS", bad)
    monkeypatch.setattr(lowering_numpy_runtime, "THREADS", None)  # as in a process that has not used threads yet
    x = np.linspace(-1.0, 1.0, 10 ** 6)
    with pytest.raises(ValueError, match=f"FTRANS_JIT_THREADS must be a positive integer.*{bad!r}"):
        ft.jit(lambda x: fnp.tanh(x * 2.0) + x)(x)
    monkeypatch.setenv("FTRANS_JIT_THREADS", "2")  # fixed: the next call reads it again
    np.testing.assert_allclose(ft.jit(lambda x: fnp.tanh(x * 2.0) + x)(x), np.tanh(x * 2.0) + x)
    assert lowering_numpy_runtime.THREADS == min(2, _cpus())
