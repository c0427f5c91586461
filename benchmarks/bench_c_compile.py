"""What the CPU kernels' compiler driver costs (interpreters/c_compiler.py).

A first process on an empty disk cache finds and probes the compiler, then
compiles translation units of 1, 10 and 100 kernels (each a gelu-like fused loop,
`#pragma omp parallel for simd`, calling vector tanh and exp); a second process on
the same cache loads them all with no compilation. Prints wall times, the
compile counts, and the machine's load average (absolute times depend on it).

    python benchmarks/bench_c_compile.py [--kernels 1 10 100]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
start = time.perf_counter()
from interpreters import c_compiler
imported = time.perf_counter()
status = c_compiler.compiler_status()
found = time.perf_counter() - imported
if not status.available:
    print(json.dumps({"unavailable": status.reason}))
    sys.exit(0)
HEAD = ("#include <math.h>\n#pragma omp declare simd notinbranch\nextern double tanh(double);\n"
        "#pragma omp declare simd notinbranch\nextern double exp(double);\n")

def kernel(i):
    return f'''
void k{i}(long n, const double *restrict a, const double *restrict b, double *restrict out, int threads) {{
    #pragma omp parallel for simd num_threads(threads) schedule(static) if(n > 65536)
    for (long j = 0; j < n; j++) {{
        double x = a[j] + {i}.0 * b[j], u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        out[j] = 0.5 * x * (1.0 + tanh(u)) + exp(-b[j] * b[j]);
    }}
}}
'''

times = {}
for count in json.loads(sys.argv[1]):
    source = HEAD + "".join(kernel(i) for i in range(count))
    begun = time.perf_counter()
    c_compiler.load_library(source)
    times[count] = time.perf_counter() - begun
print(json.dumps({"import": imported - start, "probe": found, "times": times, "compiles": c_compiler.compile_count(),
                  "seconds": c_compiler.compile_seconds(), "command": " ".join(status.command),
                  "version": status.version, "flags": " ".join(status.compile_flags + status.link_flags)}))
"""


def run(cache, kernels):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FTRANS_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kernels)], env=env, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernels", type=int, nargs="+", default=[1, 10, 100],
                        help="kernels per translation unit, one unit each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        first = run(cache, args.kernels)
        if "unavailable" in first:
            print(f"no working C compiler: {first['unavailable']}")
            return
        second = run(cache, args.kernels)
    print(f"compiler: {first['command']} ({first['version']})\nflags: {first['flags']}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'':28s}{'first process':>16s}{'second process':>16s}")
    print(f"{'import (ir, NumPy)':28s}{first['import']:15.3f}s{second['import']:15.3f}s")
    print(f"{'find and probe the compiler':28s}{first['probe']:15.3f}s{second['probe']:15.3f}s")
    for count in args.kernels:
        label = f"unit of {count} kernel" + ("s" if count > 1 else "")
        print(f"{label:28s}{first['times'][str(count)]:15.3f}s{second['times'][str(count)]:15.3f}s")
    print(f"{'compiler runs':28s}{first['compiles']:16d}{second['compiles']:16d}")


if __name__ == "__main__":
    main()
