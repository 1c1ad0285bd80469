"""bench/waitbench.py - run by bench/wait: what waiting for a job's end through pub/sub
(cq_wait_many, `cenqueue --wait`) gives and what it costs, on one private Redis (bench.py's
Bench does the servers and the drains).

  (a) latency: `cenqueue --wait sleep 0.2` against an idle `cworker -c 16`, one job at a
      time; from the job's `ended_at` (the worker's wall clock, written in the script that
      PUBLISHes the end) to the moment cenqueue has exited (this script's wall clock, same
      machine). Goal: median under 50 ms.
  (b) cost to a job nobody waits for: a `cworker --burst -c 64` drain of pre-filled no-op
      jobs, with Redis's own accounting around it: `INFO commandstats` cmdstat_publish
      (usec, calls) against the whole of Redis's CPU (used_cpu_sys + used_cpu_user), per job.
      commandstats times the command alone; the Lua around it (string.format of the channel,
      the call into Redis) is measured apart: EVAL of a loop that PUBLISHes as the worker's
      script does, against the same loop without the PUBLISH.
  (c) scale: `cenqueue --stdin --wait --quiet` of the same number of no-op jobs with an idle
      `cworker -c 64` running: enqueue, subscribe in batches of 1,000 and wait for all.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from report import median, pct  # noqa: E402


def cmdstat(info, name):
    """(calls, usec) of one command in an INFO commandstats snapshot."""
    v = info.get("cmdstat_" + name, "")
    calls = re.search(r"calls=(\d+)", v)
    usec = re.search(r"usec=(\d+)", v)
    return (int(calls.group(1)) if calls else 0, int(usec.group(1)) if usec else 0)


def cpu(info):
    return float(info.get("used_cpu_sys", 0)) + float(info.get("used_cpu_user", 0))


def snapshot(b):
    s = b.r.info("commandstats")
    s.update(b.r.info("cpu"))
    return s


def latency(b, n, seconds):
    """n samples of job end -> `cenqueue --wait` exited, in seconds."""
    b.flush()
    w = b.spawn([os.path.join(bench.BIN, "cworker"), "-c", "16", "--log-level", "warn"],
                "cworker-wait.log")
    bench.wait_until("cworker to register", lambda: b.r.int("SCARD", "cq:workers") >= 1, 10)
    time.sleep(0.3)
    lats, lines = [], []
    try:
        for i in range(n):
            p = subprocess.Popen([os.path.join(bench.BIN, "cenqueue"), "--wait", "sleep",
                                  str(seconds)], env=b.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
            line = p.stdout.readline().decode().strip()
            t_line = time.time()
            rc = p.wait(30)
            t_exit = time.time()
            p.stdout.close()
            if rc != 0 or " finished" not in line:
                raise bench.BenchError("cenqueue --wait exited %d: %r" % (rc, line))
            ended = float(b.r.cmd("HGET", "cq:job:" + line.split()[0], "ended_at"))
            lats.append(t_exit - ended)
            lines.append(t_line - ended)
            if (i + 1) % 25 == 0:
                bench.log("latency: %d/%d, median so far %.1f ms (its line: %.1f ms)"
                          % (i + 1, n, median(lats) * 1e3, median(lines) * 1e3))
    finally:
        b.stop(w)
    return lats, lines


def drain_cost(b, jobs, conc):
    """One no-op drain with Redis's accounting around it: per-job PUBLISH calls and usec,
    EVAL usec (the scripts, PUBLISH included), and all of Redis's CPU."""
    held = {}

    def before():
        held["a"] = snapshot(b)
    rate, dt = b.cq_drain(1, jobs, conc, before=before)
    a, z = held["a"], snapshot(b)
    pc, pu = [y - x for x, y in zip(cmdstat(a, "publish"), cmdstat(z, "publish"))]
    ec, eu = [y - x for x, y in zip(cmdstat(a, "eval"), cmdstat(z, "eval"))]
    return {"rate": rate, "seconds": dt, "publish_calls_per_job": pc / jobs,
            "publish_us_per_job": pu / jobs, "publish_us_per_call": pu / pc if pc else None,
            "eval_us_per_job": eu / jobs, "redis_cpu_us_per_job": (cpu(z) - cpu(a)) * 1e6 / jobs}


PUBLISH_LOOP = """
for i = 1, tonumber(ARGV[1]) do
  local id = ARGV[2] .. i
  redis.call('PUBLISH', string.format(ARGV[3], id), 'finished')
end"""
BARE_LOOP = """
for i = 1, tonumber(ARGV[1]) do
  local id = ARGV[2] .. i
end"""


def publish_glue(b, n):
    """Redis usec of n PUBLISHes made as the apply script makes them, minus the same loop
    without them: the whole marginal cost, Lua included, per PUBLISH."""
    out = {}
    for name, script in (("with", PUBLISH_LOOP), ("bare", BARE_LOOP)):
        best = None
        for _ in range(3):
            a = b.r.info("commandstats")
            b.r.cmd("EVAL", script, "0", str(n), "5b1f0c1e-8f0e-4a57-9a55-", "cq:ended:%s")
            z = b.r.info("commandstats")
            us = cmdstat(z, "eval")[1] - cmdstat(a, "eval")[1]
            best = us if best is None else min(best, us)
        out[name] = best
    return (out["with"] - out["bare"]) / n


def wait_all(b, jobs, conc):
    """`cenqueue --stdin --wait --quiet` of jobs no-op jobs with an idle worker running."""
    b.flush()
    w = b.spawn([os.path.join(bench.BIN, "cworker"), "-c", str(conc), "--log-level", "warn"],
                "cworker-waitall.log")
    bench.wait_until("cworker to register", lambda: b.r.int("SCARD", "cq:workers") >= 1, 10)
    time.sleep(0.3)
    a = snapshot(b)
    try:
        with open(b.noop_file(jobs), "rb") as f:
            _, dt = b.run([os.path.join(bench.BIN, "cenqueue"), "--stdin", "--wait", "--quiet"],
                          600, "cenqueue --stdin --wait", stdin=f)
    finally:
        b.stop(w)
    z = snapshot(b)
    sc, su = [y - x for x, y in zip(cmdstat(a, "subscribe"), cmdstat(z, "subscribe"))]
    return {"seconds": dt, "rate": jobs / dt, "subscribe_calls": sc, "subscribe_us": su,
            "redis_cpu_us_per_job": (cpu(z) - cpu(a)) * 1e6 / jobs,
            "processed": b.r.int("HGET", "cq:stats", "processed")}


def main():
    ap = argparse.ArgumentParser(description="cenqueue --wait: latency and cost")
    ap.add_argument("--samples", type=int, default=100, help="latency samples (default 100)")
    ap.add_argument("--sleep", type=float, default=0.2, help="each sample's job (default 0.2 s)")
    ap.add_argument("--jobs", type=int, default=100000, help="jobs a drain (default 100000)")
    ap.add_argument("--runs", type=int, default=3, help="drains (default 3)")
    ap.add_argument("--conc", type=int, default=64, help="cworker -c (default 64)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cq-waitbench.")
    b = bench.Bench(dict(bench.FULL), tmp)
    res = {"args": vars(args), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        b.start_servers()
        res["latency"], res["latency_line"] = latency(b, args.samples, args.sleep)
        res["drains"] = []
        for i in range(args.runs):
            d = drain_cost(b, args.jobs, args.conc)
            res["drains"].append(d)
            bench.log("drain %d/%d: %s jobs/s, PUBLISH %.2f us/job of %.2f us Redis CPU/job"
                      % (i + 1, args.runs, bench.fmt_int(d["rate"]), d["publish_us_per_job"],
                         d["redis_cpu_us_per_job"]))
        res["publish_glue_us"] = publish_glue(b, args.jobs)
        res["wait_all"] = wait_all(b, args.jobs, args.conc)
    finally:
        b.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    out = os.path.join(bench.HERE, "out")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "wait.json"), "w") as f:
        json.dump(res, f, indent=1)

    lats = [x * 1e3 for x in res["latency"]]
    lines = [x * 1e3 for x in res["latency_line"]]
    ds = res["drains"]
    med = lambda k: median([d[k] for d in ds])  # noqa: E731
    print("| (a) job end -> `cenqueue --wait sleep %g` exited, %d jobs | ms |"
          % (args.sleep, len(lats)))
    print("|---|---|")
    print("| median | %.1f |" % median(lats))
    print("| p90 | %.1f |" % pct(lats, 90))
    print("| min / max | %.1f / %.1f |" % (min(lats), max(lats)))
    print("| job end -> its line read from cenqueue's stdout: median / p90 | %.1f / %.1f |"
          % (median(lines), pct(lines, 90)))
    print()
    print("| (b) `cworker --burst -c %d`, %d no-op jobs, nobody waiting, %d drains | per job "
          "(median) |" % (args.conc, args.jobs, args.runs))
    print("|---|---|")
    print("| PUBLISH calls | %.2f |" % med("publish_calls_per_job"))
    print("| PUBLISH, Redis usec (commandstats) | %.2f us |" % med("publish_us_per_job"))
    print("| EVAL, Redis usec (commandstats; the scripts, PUBLISH included) | %.2f us |"
          % med("eval_us_per_job"))
    print("| PUBLISH with its Lua (string.format, redis.call), EVAL loop of %d, best of 3 "
          "| %.2f us |" % (args.jobs, res["publish_glue_us"]))
    print("| all of Redis's CPU (used_cpu_sys + used_cpu_user) | %.2f us |"
          % med("redis_cpu_us_per_job"))
    print("| drain rate | %s jobs/s |" % bench.fmt_int(med("rate")))
    print()
    wa = res["wait_all"]
    print("(c) `cenqueue --stdin --wait --quiet`, %d no-op jobs, idle `cworker -c %d`: %.2f s "
          "enqueue to the last end (%s jobs/s), %d SUBSCRIBE commands, Redis CPU %.2f us/job"
          % (args.jobs, args.conc, wa["seconds"], bench.fmt_int(wa["rate"]),
             wa["subscribe_calls"], wa["redis_cpu_us_per_job"]))
    print()
    print("PUBLISH share of Redis CPU in (b): %.1f%% (the command), %.1f%% (with its Lua)"
          % (100.0 * med("publish_us_per_job") / med("redis_cpu_us_per_job"),
             100.0 * res["publish_glue_us"] / med("redis_cpu_us_per_job")))


if __name__ == "__main__":
    main()
