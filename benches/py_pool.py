"""Python multiprocessing's side of the comparisons in benches/run.sh.

    python3 benches/py_pool.py GROUP...

Groups: map, imap1, startup, roundtrip, payload. Each measurement prints one line in the
format of benches/engine.rs: `NAME UNIT median=M min=A max=B n=R values=V,... [key=value...]`, over R
repetitions after a warm-up. Pools use Python's default start method (fork on Linux) except
where the name says spawn.
"""

import multiprocessing as mp
import os
import statistics
import sys
import time


def noop(_x):
    return None


def echo(b):
    return b


def ready(queue):
    queue.put(os.getpid())


def report(name, unit, values, extra=""):
    values = sorted(values)
    line = (
        f"{name} {unit} median={statistics.median(values):.6f} min={values[0]:.6f} "
        f"max={values[-1]:.6f} n={len(values)} values={','.join(f'{v:.6f}' for v in values)}"
    )
    print(line + (" " + extra if extra else ""), flush=True)


def rate(fn, n):
    t = time.perf_counter()
    fn(n)
    return n / (time.perf_counter() - t)


def group_map():
    n = 1_000_000
    with mp.Pool(2) as pool:
        run = lambda n: pool.map(noop, range(n))
        rate(run, n // 10)
        report("py.map", "tasks/s", [rate(run, n) for _ in range(3)], f"tasks={n} workers=2")


def group_imap1():
    # One task per message is slow enough that a tenth of the tasks gives a stable rate.
    n = 100_000
    with mp.Pool(2) as pool:
        run = lambda n: sum(1 for _ in pool.imap(noop, range(n), chunksize=1))
        rate(run, n // 10)
        report("py.imap1", "tasks/s", [rate(run, n) for _ in range(3)], f"tasks={n} workers=2")


def group_startup():
    for method, reps in (("spawn", 5), ("fork", 10)):
        ctx = mp.get_context(method)

        def once():
            queue = ctx.SimpleQueue()
            t = time.perf_counter()
            pool = ctx.Pool(2, initializer=ready, initargs=(queue,))
            queue.get()
            queue.get()
            elapsed = (time.perf_counter() - t) * 1e3
            pool.terminate()
            pool.join()
            return elapsed

        once()
        report(f"py.startup.{method}", "ms", [once() for _ in range(reps)], "workers=2 ready")


def group_roundtrip():
    with mp.Pool(1) as pool:

        def trip():
            t = time.perf_counter()
            pool.apply(noop, (None,))
            return (time.perf_counter() - t) * 1e6

        for _ in range(200):
            trip()
        reps = [statistics.median(trip() for _ in range(1000)) for _ in range(5)]
        report("py.roundtrip", "us", reps, "trips_per_rep=1000")


def group_payload():
    size = 16 << 20
    data = os.urandom(size)
    with mp.Pool(1) as pool:

        def once():
            t = time.perf_counter()
            out = pool.apply(echo, (data,))
            elapsed = (time.perf_counter() - t) * 1e3
            assert out == data, "the echo is the input"
            return elapsed

        once()
        report("py.payload", "ms", [once() for _ in range(5)], f"bytes={size}")


GROUPS = {
    "map": group_map,
    "imap1": group_imap1,
    "startup": group_startup,
    "roundtrip": group_roundtrip,
    "payload": group_payload,
}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(GROUPS):
        if name not in GROUPS:
            sys.exit(f"py_pool.py: no group {name!r}: give one of {', '.join(GROUPS)}")
        GROUPS[name]()
