"""Lower a jaxpr to one generated Python function of NumPy calls.

The function is straight-line source, one line per equation, named after the
IR's variables (so `ft.jit(f).lower(x).as_text()` reads like the printed
jaxpr): no interpreter loop runs when it is called. Elementwise primitives
whose implementation is a NumPy ufunc call it directly, products (dot_general)
are one `numpy.matmul` or broadcasting `numpy.multiply` on views of their
operands (interpreters/lowering_numpy_dot.py), and the others call their
declared implementation. Literals,
constants and params live in the function's namespace.

Arrays of at least BUFFER_MIN_ELEMENTS elements get two optimizations (smaller
ones stay plain calls: allocating them costs less than any bookkeeping):

- Buffer reuse. A liveness analysis gives each large result of a ufunc, a
  matrix product or a C kernel a scratch buffer, written with `out=`. A buffer is free
  again once no live variable may view it, so a chain of n equations needs a
  few buffers, not n. (Results of other implementations are theirs.)
- Chunking. A run of consecutive ufunc equations over one shape of at least
  CHUNK_MIN_BYTES (their other operands rank-0) is evaluated CHUNK_BYTES at a
  time along the flattened arrays, so its intermediates stay in cache: they
  need chunk-sized temporaries only, and what is used after the run is
  written chunk by chunk. Every chunk has the same size: a last, partial one
  moves back to end at the end, overlapping the one before, and computes some
  values again (the same values: a run never writes what it reads). The chunk loop is a nested
  function of the chunk starts `starts_` and of its temporaries `tmp0`, ...;
  in it, `x_` is the current chunk of a full-size array `x`:

      f = numpy.empty((1000000,), numpy.float64)
      a_flat = a.reshape(-1)
      f_flat = f.reshape(-1)

      def run7_chunks(starts_, tmp0, tmp1):
          for lo_ in starts_:
              hi_ = lo_ + 65536
              a_ = a_flat[lo_:hi_]
              b = numpy.multiply(a_, a_, out=tmp0)
              ...
              f_ = numpy.multiply(d, e, out=f_flat[lo_:hi_])
      run7(run7_chunks)  # on several threads when large

- Threads. `run7` (a ChunkedRun) calls that function once on every chunk, or,
  for a run of at least THREAD_MIN_BYTES, splits the chunks into tasks that
  the calling thread and up to THREADS - 1 workers of a shared pool claim one
  at a time: NumPy's ufuncs release the GIL. Each thread has temporaries of
  its own and writes disjoint slices of the full-size arrays (a task holds
  both chunks that overlap), so the results are the unthreaded ones, bit for
  bit. The caller runs tasks too, so a run never waits for a free worker
  (whichever thread calls, however many calls share the pool), and it returns
  once every task is done, raising the first error any task raised. THREADS
  is the environment variable FTRANS_JIT_THREADS (1: no threads, for
  reproducible timings), else MAX_THREADS, and at most the number of CPUs
  this process may run on, read at the first run that could use threads.
  The pools and threads that generated code uses at run time are
  `interpreters/lowering_numpy_runtime.py`.

- Recycled results. A result of at least RECYCLE_MIN_BYTES is taken from a
  RecycledResult: the array an earlier call returned, once nothing refers to
  it any more, else a new one. New arrays that large cost page faults and
  zeroing (glibc maps them fresh from the kernel), as much as computing a
  cheap elementwise function does.

Control flow: a `cond` is a Python `if`/`elif` choosing among its branches,
a `scan` a Python `for` loop passing the carry along and writing each y into
its stacked output, allocated before the loop. Each branch and loop body is a
generated function of its own (`branch7`, `body4`: `as_text()` shows them
after the main one), lowered once with the function that holds it: the loop
never traces or lowers again, so staging does not grow with the trip count,
and a body that reuses scratch buffers takes the same set on every iteration.
Their results go back as they are (copied only where they may view a scratch
buffer): a carry may be an input passed through, so the outputs of a loop or
a cond keep their operands' buffers busy (`PASSTHROUGH_OUTPUTS`).

Guarantees: nothing is written into an argument or a constant (only into
scratch buffers and arrays the call allocated or recycled). Every returned
array is fresh, sharing memory with nothing that is alive: an output that is
an input, a constant, a view, or returned twice is copied, and 0-d results
are 0-d arrays, never NumPy scalars. A set of scratch
buffers belongs to one call at a time (see ScratchPool), so a jitted function
is reentrant and may run in several threads at once.

`lower(closed, copy_outputs=False)` generates the plainest code instead: one
call per equation, no buffers, no chunks, no copies. Its function may return
its arguments, constants and NumPy scalars as they are: for callers that own
the results (tiny per-primitive functions, where copies are pure overhead).
"""
from __future__ import annotations

import itertools
import keyword
import math
import string
import weakref

import numpy

from interpreters import lowering_c, lowering_numpy_dot
from interpreters.lowering_numpy_runtime import ChunkedRun, RecycledResult, ScratchPool
from ir.core import Array, ClosedJaxpr, Literal, Var
from ir.primitives import call

# Smaller results are plain calls: a buffer would save less than its bookkeeping costs.
BUFFER_MIN_ELEMENTS = 4096
# Chunk size of a chunked run, per chunk-sized temporary: two of them fit in a
# 1 MiB L2 cache. Each ufunc call on a chunk costs about a microsecond, under
# the GIL, which the threads of a run take turns at: on gelu at 10^7 (two
# threads), 512 KiB ran 5-15% faster than 256 KiB, and 64 KiB 1.7x slower.
CHUNK_BYTES = 512 * 1024
# Runs over smaller arrays stay plain calls: their intermediates stay in the
# caches anyway, and chunking only adds calls (on 1.5-3 MB arrays, chunked runs
# of gelu and of an SGD update were 3-60% slower than plain calls).
CHUNK_MIN_BYTES = 4 * 1024 * 1024
# Results that large come from a RecycledResult: a fresh allocation that large is
# mapped anew from the kernel (glibc's malloc maps anything over 32 MiB), and its
# page faults cost more than computing a cheap elementwise result.
RECYCLE_MIN_BYTES = 16 * 1024 * 1024

# primitives whose implementation may return a view of (or the very) operand
VIEW_PRIMITIVES = {"reshape", "transpose", "squeeze", "slice", "rev", "stop_gradient"}
# higher-order primitives whose outputs may be operands as they are (a branch or a loop
# body may return an input untouched), and which of their outputs may
PASSTHROUGH_OUTPUTS = {"cond": lambda eqn: eqn.outvars,
                       "scan": lambda eqn: eqn.outvars[:eqn.params["num_carry"]],
                       # a loop of no iterations returns its initial carries (cotangents) as they are
                       "while": lambda eqn: eqn.outvars, "while_reverse": lambda eqn: eqn.outvars,
                       **{name: (lambda eqn: eqn.outvars)
                          for name in ("checkpoint", "custom_jvp_call", "custom_vjp_call")}}
# views whose elements are not one C-ordered block (flattening them copies), and
# views that keep their operand's layout
_STRIDED_VIEWS = {"transpose", "slice", "rev"}
_LAYOUT_KEEPING_VIEWS = {"reshape", "squeeze", "stop_gradient"}


class LoweredNumpy:
    """A jaxpr lowered to NumPy: `source` (the generated text), `function`, and
    `scratch`, the (shape, dtype) of each scratch buffer a call uses (besides
    the chunk-sized temporaries of its chunked runs)."""

    def __init__(self, source, function, scratch=()):
        self.source, self.function, self.scratch = source, function, tuple(scratch)

    def __call__(self, *args):
        return self.function(*args)


def _names():
    """a, b, ... as the printer names them (`ir.printer.var_name` of 0, 1, ...),
    skipping Python keywords and `numpy`. Every other name in the generated
    code has a digit, an underscore or a capital (`Array`)."""
    letters = string.ascii_lowercase
    for name in _in_printer_order(letters):
        if not keyword.iskeyword(name) and name != "numpy":
            yield name


def _in_printer_order(letters):
    yield from letters
    for length in itertools.count(1):  # then ba..zz, baa..zzz, ...: no leading 'a'
        for first in letters[1:]:
            for rest in itertools.product(letters, repeat=length):
                yield first + "".join(rest)


def _is_ufunc_call(eqn):
    """An equation computed by one NumPy ufunc call, which can write into `out=`."""
    impl = eqn.primitive.impl
    return isinstance(impl, numpy.ufunc) and impl.nout == 1 and not eqn.params


class _Source:
    """Names and the namespace of the generated function: IR variables by
    their printed names (given in the printer's order up front, so code
    emitted out of order keeps them), constants as `const_<name>`, literals
    (one name per distinct value), implementations and params."""

    def __init__(self, closed: ClosedJaxpr, copy_outputs=True):
        jaxpr = closed.jaxpr
        self.copy_outputs = copy_outputs
        self.nested_sources = []  # the text of the functions of sub-jaxprs
        self.namespace = {"numpy": numpy}
        self.names = {}
        self._fresh = _names()
        self._literals = {}  # (dtype, bytes) -> name
        for var, value in zip(jaxpr.constvars, closed.consts, strict=True):
            self.names[var] = name = f"const_{next(self._fresh)}"
            self.namespace[name] = value
        self.params = [self._define(v) for v in jaxpr.invars]
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                self._define(var)

    def _define(self, var):
        self.names[var] = name = next(self._fresh)
        return name

    def atom(self, x):
        if type(x) is Literal:
            key = (x.value.dtype, x.value.tobytes())
            name = self._literals.get(key)
            if name is None:
                name = self._literals[key] = self.add_global("lit", x.value)
            return name
        return self.names[x]

    def add_global(self, prefix, value):
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def call(self, eqn, args, out=None):
        """The expression computing `eqn` from the operand texts `args` (into
        `out`, for an equation that can write there)."""
        prim = eqn.primitive
        out_arg = [] if out is None else [f"out={out}"]
        if _is_ufunc_call(eqn):
            return f"numpy.{prim.impl.__name__}({', '.join([*args, *out_arg])})"
        product = lowering_numpy_dot.product(eqn)
        if product is not None:
            return product.text(*args, out)
        impl_name = f"impl_{prim.name}"
        self.namespace[impl_name] = prim.impl
        if eqn.params:
            args = [*args, f"**{self.add_global('params', eqn.params)}"]
        args = [*args, *out_arg]  # only an implementation that takes `out=` is given one
        return f"{impl_name}({', '.join(args)})"

    def targets(self, eqn):
        names = ", ".join(self.names[v] for v in eqn.outvars)
        return names + "," if eqn.primitive.multiple_results and len(eqn.outvars) == 1 else names

    def lines(self, eqn, args, out=None):
        """The lines computing `eqn` (one, or a loop or an `if` for control flow)."""
        control_flow = CONTROL_FLOW.get(eqn.primitive.name)
        if control_flow is not None:
            return control_flow(self, eqn, args)
        if not eqn.outvars:
            return [f"    {self.call(eqn, args, out)}"]
        return [f"    {self.targets(eqn)} = {self.call(eqn, args, out)}"]

    def nested(self, prefix, closed):
        """A sub-jaxpr (a branch, a loop body) lowered once, as a generated
        function of its own, named in this one's namespace. Within the plainest
        code (copy_outputs=False) it is plain too: no scratch buffers, which a
        long-lived cache of such functions (the eager tape's rules) would keep."""
        name = f"{prefix}{len(self.namespace)}"
        lowered = lower(closed, name, copy_outputs=self.copy_outputs, body=True)
        self.namespace[name] = lowered.function
        self.nested_sources.append(lowered.source)
        return name


def _unpacked(names):
    """Assignment targets for a tuple of `names`."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _cond_lines(source, eqn, args):
    """A Python `if` choosing the branch: each a generated function of its own,
    called once when the index picks it (clamped into range, as the primitive is)."""
    index, operands = args[0], ", ".join(args[1:])
    branches = [source.nested("branch", b) for b in eqn.params["branches"]]
    call = lambda branch: f"{branch}({operands})"  # noqa: E731
    target = f"{source.targets(eqn)} = " if eqn.outvars else ""
    if len(branches) == 1:
        return [f"    {target}{call(branches[0])}"]
    lines = [f"    if {index} <= 0:", f"        {target}{call(branches[0])}"]
    for k, branch in enumerate(branches[1:-1], start=1):
        lines += [f"    elif {index} == {k}:", f"        {target}{call(branch)}"]
    return lines + ["    else:", f"        {target}{call(branches[-1])}"]


def _scan_lines(source, eqn, args):
    """A Python loop around the body, a generated function of its own (compiled
    once, its scratch buffers reused by every iteration), the carry passed
    along, each y written into its preallocated stacked output."""
    params = eqn.params
    num_consts, num_carry, length = params["num_consts"], params["num_carry"], params["length"]
    body = source.nested("body", params["jaxpr"])
    key = len(source.namespace)  # one suffix for this loop's names
    consts, init, xs = args[:num_consts], args[num_consts:num_consts + num_carry], args[num_consts + num_carry:]
    y_avals = params["jaxpr"].out_avals[num_carry:]
    carry = [f"carry{key}_{i}" for i in range(num_carry)]
    ys = [f"ys{key}_{j}" for j in range(len(y_avals))]
    y = [f"y{key}_{j}" for j in range(len(y_avals))]
    step = f"i{key}_"
    steps = f"range({length - 1}, -1, -1)" if params["reverse"] else f"range({length})"
    lines = [f"    # scan: {length} iterations of {body}"]
    if carry:
        lines.append(f"    {_unpacked(carry)} = {_unpacked(init)}")
    for name, aval in zip(ys, y_avals, strict=True):
        lines.append(f"    {name} = numpy.empty({(length, *aval.shape)}, {source.add_global('dtype', aval.dtype)})")
    body_args = ", ".join([*consts, *carry, *(f"{x}[{step}]" for x in xs)])
    results = [*carry, *y]
    lines += [f"    for {step} in {steps}:",
              f"        {_unpacked(results) + ' = ' if results else ''}{body}({body_args})"]
    lines += [f"        {name}[{step}] = {value}" for name, value in zip(ys, y, strict=True)]
    if eqn.outvars:
        lines.append(f"    {source.targets(eqn)} = {_unpacked([*carry, *ys])}")
    return lines


def _call_lines(jaxpr_of, operands_of):
    """The lines of a call of a sub-jaxpr (a checkpoint's body, a custom function): a
    generated function of its own, in the plainest code. Plain, so that it keeps no
    scratch buffers: a backward pass calls one checkpoint per layer, and buffers kept
    by each would add up to what checkpointing is meant to save."""
    def lines(source, eqn, args):
        name = f"call{len(source.namespace)}"
        lowered = lower(jaxpr_of(eqn), name, copy_outputs=False, body=True)
        source.namespace[name] = lowered.function
        source.nested_sources.append(lowered.source)
        target = f"{source.targets(eqn)} = " if eqn.outvars else ""
        return [f"    {target}{name}({', '.join(operands_of(eqn, args))})"]
    return lines


def _custom_operands(eqn, args):
    """A custom function's operands without its rules' constants: (consts, args)."""
    p = eqn.params
    skip = p.get("jvp_num_consts", 0) + p.get("fwd_num_consts", 0) + p.get("bwd_num_consts", 0)
    return [*args[:p["num_consts"]], *args[p["num_consts"] + skip:]]


# primitive name -> the lines lowering one of its equations: (source, eqn, operand texts) -> lines
CONTROL_FLOW = {"cond": _cond_lines, "scan": _scan_lines,
                "checkpoint": _call_lines(lambda eqn: eqn.params["jaxpr"], lambda eqn, args: args),
                "custom_jvp_call": _call_lines(lambda eqn: eqn.params["call_jaxpr"], _custom_operands),
                "custom_vjp_call": _call_lines(lambda eqn: eqn.params["call_jaxpr"], _custom_operands)}


def lower(closed: ClosedJaxpr, name="jitted", copy_outputs=True, body=False, c_kernels=True) -> LoweredNumpy:
    """`closed` lowered to one generated function. `body`: it is a loop body or
    a branch, called by generated code only: the plan may reuse buffers, and its
    results are handed back as they are (inputs, NumPy scalars), copied only
    where they may view a scratch buffer, which the next call writes into.
    `c_kernels`: where kernels are enabled (interpreters/c_compiler.py), elementwise
    groups and reductions run as fused C kernels (interpreters/lowering_c.py)."""
    if copy_outputs and c_kernels and _c_kernels_enabled():  # fused C kernels (interpreters/lowering_c.py)
        lowered = lowering_c.lower(closed, name, body=body)
        if lowered is not None:  # None: no group large enough for a kernel
            return lowered
    source, jaxpr = _Source(closed, copy_outputs), closed.jaxpr
    scratch, plan = [], None
    # the plan is skipped where it could change nothing: in programs of small arrays only
    if copy_outputs and any(var.aval.size >= BUFFER_MIN_ELEMENTS for eqn in jaxpr.eqns for var in eqn.outvars):
        plan = _BufferedBody(source, jaxpr)
        lines, scratch = plan.lines, plan.specs
    else:
        lines = [line for eqn in jaxpr.eqns for line in source.lines(eqn, [source.atom(x) for x in eqn.invars])]
    if body:
        returned = [f"numpy.array({source.atom(x)})" if plan is not None and plan.views.get(x) else source.atom(x)
                    for x in jaxpr.outvars]
    elif copy_outputs:
        returned = _fresh_results(source, jaxpr, plan.fresh_transposes if plan is not None else ())
    else:
        returned = [source.atom(x) for x in jaxpr.outvars]
    result = f"({', '.join(returned)}{',' if len(returned) == 1 else ''})"
    if scratch:
        source.namespace["scratch_pool"] = ScratchPool(scratch)
        buffers = ", ".join(f"buf{i}" for i in range(len(scratch)))
        lines[:0] = ["    scratch = scratch_pool.take()  # buffers no other call is using",
                     f"    {buffers}{',' if len(scratch) == 1 else ''} = scratch"]
        # the results are complete (copies of views of scratch included) before another call may take it
        lines += [f"    result = {result}", "    scratch_pool.give(scratch)", "    return result"]
    else:
        lines.append(f"    return {result}")
    if name in source.namespace:  # a function named like a global of its own code must not replace it
        name = f"{name}_jitted"
    text = f"def {name}({', '.join(source.params)}):\n" + "\n".join(lines) + "\n"
    exec(compile(text, f"<ftrans jit of {name}>", "exec"), source.namespace)  # our own generated source
    # the functions of branches and loop bodies follow, as text (each is compiled on its own)
    shown = "".join(f"\n{nested}" for nested in source.nested_sources)
    # taken out of its own namespace (it never calls itself by name): no cycle of function and
    # namespace, so its buffers go as soon as the last reference to it does, not at a GC pass
    return LoweredNumpy(text + shown, source.namespace.pop(name), scratch)


def _c_kernels_enabled():
    from interpreters import c_compiler
    return c_compiler.kernels_enabled()


def fresh_outputs(eqn):
    """The outputs of `eqn` that are arrays it allocated (not views, not operands)."""
    name = eqn.primitive.name
    if name in VIEW_PRIMITIVES:
        return []
    passthrough = PASSTHROUGH_OUTPUTS.get(name)
    if passthrough is None:
        return eqn.outvars
    aliased = set(passthrough(eqn))
    return [v for v in eqn.outvars if v not in aliased]


def _fresh_results(source, jaxpr, fresh_views=()):
    """The texts of the results: each a fresh array, an Array (ir.core: what
    users get), and 0-d arrays for 0-d results. Results of non-view equations
    are arrays the call allocated (never scratch: no result gets a buffer), and
    so are `fresh_views` (views of the whole of such an array: the transposes a
    product was written into); anything else is copied."""
    source.namespace["Array"] = Array
    fresh = {v for eqn in jaxpr.eqns for v in fresh_outputs(eqn)} | set(fresh_views)
    returned, seen = [], set()
    for x in jaxpr.outvars:
        text = source.atom(x)
        if type(x) is Literal or x not in fresh or x in seen:
            text = f"numpy.array({text})"  # a copy: never hand out an input, a constant, a view or one array twice
        elif not x.aval.shape:
            text = f"numpy.asarray({text})"  # NumPy scalar -> 0-d array
        if type(x) is not Literal:
            seen.add(x)
        # a view, not an array allocated as an Array: ufuncs writing into a subclass cost more
        returned.append(f"{text}.view(Array)")
    return returned


# -------------------- buffers and chunks --------------------

def _widest_itemsize(eqns):
    return max(x.aval.dtype.itemsize for eqn in eqns for x in (*eqn.invars, *eqn.outvars))


def _chunk_elements(eqns):
    return CHUNK_BYTES // max(_widest_itemsize(eqns), 1)


def _chunkable_shape(eqn, strided):
    """The shape a chunked run over `eqn` iterates, or None if it cannot join one:
    a ufunc with a large result whose array operands have its shape and flatten
    without a copy."""
    if not _is_ufunc_call(eqn):
        return None
    aval = eqn.outvars[0].aval
    if aval.size < BUFFER_MIN_ELEMENTS:
        return None
    for x in eqn.invars:
        if x.aval.shape and (x.aval.shape != aval.shape or x in strided):
            return None
    return aval.shape


def _worth_chunking(run, size):
    return size >= 2 * _chunk_elements(run) and size * _widest_itemsize(run) >= CHUNK_MIN_BYTES


def _steps(eqns, strided):
    """The equations in order, as steps: a list of one equation, or a chunked
    run of two or more consecutive ones over arrays of at least two chunks.
    `strided`: the variables whose elements may not be one C-ordered block."""
    steps, run, run_shape = [], [], None

    def close_run():
        if len(run) >= 2 and _worth_chunking(run, math.prod(run_shape)):
            steps.append(run)
        else:
            steps.extend([eqn] for eqn in run)

    for eqn in eqns:
        shape = _chunkable_shape(eqn, strided)
        if shape is not None and shape == run_shape:
            run.append(eqn)
            continue
        close_run()
        run, run_shape = ([eqn], shape) if shape is not None else ([], None)
        if shape is None:
            steps.append([eqn])
    close_run()
    return steps


def _last_uses(steps, outvars):
    """Variable -> index of the last step that reads it (or defines it, if none
    reads it); outputs of the jaxpr live past the last step."""
    last = {}
    for index, step in enumerate(steps):
        for eqn in step:
            for var in eqn.outvars:
                last[var] = index
            for x in eqn.invars:
                if type(x) is Var:
                    last[x] = index
    for x in outvars:
        if type(x) is Var:
            last[x] = len(steps)
    return last


class _BufferedBody:
    """The lines of a function that reuses scratch buffers and chunks long
    elementwise runs (see the module docstring), and `specs`, the (shape,
    dtype) of each scratch buffer they use (the chunk-sized temporaries of a
    chunked run are its ChunkedRun's). Two more layouts save copies:

    - `broadcast_in_dim` read only by ufuncs is a read-only view
      (`numpy.broadcast_to`), not a materialized array;
    - a product read only by a transpose (as reverse-mode AD makes weight
      gradients, and vmap of it per-example ones) is written, through the
      inverse permutation, into the transpose's buffer, or into the array the
      function returns: the transpose is then that C-ordered array, which
      what reads it reads contiguously, and a result needs no copy;
    - a product read only (through its transpose of the kind above, and a
      reshape to one dimension) by a one-dimensional `concatenate` (as a fused
      collective ravels a model's gradients into one buffer) is written into
      its slice of the concatenation's array, which is made before it: the
      concatenation then copies only its other operands.

    Buffer bookkeeping, in one pass over the steps: `views` maps a variable to
    the buffers its value may view (its own, or its operand's for a view),
    `holders` counts the live variables viewing each buffer, and a buffer
    whose count drops to 0 goes back to `free`, keyed by (shape, dtype)."""

    def __init__(self, source: _Source, jaxpr):
        self.source = source
        self.lines = []
        self.specs = []
        self.holders = []
        self.free = {}
        self.views = {}
        self.outvars = {x for x in jaxpr.outvars if type(x) is Var}
        self.transposes = {}  # transpose of a product written into its array -> its permutation
        self.fresh_transposes = set()  # those that are results: arrays this call allocated
        self.placed = {}  # product -> (its concatenation, start, stop): written into that slice
        self.concatenations = {}  # concatenation -> its operands written into it by their products
        self.made = set()  # the concatenations whose array the lines have made
        self._plan_layouts(jaxpr.eqns)
        steps = _steps(jaxpr.eqns, self._strided(jaxpr.eqns))
        self.last_use = _last_uses(steps, jaxpr.outvars)
        for index, step in enumerate(steps):
            if len(step) == 1:
                self._equation(step[0], index)
            else:
                self._chunked_run(step, index)

    def _plan_layouts(self, eqns):
        """Find the broadcast views and the transposed products (see above)."""
        readers, producers = {}, {}
        for eqn in eqns:
            for x in eqn.invars:
                if type(x) is Var:
                    readers.setdefault(x, []).append(eqn)
            for var in eqn.outvars:
                producers[var] = eqn
        self.broadcast_views = {
            eqn.outvars[0] for eqn in eqns if eqn.primitive.name == "broadcast_in_dim"
            and eqn.outvars[0] not in self.outvars and all(map(_is_ufunc_call, readers.get(eqn.outvars[0], ())))}
        self.transposed_products = {}  # product -> its transpose, whose array it is written into
        for eqn in eqns:
            if eqn.primitive.name != "transpose":
                continue
            (product,), (var,) = eqn.invars, eqn.outvars
            if type(product) is not Var or readers[product] != [eqn] or product not in producers \
                    or not self._wants_buffer(product):
                continue
            lowered = lowering_numpy_dot.product(producers[product])
            # into the transpose's buffer, or into the fresh array it returns
            if lowered is not None and lowered.writes_into(eqn.params["permutation"]) \
                    and (self._wants_buffer(var) or var in self.outvars):
                self.transposed_products[product] = var
                self.transposes[var] = tuple(eqn.params["permutation"])
        for eqn in eqns:
            if eqn.primitive.name == "concatenate" and eqn.outvars[0].aval.ndim == 1:
                self._plan_concatenation(eqn, readers, producers)

    def _plan_concatenation(self, eqn, readers, producers):
        """The products written straight into their slices of the 1-D concatenation `eqn` (see above)."""
        whole, start, placed = eqn.outvars[0], 0, set()

        def only_read_by(x, reader):
            return type(x) is Var and x not in self.outvars and readers.get(x) == [reader]

        for x in eqn.invars:
            size, product = x.aval.shape[0], None
            if only_read_by(x, eqn) and eqn.invars.count(x) == 1 and x.aval.dtype == whole.aval.dtype:
                maker = producers.get(x)
                if maker is not None and lowering_numpy_dot.product(maker) is not None:
                    product = x  # a 1-D product
                elif maker is not None and maker.primitive.name == "reshape" and only_read_by(maker.invars[0], maker):
                    y = maker.invars[0]
                    before = producers.get(y)
                    if y in self.transposes and only_read_by(before.invars[0], before):
                        product = before.invars[0]  # written in its transpose's layout
                    elif before is not None and lowering_numpy_dot.product(before) is not None:
                        product = y
            if product is not None:
                self.placed[product] = (whole, start, start + size)
                placed.add(x)
            start += size
        if placed:
            self.concatenations[whole] = placed

    def _placed_storage(self, product):
        """The view of its concatenation's slice a placed product is written into (in its transpose's
        layout where it has one); the concatenation's array is made by the first of its products."""
        whole, start, stop = self.placed[product]
        name = self.source.atom(whole)
        if whole not in self.made:
            self.made.add(whole)
            aval = whole.aval
            storage = self._take(aval, whole) if self._wants_buffer(whole) else \
                self._recycled(whole) or f"numpy.empty({aval.shape}, {self.source.add_global('dtype', aval.dtype)})"
            self.lines.append(f"    {name} = {storage}")
        self._hold(product, self.views.get(whole, ()))
        transpose = self.transposed_products.get(product)
        shape = (transpose if transpose is not None else product).aval.shape
        view = f"{name}[{start}:{stop}].reshape({tuple(shape)})"
        return view if transpose is None else lowering_numpy_dot.transposed_out(view, self.transposes[transpose])

    def _concatenation_lines(self, eqn):
        """A planned concatenation: the copies of the operands no product wrote into it."""
        whole, start, lines = eqn.outvars[0], 0, []
        for x in eqn.invars:
            size = x.aval.shape[0]
            if x not in self.concatenations[whole]:
                lines.append(f"    {self.source.atom(whole)}[{start}:{start + size}] = {self.source.atom(x)}")
            start += size
        return lines

    def _strided(self, eqns):
        """The variables whose elements may not be one C-ordered block."""
        strided = set(self.broadcast_views)
        for eqn in eqns:
            name = eqn.primitive.name
            if name in _STRIDED_VIEWS and eqn.invars[0] not in self.transposed_products:
                strided.add(eqn.outvars[0])
            elif name in _LAYOUT_KEEPING_VIEWS and eqn.invars[0] in strided:
                strided.add(eqn.outvars[0])
        return strided

    # -------------------- buffer bookkeeping --------------------

    def _take(self, aval, var):
        """A free buffer of `aval`'s shape and dtype (a new one if none is), held by `var`."""
        key = (aval.shape, aval.dtype)
        free = self.free.get(key)
        if free:
            buffer = free.pop()  # the most recently freed: likely still in cache
        else:
            buffer = len(self.specs)
            self.specs.append(key)
            self.holders.append(0)
        self._hold(var, (buffer,))
        return f"buf{buffer}"

    def _hold(self, var, buffers):
        if buffers:
            self.views[var] = buffers
            for buffer in buffers:
                self.holders[buffer] += 1

    def _release(self, var):
        for buffer in self.views.pop(var, ()):
            self.holders[buffer] -= 1
            if not self.holders[buffer]:
                self.free.setdefault(self.specs[buffer], []).append(buffer)

    def _release_dead(self, atoms, index):
        """Release the variables among `atoms` that no step after `index` reads."""
        for x in atoms:
            if type(x) is Var and self.last_use[x] == index:
                self._release(x)

    def _recycled(self, var):
        """For a large result of the function: the text taking its array from a RecycledResult."""
        if var not in self.outvars or var.aval.size * var.aval.dtype.itemsize < RECYCLE_MIN_BYTES:
            return None
        pool = self.source.add_global("result", RecycledResult(var.aval.shape, var.aval.dtype))
        return f"{pool}.take()"

    def _transpose_storage(self, transpose, product):
        """The array a product is written into for its `transpose`: a buffer (held
        by `product`), or, for a result of the function, a new or recycled array."""
        if self._wants_buffer(transpose):
            return self._take(transpose.aval, product)
        self.fresh_transposes.add(transpose)
        aval = transpose.aval
        return self._recycled(transpose) or f"numpy.empty({aval.shape}, {self.source.add_global('dtype', aval.dtype)})"

    def _wants_buffer(self, var):
        return var.aval.size >= BUFFER_MIN_ELEMENTS and var not in self.outvars

    # -------------------- steps --------------------

    def _equation(self, eqn, index):
        source = self.source
        var = eqn.outvars[0] if eqn.outvars else None  # what may take a buffer has one result
        args = [source.atom(x) for x in eqn.invars]
        if eqn.primitive.name in PASSTHROUGH_OUTPUTS:  # each output may be an operand: it keeps their buffers
            operand_buffers = tuple({b for x in eqn.invars for b in self.views.get(x, ())})
            for v in eqn.outvars:
                self._hold(v, operand_buffers)
            self._release_dead(eqn.invars, index)
            self.lines += source.lines(eqn, args)
            self._release_dead(eqn.outvars, index)
            return
        if eqn.primitive.name in VIEW_PRIMITIVES or var in self.broadcast_views:
            # held before the operand may be released, so its buffers stay busy
            self._hold(var, tuple({b for x in eqn.invars for b in self.views.get(x, ())}))
        out = None
        if getattr(eqn.primitive, "takes_out_buffers", False):  # a C kernel (interpreters/lowering_c.py)
            # its large intermediates get buffers as a ufunc's do, taken before its operands are
            # released: a kernel's pointers are `restrict`, so no output may be an operand's buffer
            buffers = [self._take(v.aval, v) if self._wants_buffer(v) else "None" for v in eqn.outvars]
            if any(b != "None" for b in buffers):
                out = f"({', '.join(buffers)},)"
            self._release_dead(eqn.invars, index)
        elif _is_ufunc_call(eqn):
            self._release_dead(eqn.invars, index)  # first: an elementwise ufunc may write over its operand
            if self._wants_buffer(var):
                out = self._take(var.aval, var)
            else:
                out = self._recycled(var)
        else:
            if lowering_numpy_dot.product(eqn) is not None:
                transpose = self.transposed_products.get(var)
                if var in self.placed:
                    out = self._placed_storage(var)
                elif transpose is not None:
                    out = lowering_numpy_dot.transposed_out(self._transpose_storage(transpose, var),
                                                            self.transposes[transpose])
                elif self._wants_buffer(var):
                    out = self._take(var.aval, var)
                else:
                    out = self._recycled(var)
            self._release_dead(eqn.invars, index)
        if var in self.broadcast_views:
            self.lines.append(f"    {source.targets(eqn)} = {_broadcast_view(source, eqn)}")
        elif var in self.made and eqn.primitive.name == "concatenate":
            self.lines += self._concatenation_lines(eqn)
        else:
            self.lines += source.lines(eqn, args, out)
        self._release_dead(eqn.outvars, index)

    def _chunked_run(self, eqns, index):
        source, lines = self.source, self.lines
        shape = eqns[0].outvars[0].aval.shape
        size, chunk = math.prod(shape), _chunk_elements(eqns)
        defined = [eqn.outvars[0] for eqn in eqns]
        in_run = set(defined)
        # results read after the run (or returned) are full-size; the others live in one chunk
        full = [v for v in defined if self.last_use[v] > index]
        inputs = list(dict.fromkeys(x for eqn in eqns for x in eqn.invars
                                    if type(x) is Var and x.aval.shape and x not in in_run))
        for var in full:  # taken while the run's operands still hold theirs: they are read to the last chunk
            storage = self._take(var.aval, var) if self._wants_buffer(var) else \
                self._recycled(var) or f"numpy.empty({shape}, numpy.{var.aval.dtype.type.__name__})"
            lines.append(f"    {source.atom(var)} = {storage}")
        for var in inputs + full:
            lines.append(f"    {source.atom(var)}_flat = {source.atom(var)}.reshape(-1)")
        temporaries = _ChunkTemporaries(chunk)
        body = _chunk_body(source, eqns, set(inputs + full), temporaries)
        nbytes = size * _widest_itemsize(eqns)
        run = source.add_global("run", ChunkedRun(size, chunk, temporaries.specs, nbytes))
        lines += ["", f"    def {run}_chunks({', '.join(['starts_', *temporaries.names])}):",
                  "        for lo_ in starts_:",
                  f"            hi_ = lo_ + {chunk}"]
        lines += [f"            {source.atom(var)}_ = {source.atom(var)}_flat[lo_:hi_]" for var in inputs]
        lines += body
        lines.append(f"    {run}({run}_chunks)  # on several threads when large")
        self._release_dead([x for eqn in eqns for x in eqn.invars], index)


def _chunk_body(source, eqns, chunked, temporaries):
    """The lines computing a chunked run's equations on one chunk: into chunks
    (`x_`) of the full-size arrays in `chunked`, or into temporaries."""
    # a temporary is free after its last use in the run, for that very result too
    last_in_run = {eqn.outvars[0]: i for i, eqn in enumerate(eqns)}
    last_in_run.update((x, i) for i, eqn in enumerate(eqns) for x in eqn.invars if type(x) is Var)
    lines = []
    for i, eqn in enumerate(eqns):
        args = [source.atom(x) + ("_" if x in chunked else "") for x in eqn.invars]
        for x in eqn.invars:
            if type(x) is Var and last_in_run[x] == i:
                temporaries.release(x)
        var = eqn.outvars[0]
        if var in chunked:
            target, out = f"{source.atom(var)}_", f"{source.atom(var)}_flat[lo_:hi_]"
        else:
            target, out = source.atom(var), temporaries.take(var)
        lines.append(f"            {target} = {source.call(eqn, args, out)}")
        if last_in_run[var] == i:
            temporaries.release(var)
    return lines


class _ChunkTemporaries:
    """The chunk-sized temporaries of a chunked run: `specs`, (shape, dtype)
    each, and `names`; a temporary is reused once the variable it holds is dead."""

    def __init__(self, chunk):
        self.chunk = chunk
        self.specs, self.names = [], []
        self._free = {}  # dtype -> names
        self._held = {}  # variable -> name

    def take(self, var):
        dtype = var.aval.dtype
        free = self._free.get(dtype)
        if free:
            name = free.pop()
        else:
            name = f"tmp{len(self.names)}"
            self.names.append(name)
            self.specs.append(((self.chunk,), dtype))
        self._held[var] = name
        return name

    def release(self, var):
        """Free `var`'s temporary, if it holds one (operands of the run may not)."""
        name = self._held.pop(var, None)
        if name is not None:
            self._free.setdefault(var.aval.dtype, []).append(name)


def _broadcast_view(source, eqn):
    """`broadcast_in_dim` as a read-only view: the operand with its dims in
    place (size-1 dims between), broadcast to the result's shape."""
    (x,), shape = eqn.invars, eqn.params["shape"]
    expanded = [1] * len(shape)
    for i, d in enumerate(eqn.params["broadcast_dimensions"]):
        expanded[d] = x.aval.shape[i]
    operand = source.atom(x)
    # a rank-0 operand broadcasts as it is: it may be a Python scalar, which has no reshape
    if x.aval.shape and tuple(expanded) != x.aval.shape:
        operand = f"{operand}.reshape({tuple(expanded)})"
    return f"numpy.broadcast_to({operand}, {tuple(shape)})"


_LOWERED = weakref.WeakKeyDictionary()  # ClosedJaxpr -> LoweredNumpy, for the implementations of jit_call, cond, scan


def forget_lowered():
    """Drop the lowerings of sub-jaxprs kept for their primitives' implementations (ft.clear_caches)."""
    _LOWERED.clear()


def _evaluate(closed, args):
    lowered = _LOWERED.get(closed)
    if lowered is None:
        lowered = _LOWERED[closed] = lower(closed)
    return list(lowered(*args))


call.SUBJAXPR_TRANSFORMS["evaluate"] = _evaluate
