"""rq_bench.py - the RQ side of bench/run (Debian's python3-rq; run with /usr/bin/python3).

  rq_bench.py URL enqueue N      build N noop jobs (Queue.prepare_data) and enqueue them with
                                 one Queue.enqueue_many call; prints {"seconds": S, "jobs": N}
                                 timed around preparing and enqueueing (interpreter start-up
                                 and imports are not counted: that favours RQ)
  rq_bench.py URL latency N      with an idle worker on "default": N times, enqueue a noop
                                 job, wait until it has ended, read its enqueued_at and
                                 started_at; prints {"latencies": [seconds...]}
Every loop is bounded in count and in time.
"""
import json
import random
import sys
import time

from redis import Redis
from rq import Queue
from rq.job import Job

import rq_jobs

LIMIT = 60.0   # seconds one latency sample may wait for its job


def enqueue(url, n):
    q = Queue(connection=Redis.from_url(url))
    t0 = time.perf_counter()
    data = [Queue.prepare_data(rq_jobs.noop) for _ in range(n)]
    jobs = q.enqueue_many(data)
    t1 = time.perf_counter()
    assert len(jobs) == n
    return {"seconds": t1 - t0, "jobs": n}


def latency(url, n):
    redis = Redis.from_url(url)
    q = Queue(connection=redis)
    out = []
    for _ in range(n):
        job = q.enqueue(rq_jobs.noop)
        deadline = time.time() + LIMIT
        while time.time() < deadline:
            st = redis.hget(job.key, 'status')
            if st in (b'finished', b'failed'):
                break
            time.sleep(0.0005)
        job = Job.fetch(job.id, connection=redis)
        if job.started_at is None or job.enqueued_at is None:
            raise SystemExit("rq_bench: job %s did not start within %.0fs" % (job.id, LIMIT))
        out.append((job.started_at - job.enqueued_at).total_seconds())
        time.sleep(random.uniform(0.01, 0.03))   # the worker is idle again before the next
    return {"latencies": out}


def main(argv):
    if len(argv) != 4 or argv[2] not in ("enqueue", "latency"):
        sys.stderr.write(__doc__)
        return 2
    url, what, n = argv[1], argv[2], int(argv[3])
    res = enqueue(url, n) if what == "enqueue" else latency(url, n)
    print(json.dumps(res))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
