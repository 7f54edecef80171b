"""Writes benches/RESULTS.md from what benches/run.sh measured, and prints its summary table.

    python3 benches/report.py RESULTS_DIR OUT.md

RESULTS_DIR holds `*.txt` files of measurement lines (`NAME UNIT median=M min=A max=B n=R
values=V,... [key=value...]`, printed by benches/engine.rs, benches/floor.rs and
benches/py_pool.py; a name measured in several runs has its repetitions pooled), hyperfine exports
`hf-NAME.json`, `checks.txt` (`NAME VALUE [detail]` lines) and `meta.txt` (`key: value`
lines). A measurement that is missing (its step failed) is reported as not measured.
"""

import json
import pathlib
import statistics
import sys

SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def load(d):
    m = {}
    for p in sorted(d.glob("*.txt")):
        for line in p.read_text().splitlines():
            parts = line.split()
            if len(parts) < 6 or not parts[2].startswith("median="):
                continue
            name, unit, *kv = parts
            f = dict(x.split("=", 1) for x in kv if "=" in x)
            values = [float(v) for v in f.pop("values", "").split(",") if v]
            entry = {
                "unit": unit,
                "median": float(f.pop("median")),
                "min": float(f.pop("min")),
                "max": float(f.pop("max")),
                "n": int(f.pop("n")),
                "values": values,
                "extra": f,
            }
            earlier = m.get(name)
            if earlier and earlier["values"] and values:
                # Measured again in another run (see run.sh's interleaved rounds): every
                # repetition counts.
                values = earlier["values"] + values
                entry.update(
                    median=statistics.median(values),
                    min=min(values),
                    max=max(values),
                    n=len(values),
                    values=values,
                )
            m[name] = entry
    for p in sorted(d.glob("hf-*.json")):
        r = json.loads(p.read_text())["results"][0]
        t = r["times"]
        m[p.stem[3:]] = {
            "unit": "s",
            "median": statistics.median(t),
            "min": min(t),
            "max": max(t),
            "n": len(t),
            "extra": {"command": r["command"]},
        }
    return m


def kv_file(path, sep):
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if sep in line:
                k, v = line.split(sep, 1)
                out[k.strip()] = v.strip()
    return out


def fmt_time(s):
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    if s >= 1e-6:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e9:.1f} ns"


def fmt(v, unit):
    if unit in SECONDS:
        return fmt_time(v * SECONDS[unit])
    if unit == "tasks/s":
        return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.1f} k/s"
    return f"{v:.2f} {unit}"


class Report:
    def __init__(self, m):
        self.m = m
        self.sections = []
        self.summary = []

    def section(self, title, note=""):
        self.rows = []
        self.checks = []
        self.sections.append((title, note, self.rows, self.checks))
        self.title = title

    def row(self, label, key):
        r = self.m.get(key)
        if r is None:
            self.rows.append(f"| {label} | not measured | | |")
            return
        u = r["unit"]
        self.rows.append(
            f"| {label} | {fmt(r['median'], u)} | {fmt(r['min'], u)} – {fmt(r['max'], u)} "
            f"| {r['n']} |"
        )

    def check(self, what, measured, target, met):
        mark = "—" if met is None else ("yes" if met else "**no**")
        self.checks.append(f"| {what} | {measured} | {target} | {mark} |")
        self.summary.append(f"| {self.title.split('.')[0]} | {what} | {measured} | {target} | {mark} |")

    def med(self, key, field="median"):
        r = self.m.get(key)
        if r is None:
            return None
        return r[field] * SECONDS.get(r["unit"], 1.0)

    def best(self, key):
        """The best repetition: the shortest time or the highest rate."""
        r = self.m.get(key)
        if r is None:
            return None
        return self.med(key, "max" if r["unit"].endswith("/s") else "min")

    def speedup(self, weft, alt, target, what=None, faster_is_higher=False):
        """weft's speed-up over alt: alt time / weft time, or weft rate / alt rate."""
        a, b = self.med(weft), self.med(alt)
        what = what or f"weft's speed-up over {alt}"
        if a is None or b is None:
            self.check(what, "not measured", target[1] if target else "", False if target else None)
            return
        x = a / b if faster_is_higher else b / a
        a, b = self.best(weft), self.best(alt)
        y = a / b if faster_is_higher else b / a
        measured = f"{x:.2f}× (best runs {y:.2f}×)"
        if target is None:
            self.check(what, measured, "", None)
        else:
            self.check(what, measured, target[1], x >= target[0])

    def below(self, key, limit, unit_label, what, field="median"):
        r = self.m.get(key)
        if r is None:
            self.check(what, "not measured", f"< {limit} {unit_label}", False)
            return
        scale = (1e3 if unit_label == "ms" else 1.0) * SECONDS.get(r["unit"], 1.0)
        v = r[field] * scale
        measured = f"{v:.2f} {unit_label}"
        if r["n"] > 1 and field == "median":
            measured += f" (best run {r['min'] * scale:.2f} {unit_label})"
        self.check(what, measured, f"< {limit} {unit_label}", v < limit)

    def markdown(self, meta):
        out = ["# weft benchmark results", ""]
        out.append(
            f"{meta.get('date', '?')} · {meta.get('cores', '?')} cores ({meta.get('cpu', '?')}) · "
            f"weft {meta.get('commit', '?')}"
        )
        out.append("")
        out.append(
            f"Written by `benches/run.sh` in {meta.get('suite', '?')} (build {meta.get('build', '?')}). "
            f"Load average before the run: {meta.get('load_before', '?')}; after: "
            f"{meta.get('load_after', '?')}. Tools: {meta.get('tools', '?')}."
        )
        out.append("")
        out.append(
            "Medians over the repetitions (after a warm-up), the spread from the fastest to the "
            "slowest repetition, and weft's speed-up: the alternative's time divided by weft's "
            "(or weft's rate divided by the alternative's), so above 1 means weft is faster. A "
            "target is judged on medians; the speed-up between the best repetitions of each side "
            "is shown beside it, as the figure least moved by other work on the machine."
        )
        try:
            load = float(meta.get("load_before", "").split()[0])
            cores = int(meta.get("cores", ""))
        except (IndexError, ValueError):
            load, cores = 0.0, 0
        if cores and load > 0.5 * cores:
            out += [
                "",
                f"**The machine was busy**: load average {load} on {cores} cores when the run "
                "began. Other work shared the CPUs, so spreads are wide and a ratio can move a "
                "long way between runs; rerun on a quiet machine before drawing conclusions.",
            ]
        out += ["", "## Summary", ""]
        out += self.summary_table()
        for title, note, rows, checks in self.sections:
            out += ["", f"## {title}", ""]
            if note:
                out += [note, ""]
            out += ["| | median | min – max | runs |", "|---|---|---|---|"] + rows
            out += ["", "| check | measured | target | met |", "|---|---|---|---|"] + checks
        return "\n".join(out) + "\n"

    def summary_table(self):
        return ["| # | check | measured | target | met |", "|---|---|---|---|---|"] + self.summary


def build(m, checks):
    r = Report(m)
    r.section(
        "1. Command overhead: 2,000 × `true`, 2 at a time",
        "Records on stdin; each job runs `true N`.",
    )
    r.row("`weft -j2 true`", "true.weft")
    r.row("`xargs -P2 -n1 true`", "true.xargs")
    r.row("`parallel -j2 true`", "true.parallel")
    r.row("`rust-parallel -j2 true`", "true.rust-parallel")
    r.speedup("true.weft", "true.xargs", (1, "≥ 1.0× (no slower than xargs)"), "weft vs xargs")
    r.speedup("true.weft", "true.rust-parallel", None, "weft vs rust-parallel")
    r.speedup("true.weft", "true.parallel", (4, "≥ 4×"), "weft vs GNU parallel")
    # The floor's own lead: a tool that only forks and execs each command, and waits for it.
    r.speedup("true.xargs", "true.parallel", None, "xargs (the fork+exec floor) vs GNU parallel")

    r.section(
        "2. Hashing 5,000 small files (1–8 KiB)",
        "Paths on stdin. weft's `sha256` task runs in 2 worker processes with no fork+exec per file.",
    )
    r.row("`weft --task sha256`", "sha.weft")
    r.row("`parallel sha256sum`", "sha.parallel")
    r.row("`xargs -P2 -n1 sha256sum`", "sha.xargs1")
    r.row("`xargs -P2 -n500 sha256sum`", "sha.xargs500")
    r.speedup("sha.weft", "sha.parallel", (5, "≥ 5×"), "weft vs GNU parallel")
    r.speedup("sha.weft", "sha.xargs1", (2, "≥ 2×"), "weft vs xargs -n1")
    r.speedup("sha.weft", "sha.xargs500", (1 / 1.3, "≥ 0.77× (within 1.3× of xargs -n500)"), "weft vs xargs -n500")
    same = checks.get("sha256.identical")
    r.check(
        "output identical to sha256sum's (sorted)",
        same or "not checked",
        "identical",
        None if same is None else same.startswith("yes"),
    )

    r.section(
        "3. Tiny tasks, library: no-op tasks on 2 workers",
        "weft: 1,000,000 `Noop` tasks through `Pool::map`. Python: `multiprocessing.Pool(2)` "
        "(fork), `map` with its default chunking over 1,000,000 items, `imap(chunksize=1)` over "
        "100,000 (its rate, not its time, is compared). The floor is no pool at all: the least "
        "any pool that gives each job its own timed outcome must do (a clock read and an "
        "outcome per job, batches over channels or pipes; per-job times from the time-stamp "
        "counter where the kernel keeps time by it, as weft's workers take them), measured in "
        "the same run "
        "(`benches/floor.rs`). These rates move a long way with other work on a shared host, "
        "for seconds at a time: weft's no-op rates, the floor and `map` are each measured in "
        "three runs taken in turn (the suite's first pass, then two rounds of all three one "
        "after another), and their repetitions pooled.",
    )
    r.row("weft, process backend", "noop.process")
    r.row("weft, thread backend", "noop.thread")
    r.row("Python `Pool(2).map`", "py.map")
    r.row("Python `Pool(2).imap`, chunksize=1", "py.imap1")
    r.speedup("noop.process", "py.map", (3, "≥ 3×"), "weft processes vs Pool.map", True)
    r.speedup("noop.process", "py.imap1", (25, "≥ 25×"), "weft processes vs imap chunksize=1", True)
    r.speedup("noop.thread", "py.map", (10, "≥ 10×"), "weft threads vs Pool.map", True)
    r.row("weft, thread backend, a closure (`map_fn`)", "noop.thread_fn")
    r.speedup(
        "noop.thread_fn",
        "noop.thread",
        (0.97, "≥ 0.97× (no dearer, within noise)"),
        "a closure per job vs a Task per job, on threads",
        True,
    )
    r.row("floor (no engine, `benches/floor.rs`), threads", "floor.thread")
    r.row("floor (no engine, `benches/floor.rs`), processes", "floor.process")
    r.speedup("noop.thread", "floor.thread", None, "weft threads / the thread floor", True)
    r.speedup("noop.process", "floor.process", None, "weft processes / the process floor", True)
    r.speedup("floor.thread", "py.map", None, "the thread floor vs Pool.map", True)
    r.speedup("floor.process", "py.map", None, "the process floor vs Pool.map", True)
    clock = r.med("floor.clock")
    # The comparison runs 2 workers: more cores than that do not raise its ceiling.
    extra = r.m.get("floor.clock", {}).get("extra", {})
    cores = min(int(extra.get("cores", 0)), 2)
    source = {"tsc": "the time-stamp counter", "vdso": "the monotonic clock"}.get(
        extra.get("source"), "the clock"
    )
    if clock and cores:
        # One clock read per job (its start time and runtime), and nothing else, per worker.
        ceiling = cores / clock
        py = r.med("py.map")
        need = f"; 10× Pool.map needs {10 * py / 1e6:.1f} M/s" if py else ""
        r.check(
            "rate if a job cost only its one clock read",
            f"{ceiling / 1e6:.1f} M/s ({clock * 1e9:.1f} ns per read of {source}, {cores} workers)"
            f"{need}",
            "",
            None,
        )

    r.section(
        "4. CPU-bound scaling: 8 equal parts, 1 vs 2 workers",
        "Each part is a dependent multiply-add chain (`black_box` at every step).",
    )
    for backend, label in (("process", "processes"), ("thread", "threads")):
        for w in (1, 2):
            r.row(f"weft {label}, {w} worker{'s' if w > 1 else ''}", f"cpu.{backend}.{w}")
    r.speedup("cpu.process.2", "cpu.process.1", (1.9, "≥ 1.9×"), "speed-up with 2 processes")
    r.speedup("cpu.thread.2", "cpu.thread.1", None, "speed-up with 2 threads")
    a, b = r.med("cpu.process.2"), r.med("cpu.thread.2")
    if a is None or b is None:
        r.check("2 processes' time / 2 threads' time", "not measured", "≤ 1.05", False)
    else:
        best = r.best("cpu.process.2") / r.best("cpu.thread.2")
        r.check(
            "2 processes' time / 2 threads' time",
            f"{a / b:.3f} (best runs {best:.3f})",
            "≤ 1.05 (within 5%)",
            a / b <= 1.05,
        )

    r.section(
        "5. Start-up",
        "A pool is ready when every worker has finished its handshake (weft) or run its "
        "initializer (Python). End to end: the whole `weft` command, measured by hyperfine.",
    )
    r.row("weft: pool of 2 process workers ready", "startup.process_pool2")
    r.row("Python: spawn `Pool(2)` ready", "py.startup.spawn")
    r.row("Python: fork `Pool(2)` ready", "py.startup.fork")
    r.row("`weft --task sum ::: 1..10`, end to end", "sum.weft")
    r.below("startup.process_pool2", 5, "ms", "weft pool of 2 ready")
    r.speedup("startup.process_pool2", "py.startup.spawn", None, "weft vs Python spawn Pool(2)")
    r.speedup("startup.process_pool2", "py.startup.fork", None, "weft vs Python fork Pool(2)")
    r.below("sum.weft", 20, "ms", "`weft --task sum ::: 1..10` end to end")

    r.section(
        "6. Round trip of one tiny task through one process worker",
        "Each repetition is the median of 1,000 round trips (after 200 warm-up trips). Python: "
        "`Pool(1).apply`.",
    )
    r.row("weft `Pool::map([Noop])`, 1 process", "roundtrip.process")
    r.row("Python `Pool(1).apply`", "py.roundtrip")
    r.speedup("roundtrip.process", "py.roundtrip", (3, "≥ 3× (weft ≤ 1/3)"), "weft vs Python")

    r.section(
        "7. Payload: 16 MiB of bytes echoed back through one process worker",
        "weft: an `Echo(serde_bytes::ByteBuf)` task; Python: `Pool(1).apply(echo, (data,))`. "
        "The echo is checked outside the timing.",
    )
    r.row("weft, 1 process worker", "payload.process")
    r.row("Python `Pool(1).apply`", "py.payload")
    r.speedup("payload.process", "py.payload", (1 / 0.3, "≥ 3.33× (weft ≤ 0.3×)"), "weft vs Python")

    r.section(
        "8. I/O on threads: 2,000 HTTP GETs, 32 at a time",
        "From a keep-alive loopback server in the bench program (512-byte bodies, a thread per "
        "connection).",
    )
    r.row("`weft --task fetch -j32`", "fetch.weft")
    r.row("`xargs -P32 -n1 curl -s`", "fetch.xargs")
    r.row("`parallel -j32 curl -s`", "fetch.parallel")
    r.speedup("fetch.weft", "fetch.xargs", (3, "≥ 3×"), "weft vs xargs curl")
    r.speedup("fetch.weft", "fetch.parallel", (3, "≥ 3×"), "weft vs GNU parallel curl")

    r.section(
        "9. Memory (MB = 10⁶ bytes)",
        "From `/proc/PID/status`. Idle workers: 2 process workers 300 ms after start, and again "
        "after running 1,000,000 no-op tasks (runs = workers). Coordinator: the bench program "
        "streaming 1,000,000 no-op tasks through 2 process workers (VmRSS after 100,000 and "
        "1,000,000 outcomes, VmHWM at the end); the `weft` command over 1,000,000 stdin records "
        "(peak RSS from GNU time).",
    )
    r.row("idle worker VmRSS, fresh", "memory.worker_idle_fresh.VmRSS")
    r.row("idle worker RssAnon, fresh", "memory.worker_idle_fresh.RssAnon")
    r.row("idle worker VmRSS, after 1M jobs", "memory.worker_idle_after_1m.VmRSS")
    r.row("idle worker RssAnon, after 1M jobs", "memory.worker_idle_after_1m.RssAnon")
    r.row("coordinator VmRSS at 100k jobs", "memory.coordinator.rss_100k")
    r.row("coordinator VmRSS at 1M jobs", "memory.coordinator.rss_1m")
    r.row("coordinator peak (VmHWM)", "memory.coordinator.peak")
    r.row("`weft --task noop --backend process` peak", "memory.cli.process.peak")
    r.row("`weft --task noop` (threads) peak", "memory.cli.thread.peak")
    r.below("memory.worker_idle_fresh.VmRSS", 3, "MB", "idle process worker RSS, fresh (largest)", "max")
    r.below(
        "memory.worker_idle_after_1m.VmRSS",
        3,
        "MB",
        "idle process worker RSS, after 1M jobs (largest)",
        "max",
    )
    r.below("memory.coordinator.peak", 30, "MB", "library coordinator peak over 1M jobs")
    r.below("memory.cli.process.peak", 30, "MB", "`weft` command peak over 1M jobs (processes)")
    r.section(
        "10. `--pipe` and `--pipe-part`: 259 MB through `wc -l`, 2 jobs at a time",
        "The file is `seq 30000000` (on disk, read through stdin for `--pipe`), cut into 1 MB "
        "blocks (`--pipe`) or 10 parts per worker (`--pipe-part`'s default).",
    )
    r.row("`weft --pipe -j2 wc -l`", "pipe.weft")
    r.row("`parallel --pipe -j2 wc -l`", "pipe.parallel")
    r.row("`weft --pipe-part -a FILE -j2 wc -l`", "pipepart.weft")
    r.row("`parallel --pipe-part -a FILE -j2 wc -l`", "pipepart.parallel")
    r.row("`cat FILE | weft --pipe -j2 wc -l`", "pipe.stream.weft")
    r.row("`cat FILE | parallel --pipe -j2 wc -l`", "pipe.stream.parallel")
    r.speedup("pipe.weft", "pipe.parallel", (8, "≥ 8×"), "weft --pipe vs GNU parallel --pipe")
    r.speedup(
        "pipe.stream.weft",
        "pipe.stream.parallel",
        (8, "≥ 8×"),
        "weft --pipe vs GNU parallel --pipe, from a pipe",
    )
    r.speedup("pipepart.weft", "pipepart.parallel", (1, "≥ 1×"), "weft --pipe-part vs GNU parallel --pipe-part")
    r.section(
        "11. The broker: weft, Celery and RQ on one loopback Redis, two workers each",
        "End to end: submit every job, wait for every result. weft: `benches/broker.rs`, typed "
        "no-op tasks (1,000,000) and 10 ms sleeps (400), two `weft::broker::serve` worker "
        "processes of one thread. Celery: one worker of two prefork processes, `delay()` then "
        "`get()` per job (2,000 no-ops, 200 sleeps). RQ: two `rq worker` processes (its default "
        "forking worker; 400 no-ops, 200 sleeps). Rates in jobs per second.",
    )
    r.row("weft, no-op", "broker.noop")
    r.row("Celery, no-op", "celery.tiny")
    r.row("RQ, no-op", "rq.tiny")
    r.row("weft, 10 ms", "broker.sleep")
    r.row("Celery, 10 ms", "celery.sleep10")
    r.row("RQ, 10 ms", "rq.sleep10")
    noop = r.med("broker.noop")
    r.check(
        "weft no-op jobs through the broker",
        "not measured" if noop is None else f"{noop / 1e3:.0f} k/s",
        "≥ 100 k/s",
        noop is not None and noop >= 100_000,
    )
    r.speedup("broker.noop", "celery.tiny", None, "weft vs Celery, no-op jobs", faster_is_higher=True)
    r.speedup("broker.noop", "rq.tiny", None, "weft vs RQ, no-op jobs", faster_is_higher=True)
    r.speedup("broker.sleep", "celery.sleep10", None, "weft vs Celery, 10 ms jobs", faster_is_higher=True)
    r.speedup("broker.sleep", "rq.sleep10", None, "weft vs RQ, 10 ms jobs", faster_is_higher=True)
    r.section(
        "12. weft against rayon on 2 threads",
        "`benches/rayon.rs`: `par_iter().map(..).collect()` on a rayon pool of 2 threads against "
        "weft's `map` of a task and `map_fn` of a closure on 2 threads and `map` on 2 processes, "
        "interleaved in each of 15 repetitions: 400 CPU-bound jobs of about 1 ms, and 1,000,000 "
        "jobs that do next to nothing. Times in ms; lower is better.",
    )
    for group in ("cpu", "tiny"):
        for who, label in (("rayon", "rayon"), ("thread", "weft threads, task"),
                           ("thread_fn", "weft threads, closure"), ("process", "weft processes")):
            r.row(f"{group}: {label}", f"rayon.{group}.{who}")
    for who, limit in (("thread", 1.03), ("thread_fn", 1.03), ("process", 1.05)):
        a, b = r.med(f"rayon.cpu.{who}"), r.med("rayon.cpu.rayon")
        r.check(
            f"1 ms jobs: weft {who.replace('_', ' ')} time / rayon's",
            "not measured" if a is None or b is None else f"{a / b:.3f}×",
            f"≤ {limit}×",
            a is not None and b is not None and a / b <= limit,
        )
    for who in ("thread", "thread_fn", "process"):
        a, b = r.med(f"rayon.tiny.{who}"), r.med("rayon.tiny.rayon")
        r.check(
            f"tiny jobs: weft {who.replace('_', ' ')} time / rayon's",
            "not measured" if a is None or b is None else f"{a / b:.0f}×",
            "",
            None,
        )
    return r


def main():
    d, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    m = load(d)
    checks = kv_file(d / "checks.txt", " ")
    meta = kv_file(d / "meta.txt", ":")
    r = build(m, checks)
    out.write_text(r.markdown(meta))
    print("\n".join(r.summary_table()))


if __name__ == "__main__":
    main()
