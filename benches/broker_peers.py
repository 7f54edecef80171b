"""Celery's and RQ's side of the broker comparison in benches/run.sh, on the same Redis.

    python3 benches/broker_peers.py REDIS_URL [GROUP...]

Groups: celery, rq (default: both). Each starts two workers of its own (Celery: one worker
with two prefork processes, its default pool; RQ: two `rq worker` processes, its default
forking worker), submits the jobs, waits for every result, and prints measurement lines in
the format of benches/engine.rs: `NAME UNIT median=M min=A max=B n=R values=V,...`, for
no-op jobs (`.tiny`, jobs/s) and jobs that sleep 10 ms (`.sleep10`, jobs/s). Needs
`pip install celery rq redis`. The workers are stopped (and killed if they linger) at the end.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from py_pool import report  # noqa: E402  (the suite's one line format)

TASKS = '''
import time
from celery import Celery

app = Celery("peer_tasks", broker=%(url)r, backend=%(url)r)
app.conf.update(worker_prefetch_multiplier=4, result_expires=600, broker_connection_retry_on_startup=True)


@app.task
def noop():
    return None


@app.task
def sleep10():
    time.sleep(0.01)


def rq_noop():
    return None


def rq_sleep10():
    time.sleep(0.01)
'''

# RQ forks a process per job (its default worker): fewer tiny jobs keep its rounds short.
CELERY_TINY, RQ_TINY, SLOW, ROUNDS = 2000, 400, 200, 3


def stop(procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def spawn(argv, cwd, log):
    return subprocess.Popen(
        argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=cwd),
    )


def rate(run, n):
    t = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - t)


def group_celery(url, d, log):
    sys.path.insert(0, d)
    import peer_tasks

    workers = [spawn([sys.executable, "-m", "celery", "-A", "peer_tasks", "worker",
                      "--concurrency", "2", "--pool", "prefork", "--loglevel", "WARNING",
                      "--without-gossip", "--without-mingle", "--without-heartbeat"], d, log)]
    try:
        peer_tasks.noop.delay().get(timeout=120)  # the workers are up

        def run(task):
            def go(n):
                results = [task.delay() for _ in range(n)]
                for r in results:
                    r.get(timeout=300)
                    r.forget()
            return go

        for name, task, n in (("tiny", peer_tasks.noop, CELERY_TINY), ("sleep10", peer_tasks.sleep10, SLOW)):
            rate(run(task), n // 10)
            report(f"celery.{name}", "jobs/s", [rate(run(task), n) for _ in range(ROUNDS)],
                   f"jobs={n} workers=2")
    finally:
        stop(workers)


def group_rq(url, d, log):
    sys.path.insert(0, d)
    import peer_tasks
    from redis import Redis
    from rq import Queue

    conn = Redis.from_url(url)
    q = Queue("peer", connection=conn)
    workers = [spawn([sys.executable, "-m", "rq.cli", "worker", "--url", url, "--quiet", "peer"], d, log)
               for _ in range(2)]
    try:
        def wait(jobs):
            for j in jobs:
                while True:
                    status = j.get_status(refresh=True)
                    if status == "finished":
                        break
                    if status in ("failed", "stopped", "canceled"):
                        raise RuntimeError(f"rq job {j.id} {status}")
                    time.sleep(0.001)

        wait([q.enqueue(peer_tasks.rq_noop)])  # the workers are up

        def run(fn):
            return lambda n: wait([q.enqueue(fn) for _ in range(n)])

        for name, fn, n in (("tiny", peer_tasks.rq_noop, RQ_TINY), ("sleep10", peer_tasks.rq_sleep10, SLOW)):
            rate(run(fn), n // 10)
            report(f"rq.{name}", "jobs/s", [rate(run(fn), n) for _ in range(ROUNDS)],
                   f"jobs={n} workers=2")
    finally:
        stop(workers)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url, groups = sys.argv[1], sys.argv[2:] or ["celery", "rq"]
    # run.sh's time limit sends TERM: the workers (in sessions of their own) are stopped in
    # the `finally` blocks, not left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    d = tempfile.mkdtemp(prefix="weft-peers-")
    try:
        with open(os.path.join(d, "peer_tasks.py"), "w") as f:
            f.write(TASKS % {"url": url})
        with open(os.path.join(d, "workers.log"), "w") as log:
            for g in groups:
                {"celery": group_celery, "rq": group_rq}[g](url, d, log)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
