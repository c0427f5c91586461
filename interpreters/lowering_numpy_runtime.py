"""What the functions `lowering_numpy` generates call at run time: pools of
buffers and the threads of chunked runs (see that module's docstring).

- ScratchPool: sets of scratch buffers, each used by one call at a time.
- RecycledResult: the arrays of one large result, reused once nothing refers
  to them any more.
- ChunkedRun: runs a chunked run's chunk function over all its chunks, in one
  call or in tasks shared with a pool of worker threads.
"""
from __future__ import annotations

import os
import queue
import sys
import threading

import numpy

from ir.floating_point import ignore_in_this_thread

# A chunked run that large is shared between threads: handing a task to another
# thread costs microseconds, a chunk of gelu about 0.1 ms.
THREAD_MIN_BYTES = 4 * 1024 * 1024
# Chunks a thread claims at a time: few claims, yet enough tasks to even out
# threads that a busy machine slows down.
CHUNKS_PER_TASK = 4
# Threads per run by default at most: more rarely pay on elementwise runs, which
# memory bandwidth bounds, and would crowd a shared machine.
MAX_THREADS = 8


class ScratchPool:
    """Sets of scratch buffers, each used by one call (or one thread of a
    chunked run) at a time.

    A call takes a set, or allocates a new one when every set is in use (by
    other threads, or by a re-entrant call), and gives it back when done: no
    two calls in flight ever share a buffer, and there are as many sets as
    calls ever ran at once. (Per call rather than per thread: the same safety
    as thread-local buffers, plus reentrancy.) A call that raises does not
    give its set back; the next call allocates another."""

    def __init__(self, specs):
        self.specs = specs
        self._free = []

    def take(self):
        try:
            return self._free.pop()  # atomic: two threads never get one set
        except IndexError:
            return [numpy.empty(shape, dtype) for shape, dtype in self.specs]

    def give(self, buffers):
        self._free.append(buffers)


class RecycledResult:
    """Arrays for one large result of a lowered function, reused once nothing
    refers to them any more.

    `take` returns one of the KEPT arrays this result was last handed out in
    if no object outside this pool refers to it (a view, a memoryview, a
    container or a caller's variable all count; a weak reference does not,
    since this pool keeps the array alive), so an array is reused only after
    its last user dropped it: the caller sees a fresh array, and the
    call skips mapping and zeroing new pages. When every kept array is still
    in use, `take` allocates another. The check and the claim are one step
    under a lock, so two calls never get one array."""

    KEPT = 2  # enough for y = f(y) and the like, which alternate two arrays

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype
        self._arrays = []
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            index = _unreferenced_index(self._arrays)
            if index is not None:
                return self._arrays[index]
            array = numpy.empty(self.shape, self.dtype)
            if len(self._arrays) < self.KEPT:
                self._arrays.append(array)
            return array


def _unreferenced_index(arrays):
    """The index of an array that only the list `arrays` refers to, or None."""
    for index in range(len(arrays)):
        if sys.getrefcount(arrays[index]) == _UNREFERENCED:
            return index
    return None


def _count_unreferenced():
    """What `_unreferenced_index` counts for an array that only a list holds."""
    arrays = [numpy.empty(0)]
    return sys.getrefcount(arrays[0])  # the list's reference and the argument's


_UNREFERENCED = _count_unreferenced()


def _available_cpus():
    """The CPUs this process may run on (its affinity mask, where the OS has one)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cpus or 1)


def _thread_setting():
    """Threads per chunked run: FTRANS_JIT_THREADS, or MAX_THREADS; at most the
    CPUs this process may run on (more threads than CPUs only take turns)."""
    setting = os.environ.get("FTRANS_JIT_THREADS", "").strip()
    if setting:
        if not setting.isdigit() or int(setting) < 1:
            raise ValueError(f"FTRANS_JIT_THREADS must be a positive integer (the threads a jitted "
                             f"call's chunked runs may use; 1 turns them off), not {setting!r}")
        wanted = int(setting)
    else:
        wanted = MAX_THREADS
    return min(wanted, _available_cpus())


# Threads per chunked run, read from the environment at first use (so that a bad
# FTRANS_JIT_THREADS is an error there, not at `import ftrans`); set it to override.
THREADS = None


def thread_count():
    global THREADS
    if THREADS is None:
        THREADS = _thread_setting()
    return THREADS


class ChunkedRun:
    """Runs the chunk function of one chunked run (see the module docstring)
    on all its chunks: in one call, or in tasks shared between threads.

    The function takes the starts of some chunks, then the chunk-sized
    temporaries (`temporaries`: their (shape, dtype)); each thread running it
    passes a set of its own."""

    def __init__(self, size, chunk, temporaries, nbytes):
        # the last chunk moves back to end at the end
        self.starts = (*range(0, size - chunk, chunk), size - chunk)
        self.tasks = _tasks(self.starts, CHUNKS_PER_TASK)
        self.temporaries = ScratchPool(temporaries)
        self.nbytes = nbytes

    def __call__(self, chunks):
        helpers = min(thread_count(), len(self.tasks)) - 1 if self.nbytes >= THREAD_MIN_BYTES else 0
        if helpers > 0:
            _POOL.run(_Job(chunks, self.temporaries, self.tasks), helpers)
            return
        temporaries = self.temporaries.take()
        chunks(self.starts, *temporaries)
        self.temporaries.give(temporaries)


def _tasks(starts, per_task):
    """`starts` in groups of `per_task`, the last one (which may overlap the
    one before) never alone: threads write disjoint slices."""
    tasks = [starts[i:i + per_task] for i in range(0, len(starts), per_task)]
    if len(tasks) > 1 and len(tasks[-1]) == 1:
        tasks[-2:] = [tasks[-2] + tasks[-1]]
    return tasks


class _Job:
    """One call of a chunked run on several threads: its tasks, claimed one at
    a time by whichever thread asks first. Each thread runs its tasks in
    temporaries of its own. An error stops further claims; the caller raises
    it once no task is running."""

    def __init__(self, chunks, temporaries, tasks):
        self.chunks, self.temporaries = chunks, temporaries
        self._tasks = iter(tasks)
        self._running = 0
        self._error = None
        self._changed = threading.Condition(threading.Lock())

    def work(self):
        """Run tasks until none is left to claim. Never raises: an error is kept for the caller."""
        temporaries = None
        while (task := self._claim()) is not None:
            error = None
            try:
                if temporaries is None:
                    temporaries = self.temporaries.take()
                self.chunks(task, *temporaries)
            except BaseException as caught:  # whatever it is, the caller raises it
                error = caught
            self._finish(error)
        if temporaries is not None:
            self.temporaries.give(temporaries)

    def result(self):
        """Wait until no task is running (after the caller's own `work`, none is
        left to claim), then raise the first error any task raised."""
        with self._changed:
            self._changed.wait_for(lambda: not self._running)
        self.chunks = None  # a worker that comes later claims nothing: free the arrays the function holds
        if self._error is not None:
            raise self._error

    def _claim(self):
        with self._changed:
            task = None if self._error is not None else next(self._tasks, None)
            self._running += task is not None
            return task

    def _finish(self, error):
        with self._changed:
            self._running -= 1
            if self._error is None:
                self._error = error
            if not self._running:
                self._changed.notify_all()


class _WorkerPool:
    """Daemon threads that help run jobs, shared by every chunked run and
    started as runs first need them.

    The caller of `run` works on its job too, and only waits for tasks already
    running: a job completes even if no worker ever gets to it (all busy with
    other callers' jobs, or the caller itself a worker of some other pool), so
    no call can deadlock. A worker that gets to a job late finds nothing left."""

    def __init__(self):
        self.reset()

    def reset(self):
        """No workers: a forked child has none of its parent's threads."""
        self._jobs = queue.SimpleQueue()
        self._workers = 0
        self._lock = threading.Lock()

    def run(self, job, helpers):
        self._start(helpers)
        for _ in range(helpers):
            self._jobs.put(job)
        job.work()
        job.result()

    def _start(self, count):
        with self._lock:
            while self._workers < count:
                threading.Thread(target=self._serve, name=f"ftrans-jit-{self._workers}", daemon=True).start()
                self._workers += 1

    def _serve(self):
        ignore_in_this_thread()  # NumPy's error state is per thread: the caller's "ignore" is not ours
        while True:
            self._jobs.get().work()


_POOL = _WorkerPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.reset)
