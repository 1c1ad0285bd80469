#!/usr/bin/python3
"""bench.py - cq against RQ (Debian's python3-rq) and the lesson's scripts, in one run.

Run it through bench/run (which installs what is missing and builds cq first):

    bench/run                the full run, several minutes; writes docs/BENCHMARKS.md
    bench/run --quick        a smoke run in about two minutes; writes bench/out/BENCHMARKS-quick.md
    bench/run --report-only  measures nothing: writes the report again from the saved results

Everything runs on 127.0.0.1: one private redis-server, the image server of the tests
(tests/fixtures/httpd.py, 0.2 s per image) and the fake Imgur API (tests/fixtures/fake_imgur.py)
serving a gallery generated here with 91 .jpg links, as the lesson's run had. Every server and
worker is started by this script and stopped by it, whatever happens (try/finally, SIGTERM,
SIGINT). Every wait is bounded. Standard library only (the RQ side runs in its own scripts).

This file measures: the raw samples of every run, the machine, the configuration and the
errors go to bench/out/<mode>.json, and bench/report.py builds the Markdown report from that
file alone (medians, ratios against the baselines measured in the same run, goals).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import report
from report import fmt_int, median, pct

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
BIN = os.path.join(SRC, "build", "bin")
MODULE = os.path.join(SRC, "build", "lib", "cq-redis.so")  # cq's Redis module (module/)
PY = "/usr/bin/python3"          # Debian's python: the one that imports python3-rq
RQ = [PY, "-m", "rq.cli"]         # `rq` as Debian installs it (/usr/bin/rq is the same)
CLIENT_ID = "bench-client"
PERF_EVENTS = "task-clock,context-switches,raw_syscalls:sys_enter"   # what perf stat counts
IMAGES = 91                       # the lesson's run downloaded 91 images
LATENCY = 0.2                     # seconds the image server waits before each answer
IMAGE_SIZE = 32768                # bytes of each generated image (httpd.py's default)
CG_BASELINE = os.path.join(SRC, "tests", "perf", "callgrind-baseline")

FULL = dict(
    name="full", reps=5, mid_reps=5, slow_reps=3,
    drain_jobs=200_000, drain_conc=64, workers=(1, 2, 4),
    enq_cq=200_000, enq_rq=20_000,
    rq_simple_jobs=5_000, rq_fork_jobs=100, rq_reps=3,
    lat_samples=200, rec_reps=3,
    mem_reps=3, mem_rq_jobs=IMAGES,
    cg_worker=(20_000, 10_000), cg_enqueue=(20_000, 10_000),
    prof_jobs=200_000,
)
QUICK = dict(
    name="quick", reps=3, mid_reps=1, slow_reps=1,
    drain_jobs=50_000, drain_conc=64, workers=(1, 2, 4),
    enq_cq=50_000, enq_rq=5_000,
    rq_simple_jobs=1_000, rq_fork_jobs=20, rq_reps=1,
    lat_samples=50, rec_reps=1,
    mem_reps=1, mem_rq_jobs=16,
    cg_worker=(4_000, 2_000), cg_enqueue=(4_000, 2_000),
    prof_jobs=50_000,
)
PHASES = ("enqueue", "noop", "rq", "latency", "recovery", "lesson", "memory", "callgrind",
          "profile")

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


class BenchError(Exception):
    pass


# ---- a minimal Redis client (RESP2), enough for the driver ---------------------------------

class RedisError(Exception):
    pass


class Redis:
    def __init__(self, port, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError("bad reply %r" % line)

    def cmd(self, *args):
        self.sock.sendall(self.encode(args))
        return self.read()

    def int(self, *args):
        v = self.cmd(*args)
        return int(v) if v is not None else 0

    def info(self, section):
        out = {}
        for line in self.cmd("INFO", section).decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def cpu(self):
        """CPU seconds redis-server has used so far, from `INFO cpu` (getrusage in Redis):
        {"all": every thread of it, "main": its main thread, the one that runs commands}.
        Differences of these around a phase are Redis's own CPU, whatever the machine's load
        (as bench/redis_cpu measures it)."""
        i = self.info("cpu")

        def f(k):
            try:
                return float(i.get(k, 0))
            except ValueError:
                return 0.0
        return {"all": f("used_cpu_sys") + f("used_cpu_user"),
                "main": f("used_cpu_sys_main_thread") + f("used_cpu_user_main_thread")}


# ---- processes ----------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(what, pred, limit, step=0.005):
    """Poll pred() until it is true; BenchError after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError("timed out after %.0fs waiting for %s" % (limit, what))
        time.sleep(step)


def took(text):
    """The seconds of a "Took N.NNs" line."""
    m = re.search(r"Took\s+([0-9.]+)", text)
    if not m:
        raise BenchError("no 'Took N.NNs' line in output: %r" % text[-300:])
    return float(m.group(1))


class Bench:
    def __init__(self, cfg, tmp):
        self.cfg = cfg
        self.tmp = tmp
        self.procs = []
        self.res = {}          # key -> {"samples": [...], "unit": ..., ...}
        self.notes = {}        # key -> text about the measurement, saved with the results
        self.env = dict(os.environ)
        for k in ("CQ_PREFIX", "IMGUR_CLIENT_ID", "IMGUR_API_URL", "REDIS_URL"):
            self.env.pop(k, None)
        self.env["PYTHONPATH"] = HERE
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.runs = 0
        self.gallery_items = 0

    # -- process bookkeeping ---------------------------------------------------------------

    def spawn(self, argv, log_name, cwd=None, env=None, **kw):
        """Start argv with its output appended to log/<log_name> (stdout= and stderr= send
        either elsewhere)."""
        logf = open(os.path.join(self.tmp, "log", log_name), "ab")
        p = subprocess.Popen(argv, cwd=cwd or self.tmp, env=env or self.env,
                             stdout=kw.pop("stdout", logf), stderr=kw.pop("stderr", logf),
                             stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
        p.log_name = log_name
        logf.close()
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, limit=30.0):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(limit)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def wait_exit(self, p, limit, what):
        try:
            rc = p.wait(limit)
        except subprocess.TimeoutExpired:
            self.stop(p, signal.SIGKILL)
            raise BenchError("%s did not exit within %.0fs" % (what, limit))
        if p in self.procs:
            self.procs.remove(p)
        if rc != 0:
            raise BenchError("%s exited %d; see %s" % (what, rc, self.logtail(p.log_name)))
        return rc

    def wait_cpu(self, p, limit, what):
        """wait_exit for a process of ours, which also returns the CPU seconds (user + system,
        every thread, and its own children) it used, from wait4's rusage."""
        deadline = time.monotonic() + limit
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.stop(p, signal.SIGKILL)
                raise BenchError("%s did not exit within %.0fs" % (what, limit))
            time.sleep(0.002)
        p.returncode = os.waitstatus_to_exitcode(status)   # reaped here: Popen must not wait
        if p in self.procs:
            self.procs.remove(p)
        if p.returncode != 0:
            raise BenchError("%s exited %d; see %s" % (what, p.returncode,
                                                      self.logtail(p.log_name)))
        return ru.ru_utime + ru.ru_stime

    def logtail(self, name, n=800):
        try:
            with open(os.path.join(self.tmp, "log", name), "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def run(self, argv, limit, what, cwd=None, env=None, stdin=None):
        """Run to completion; returns (stdout, seconds). BenchError on failure."""
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, cwd=cwd or self.tmp, env=env or self.env,
                               stdin=stdin if stdin is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit)
        except subprocess.TimeoutExpired:
            raise BenchError("%s did not finish within %.0fs" % (what, limit))
        dt = time.monotonic() - t0
        if r.returncode != 0:
            raise BenchError("%s exited %d: %s" % (what, r.returncode,
                                                   (r.stderr or r.stdout)[-600:].decode(
                                                       errors="replace")))
        return r.stdout.decode(errors="replace"), dt

    def stop_all(self):
        for p in list(self.procs):
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        deadline = time.monotonic() + 10
        for p in list(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def fresh_dir(self, name):
        self.runs += 1
        d = os.path.join(self.tmp, "runs", "%03d-%s" % (self.runs, name))
        os.makedirs(d)
        return d

    # -- servers ---------------------------------------------------------------------------

    def start_servers(self):
        os.makedirs(os.path.join(self.tmp, "log"))
        os.makedirs(os.path.join(self.tmp, "redis"))
        self.rport = free_port()
        module = []
        if self.cfg.get("redis_module"):
            if not os.path.exists(MODULE):
                raise BenchError("%s is missing: run scripts/build (or bench/run "
                                 "--no-redis-module)" % MODULE)
            module = ["--loadmodule", MODULE]
        self.redis_proc = self.spawn(
            ["redis-server", "--port", str(self.rport), "--bind", "127.0.0.1",
             "--dir", os.path.join(self.tmp, "redis"), "--save", "", "--appendonly", "no",
             "--logfile", os.path.join(self.tmp, "log", "redis.log")] + module, "redis.out")

        def ping():
            try:
                r = Redis(self.rport, timeout=1)
                ok = r.cmd("PING") == "PONG"
                r.close()
                return ok
            except OSError:
                return False
        wait_until("redis-server", ping, 10, 0.05)
        self.r = Redis(self.rport)
        self.url = "redis://127.0.0.1:%d" % self.rport
        self.env["CQ_REDIS_URL"] = self.url
        self.env["REDIS_URL"] = self.url

        pf = os.path.join(self.tmp, "img.port")
        self.spawn([PY, os.path.join(SRC, "tests", "fixtures", "httpd.py"), "--generate",
                    "--latency", str(LATENCY), "--size", str(IMAGE_SIZE), "--port-file", pf],
                   "httpd.log")
        wait_until("the image server", lambda: os.path.exists(pf) and os.path.getsize(pf), 10)
        self.img = "http://127.0.0.1:%s/" % open(pf).read().strip()

        fixtures = self.make_gallery(IMAGES)
        pf = os.path.join(self.tmp, "api.port")
        self.spawn([PY, os.path.join(SRC, "tests/fixtures/fake_imgur.py"), "--fixtures", fixtures,
                    "--client-id", CLIENT_ID, "--image-base", self.img, "--port-file", pf],
                   "fake_imgur.log")
        wait_until("the fake Imgur API", lambda: os.path.exists(pf) and os.path.getsize(pf), 10)
        self.api = "http://127.0.0.1:%s/3/gallery/" % open(pf).read().strip()
        self.env["IMGUR_CLIENT_ID"] = CLIENT_ID
        self.env["IMGUR_API_URL"] = self.api
        log("redis-server on %s, images from %s (%.1f s each), Imgur API fake at %s"
            % (self.url, self.img, LATENCY, self.api))

    def make_gallery(self, njpeg):
        """A fixtures folder for fake_imgur.py whose gallery page 0 (the bare /3/gallery/ the
        lesson asks) holds the items of both recorded pages - albums, gifs, pngs and 50 jpegs -
        plus copies of the jpeg items under new ids up to `njpeg` .jpg links."""
        src = os.path.join(SRC, "tests/fixtures/imgur")
        dst = os.path.join(self.tmp, "gallery")
        shutil.copytree(src, dst)
        items = []
        for name in ("gallery_hot_viral_2015.json", "gallery_random_2015.json"):
            with open(os.path.join(src, name), encoding="utf-8") as f:
                items += json.load(f)["data"]
        jpegs = [it for it in items if str(it.get("link", "")).endswith(".jpg")]
        n = 0
        while sum(1 for it in items if str(it.get("link", "")).endswith(".jpg")) < njpeg:
            base = jpegs[n % len(jpegs)]
            n += 1
            it = dict(base)
            it["id"] = "%sb%d" % (base["id"], n)
            it["link"] = base["link"].replace(base["id"] + ".jpg", it["id"] + ".jpg")
            items.append(it)
        with open(os.path.join(dst, "gallery_hot_viral_2015.json"), "w", encoding="utf-8") as f:
            json.dump({"data": items, "success": True, "status": 200}, f)
        self.gallery_items = len(items)
        return dst

    def flush(self):
        self.r.cmd("FLUSHALL")

    def noop_file(self, n):
        path = os.path.join(self.tmp, "noop-%d.txt" % n)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("noop\n" * n)
        return path

    def cq_fill(self, n):
        with open(self.noop_file(n), "rb") as f:
            self.run([os.path.join(BIN, "cenqueue"), "--stdin", "--quiet"], 120,
                     "cenqueue --stdin", stdin=f)
        got = self.r.int("LLEN", "cq:queue:default")
        if got != n:
            raise BenchError("cenqueue: %d jobs in the queue, expected %d" % (got, n))

    def count_images(self, d, n):
        files = [f for f in os.listdir(d) if f.endswith(".jpg")] if os.path.isdir(d) else []
        sizes_ok = all(os.path.getsize(os.path.join(d, f)) == IMAGE_SIZE for f in files)
        if len(files) != n or not sizes_ok:
            raise BenchError("%s: %d of %d images (sizes %s)" % (d, len(files), n,
                                                                 "ok" if sizes_ok else "WRONG"))

    def add(self, key, sample, unit):
        e = self.res.setdefault(key, {"samples": [], "unit": unit})
        e["samples"].append(sample)

    # -- measurements: cq --------------------------------------------------------------------

    def drain(self, nworkers, njobs, flags, wrap=None, before=None, cworker=None,
              stderr=None):
        """Pre-fill njobs noop jobs, start nworkers `cworker --burst FLAGS...` (output to
        log/cworker-drain.log, or stderr to `stderr`), and time from their start until `HGET
        cq:stats processed` reaches njobs; then check that the queue and every in-flight list
        are empty and nothing failed. Returns {"rate": jobs/s, "seconds", and CPU a job in
        microseconds: "redis_us" (all of redis-server's threads) and "redis_main_us" (its
        main thread), from INFO cpu just before the workers start and after they exit, and
        "worker_us", the workers' own (user + system, their wait4 rusage, summed), and
        "others_cores", the CPUs that other processes of the machine kept busy meanwhile
        (/proc/stat)}. The CPU figures include the workers' start-up and exit, and Redis's
        the driver's HGET polls (every 5 ms: about 1 ms of Redis CPU a second)."""
        self.flush()
        self.cq_fill(njobs)
        if before:
            before()
        argv = (wrap or []) + [cworker or os.path.join(BIN, "cworker"), "--burst"] + flags
        kw = {"stderr": stderr} if stderr is not None else {}
        cmd0 = command_usec(self.r.info("commandstats"))
        cpu0, busy0, own0 = self.r.cpu(), cpu_busy_seconds(), own_cpu_seconds()
        t0 = time.monotonic()
        ws = [self.spawn(argv, "cworker-drain.log", **kw) for _ in range(nworkers)]
        wait_until("%d noop jobs processed" % njobs,
                   lambda: self.r.int("HGET", "cq:stats", "processed") >= njobs, 600)
        dt = time.monotonic() - t0
        worker_cpu = sum(self.wait_cpu(w, 60, "cworker --burst") for w in ws)
        cpu1, busy1, own1 = self.r.cpu(), cpu_busy_seconds(), own_cpu_seconds()
        # What the rest of the machine used meanwhile: all of it, less this process and the
        # workers it reaped (own), less Redis (a child not reaped yet).
        others = (busy1 - busy0) - (own1 - own0) - (cpu1["all"] - cpu0["all"])
        wall = time.monotonic() - t0
        cmd1 = command_usec(self.r.info("commandstats"))
        left = self.r.int("LLEN", "cq:queue:default")
        inflight = self.r.cmd("KEYS", "cq:inflight:*")
        failed = self.r.int("HGET", "cq:stats", "failed")
        if left or inflight or failed:
            raise BenchError("drain: %d left in the queue, in-flight lists %r, %d failed"
                             % (left, inflight, failed))
        return {"rate": njobs / dt, "seconds": dt,
                "redis_us": (cpu1["all"] - cpu0["all"]) * 1e6 / njobs,
                "redis_main_us": (cpu1["main"] - cpu0["main"]) * 1e6 / njobs,
                "worker_us": worker_cpu * 1e6 / njobs,
                "redis_cmd_us": (cmd1 - cmd0) / njobs,
                "others_cores": max(0.0, others) / wall}

    def cq_drain(self, nworkers, njobs, conc, wrap=None, before=None, cworker=None):
        """drain() of nworkers `cworker --burst -c conc --log-level warn`: (jobs/s, seconds)."""
        d = self.drain(nworkers, njobs, ["-c", str(conc), "--log-level", "warn"], wrap, before,
                       cworker)
        return d["rate"], d["seconds"]

    def cworker_defaults(self):
        """cworker's default concurrency and log level, as its --help states them."""
        out, _ = self.run([os.path.join(BIN, "cworker"), "--help"], 30, "cworker --help")
        conc = re.search(r"--concurrency N\b[^\n]*\(default: (\d+)\)", out)
        level = re.search(r"--log-level LEVEL\b[^\n]*\(default: (\w+)\)", out)
        if not conc or not level:
            raise BenchError("cworker --help does not say the default of --concurrency and of "
                             "--log-level as '(default: X)' on their lines")
        return {"concurrency": int(conc.group(1)), "log_level": level.group(1)}

    def noop_configs(self):
        """The no-op drains: (result key, workers, flags, where stderr goes). Tuned: 1, 2 and
        4 `cworker -c 64 --log-level warn`. Defaults: one cworker given only the Redis URL and
        the queue, as a user starts it, its stderr (a line a job at info) to a file, as a
        user redirects it, and to /dev/null; and the same with only --log-level warn, which
        tells what the logging costs."""
        c = self.cfg
        tuned = ["-c", str(c["drain_conc"]), "--log-level", "warn"]
        plain = ["-u", self.url, "default"]
        return ([("cq_drain_%d" % nw, nw, tuned, "log") for nw in c["workers"]] +
                [("cq_defaults", 1, plain, "file"),
                 ("cq_defaults_null", 1, plain, "null"),
                 ("cq_defaults_warn", 1, ["--log-level", "warn"] + plain, "file")])

    def phase_noop(self):
        """Every configuration of noop_configs once a round, in the opposite order every other
        round, so that a drift in the machine's load hits them alike."""
        c = self.cfg
        self.res["cworker_defaults"] = self.cworker_defaults()
        configs = self.noop_configs()
        for i in range(c["reps"]):
            probe(self, "noop round %d" % (i + 1))
            for key, nw, flags, err in (configs if i % 2 == 0 else configs[::-1]):
                d = self.noop_drain(key, nw, flags, err)
                log("no-op drain, %d x cworker %s (stderr: %s), %d jobs, run %d/%d: %.2fs, %s "
                    "jobs/s; CPU a job: Redis %.2f us (main thread %.2f), cworker %.2f us; Redis "
                    "inside the workers' commands %.2f us a job (clock)%s"
                    % (nw, " ".join(flags).replace("-u " + self.url, "-u URL"), err,
                       c["drain_jobs"], i + 1, c["reps"], d["seconds"], fmt_int(d["rate"]),
                       d["redis_us"], d["redis_main_us"], d["worker_us"], d["redis_cmd_us"],
                       ", %.0f bytes of log a job" % d["log_bytes"] if "log_bytes" in d
                       else ""))

    def noop_drain(self, key, nw, flags, err):
        """One drain of noop_configs, its samples saved under key: stderr to the drain log
        ("log"), to a file of its own that is measured and removed ("file") or to /dev/null."""
        n = self.cfg["drain_jobs"]
        path = os.path.join(self.tmp, "log", "%s.stderr" % key)
        f = None if err == "log" else open(path if err == "file" else os.devnull, "wb")
        try:
            d = self.drain(nw, n, flags, stderr=f)
        finally:
            if f is not None:
                f.close()
        if err == "file":
            d["log_bytes"] = os.path.getsize(path) / n
            os.unlink(path)
            self.add(key + "_log_bytes", d["log_bytes"], "bytes/job")
        self.add(key, d["rate"], "jobs/s")
        for k in ("redis_us", "redis_main_us", "redis_cmd_us", "worker_us"):
            self.add("%s_%s" % (key, k), d[k], "us/job")
        self.add(key + "_others_cores", d["others_cores"], "CPUs")
        return d

    def phase_enqueue(self):
        c = self.cfg
        n = c["enq_cq"]
        path = self.noop_file(n)
        for i in range(c["reps"]):
            self.flush()
            cpu0 = self.r.cpu()["main"]
            with open(path, "rb") as f:
                _, dt = self.run([os.path.join(BIN, "cenqueue"), "--stdin", "--quiet"], 120,
                                 "cenqueue --stdin", stdin=f)
            cpu = self.r.cpu()["main"] - cpu0
            got = self.r.int("LLEN", "cq:queue:default")
            if got != n:
                raise BenchError("cenqueue: %d jobs queued, expected %d" % (got, n))
            self.add("cq_enqueue", n / dt, "jobs/s")
            self.add("cq_enqueue_redis_us", cpu / n * 1e6, "us")
            log("cenqueue --stdin, %d jobs, run %d/%d: %.3fs, %s jobs/s, Redis %.2f us a job"
                % (n, i + 1, c["reps"], dt, fmt_int(n / dt), cpu / n * 1e6))
        n_cq, model = n, self.enqueue_model()
        n = c["enq_rq"]
        for i in range(c["reps"]):
            self.flush()
            out, _ = self.run([PY, os.path.join(HERE, "rq_bench.py"), self.url, "enqueue",
                               str(n)], 300, "rq_bench.py enqueue")
            dt = json.loads(out)["seconds"]
            got = self.r.int("LLEN", "rq:queue:default")
            if got != n:
                raise BenchError("enqueue_many: %d jobs queued, expected %d" % (got, n))
            self.add("rq_enqueue_many", n / dt, "jobs/s")
            log("RQ enqueue_many, %d jobs, run %d/%d: %.3fs, %s jobs/s"
                % (n, i + 1, c["reps"], dt, fmt_int(n / dt)))
        # The floor last: a failure there costs the floor only, not the measurements above.
        try:
            self.redis_floor_enqueue(n_cq, c["reps"], model)
        except BenchError as e:
            log("Redis alone, HSET + LPUSH: %s" % e)

    def enqueue_model(self):
        """What cenqueue wrote for its last job: (its record, its id, its status hash's fields
        and values), the model of redis_floor_enqueue's writes; None when there is none."""
        rec = self.r.cmd("LINDEX", "cq:queue:default", 0)
        try:
            jid = json.loads(rec)["id"]
        except (TypeError, ValueError, KeyError):
            return None
        fields = self.r.cmd("HGETALL", "cq:job:" + jid)
        return (rec.decode(), jid, [f.decode() for f in fields]) if fields else None

    def redis_floor_enqueue(self, n, reps, model):
        """What Redis itself does of the writes a bulk enqueue makes, sent as plain commands:
        for each of n jobs a new status hash with the fields cenqueue wrote (HSET, a key as
        long as cenqueue's) and a record as long as cenqueue's pushed onto a queue (LPUSH).
        redis-benchmark sends them, 4 connections pipelining 500 commands each, so that Redis
        is never idle: first the n HSETs, then the n LPUSHes. jobs/s = n / (the HSETs' time +
        the LPUSHes' time), each from redis-benchmark's own rate; Redis's main-thread CPU a
        job around both. The keys differ in a random 12-digit tail (-r), so a few of n may
        repeat (about n^2 / 2e9). model: enqueue_model() of cenqueue's last run."""
        if model is None or len(model[1]) < 12:
            raise BenchError("no record and status hash of cenqueue's to model the writes on")
        if n % 2000 != 0:
            raise BenchError("%d jobs: redis-benchmark sends whole pipelines of 500 on 4 "
                             "connections, so the count must be a multiple of 2,000" % n)
        rec, jid, fields = model
        tail = "__rand_int__"
        key_pat = "cq:job:" + jid[:-12] + tail
        rec_pat = rec.replace(jid, jid[:-12] + tail)
        hset = ["hset", key_pat] + fields
        lpush = ["lpush", "cq:queue:default", rec_pat]
        bench = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(self.rport), "-n", str(n),
                 "-c", "4", "-P", "500", "-r", "1000000000", "-q"]

        def rate(cmd):
            out, _ = self.run(bench + cmd, 120, "redis-benchmark " + cmd[0])
            m = re.findall(r"([0-9.]+) requests per second", out)
            if not m:
                raise BenchError("redis-benchmark %s: no rate in %r" % (cmd[0], out[-300:]))
            return float(m[-1])

        for i in range(reps):
            self.flush()
            cpu0 = self.r.cpu()["main"]
            t = n / rate(hset) + n / rate(lpush)
            cpu = self.r.cpu()["main"] - cpu0
            keys, qlen = self.r.int("DBSIZE"), self.r.int("LLEN", "cq:queue:default")
            if qlen != n or keys < n * 0.99:
                raise BenchError("redis-benchmark: %d keys and %d records, expected %d"
                                 % (keys, qlen, n))
            self.add("redis_floor_enqueue", n / t, "jobs/s")
            self.add("redis_floor_enqueue_redis_us", cpu / n * 1e6, "us")
            log("Redis alone, HSET + LPUSH of %d jobs by redis-benchmark, run %d/%d: %s jobs/s,"
                " Redis %.2f us a job" % (n, i + 1, reps, fmt_int(n / t), cpu / n * 1e6))

    # -- measurements: RQ workers ------------------------------------------------------------

    def rq_drain(self, njobs, worker_class=None):
        """Pre-fill njobs noop jobs (enqueue_many), start one `rq worker --burst`, and time from
        its first finished job to the last (its start-up is left out, in RQ's favour)."""
        self.flush()
        self.run([PY, os.path.join(HERE, "rq_bench.py"), self.url, "enqueue", str(njobs)], 300,
                 "rq_bench.py enqueue")
        argv = RQ + ["worker", "--burst", "-q", "-u", self.url]
        if worker_class:
            argv += ["--worker-class", worker_class]
        w = self.spawn(argv, "rq-drain.log")
        fin = lambda: self.r.int("ZCARD", "rq:finished:default")
        first = wait_until("RQ's first finished job", fin, 120, 0.002)
        t0 = time.monotonic()
        wait_until("%d RQ jobs finished" % njobs, lambda: fin() >= njobs, 1200, 0.005)
        dt = time.monotonic() - t0
        self.wait_exit(w, 60, "rq worker --burst")
        failed = self.r.int("ZCARD", "rq:failed:default")
        if failed:
            raise BenchError("RQ: %d noop jobs failed; see %s" % (failed, self.logtail(w.log_name)))
        return (njobs - first) / dt, dt

    def phase_rq(self):
        c = self.cfg
        for key, cls, n, name in (("rq_simple", "rq.SimpleWorker", c["rq_simple_jobs"],
                                   "SimpleWorker"),
                                  ("rq_fork", None, c["rq_fork_jobs"], "default (forking) Worker")):
            for i in range(c["rq_reps"]):
                rate, dt = self.rq_drain(n, cls)
                self.add(key, rate, "jobs/s")
                log("RQ %s, %d noop jobs, run %d/%d: %s jobs/s"
                    % (name, n, i + 1, c["rq_reps"], fmt_int(rate)))

    # -- latency -----------------------------------------------------------------------------

    def phase_latency(self):
        c = self.cfg
        n = c["lat_samples"]
        self.flush()
        w = self.spawn([os.path.join(BIN, "cworker"), "-c", "16", "--log-level", "warn"],
                       "cworker-latency.log")
        wait_until("cworker to register", lambda: self.r.int("SCARD", "cq:workers") >= 1, 10)
        time.sleep(0.3)
        lats = []
        for i in range(n):
            out, _ = self.run([os.path.join(BIN, "cenqueue"), "noop"], 30, "cenqueue noop")
            jid = out.strip()
            key = "cq:job:" + jid

            def finished():
                v = self.r.cmd("HMGET", key, "status", "enqueued_at", "started_at")
                return v if v[0] in (b"finished", b"failed") else None
            st, enq, started = wait_until("job %s to end" % jid, finished, 30, 0.0005)
            lats.append(float(started) - float(enq))
            time.sleep(random.uniform(0.01, 0.03))
        self.stop(w)
        self.res["cq_latency"] = {"samples": lats, "unit": "s"}
        log("cq latency (enqueue to start, idle cworker -c 16), %d samples: median %.3f ms, "
            "p99 %.3f ms" % (n, median(lats) * 1e3, pct(lats, 99) * 1e3))

        self.flush()
        w = self.spawn(RQ + ["worker", "-q", "--worker-class", "rq.SimpleWorker", "-u",
                             self.url], "rq-latency.log")
        wait_until("the RQ worker to register", lambda: self.r.int("SCARD", "rq:workers") >= 1,
                   30)
        time.sleep(0.3)
        out, _ = self.run([PY, os.path.join(HERE, "rq_bench.py"), self.url, "latency", str(n)],
                          600, "rq_bench.py latency")
        self.stop(w)
        lats = json.loads(out)["latencies"]
        self.res["rq_latency"] = {"samples": lats, "unit": "s"}
        log("RQ SimpleWorker latency, %d samples: median %.3f ms, p99 %.3f ms"
            % (n, median(lats) * 1e3, pct(lats, 99) * 1e3))

    def phase_recovery(self):
        """Worker A runs 4 long jobs and is SIGKILLed; worker B is idle. Timed from the kill
        until every one of the 4 jobs is back in the queue (its `recovered` count is 1), and
        until B has started all of them."""
        c = self.cfg
        cw = os.path.join(BIN, "cworker")
        for i in range(c["rec_reps"]):
            self.flush()
            a = self.spawn([cw, "-c", "4", "--log-level", "warn"], "cworker-recovery-a.log")
            wait_until("worker A to register", lambda: self.r.int("SCARD", "cq:workers") >= 1, 10)
            ids = []
            for _ in range(4):
                o, _ = self.run([os.path.join(BIN, "cenqueue"), "sleep", "60"], 30, "cenqueue")
                ids.append(o.strip())
            keys = ["cq:job:" + j for j in ids]

            def statuses(field):
                return [self.r.cmd("HGET", k, field) for k in keys]
            wait_until("worker A to start 4 jobs",
                       lambda: all(v == b"started" for v in statuses("status")), 10)
            awid = statuses("worker")[0]
            b = self.spawn([cw, "-c", "4", "--shutdown-timeout", "0", "--log-level", "warn"],
                           "cworker-recovery-b.log")
            wait_until("worker B to register", lambda: self.r.int("SCARD", "cq:workers") >= 2, 10)
            t0 = time.monotonic()
            self.stop(a, signal.SIGKILL)
            wait_until("the 4 jobs to be recovered",
                       lambda: all(v == b"1" for v in statuses("recovered")), 30, 0.01)
            t_back = time.monotonic() - t0
            wait_until("worker B to start them",
                       lambda: all(st == b"started" and wk != awid for st, wk in
                                   zip(statuses("status"), statuses("worker"))), 10, 0.01)
            t_run = time.monotonic() - t0
            self.stop(b)
            self.add("cq_recovery", t_back, "s")
            self.add("cq_recovery_restart", t_run, "s")
            log("recovery after SIGKILL, run %d/%d: back in the queue after %.2f s, running "
                "on another worker after %.2f s" % (i + 1, c["rec_reps"], t_back, t_run))

    # -- the lesson's download ---------------------------------------------------------------

    def cproducer_modes(self):
        """The local modes cproducer offers (--mode), read from its --help."""
        try:
            out, _ = self.run([os.path.join(BIN, "cproducer"), "--help"], 10, "cproducer --help")
        except BenchError:
            return set()
        m = re.search(r"--mode[^\n]*\n?[^\n]*", out)
        if not m:
            return set()
        return {x for x in ("sequential", "threads", "processes", "async") if x in out}

    def lesson_py(self, key, script, reps):
        for i in range(reps):
            d = self.fresh_dir(key)
            out, wall = self.run([PY, os.path.join(HERE, script)], 300, script, cwd=d)
            self.count_images(os.path.join(d, "images"), IMAGES)
            t = took(out)
            self.add(key, t, "s")
            log("%s, %d images, run %d/%d: Took %.3fs" % (script, IMAGES, i + 1, reps, t))

    def cq_local(self, key, mode, jobs, reps):
        for i in range(reps):
            d = self.fresh_dir(key)
            argv = [os.path.join(BIN, "cproducer"), "--api-url", self.api, "--mode", mode,
                    "--dir", "images"]
            if jobs:
                argv += ["-j", str(jobs)]
            out, wall = self.run(argv, 300, "cproducer --mode " + mode, cwd=d)
            self.count_images(os.path.join(d, "images"), IMAGES)
            t = took(out)
            self.add(key, t, "s")
            log("cproducer --mode %s%s, %d images, run %d/%d: Took %.2fs (wall %.3fs)"
                % (mode, " -j %d" % jobs if jobs else "", IMAGES, i + 1, reps, t, wall))

    def cq_distributed(self, reps):
        """cproducer enqueues the gallery's jobs; 2 running, idle `cworker -c 64` download them.
        Timed from cproducer's start until the processed counter has grown by IMAGES."""
        self.flush()
        root = self.fresh_dir("cq-workers")
        ws = [self.spawn([os.path.join(BIN, "cworker"), "-c", "64", "--download-root", root,
                          "--log-level", "warn"], "cworker-download.log") for _ in range(2)]
        wait_until("2 cworkers to register", lambda: self.r.int("SCARD", "cq:workers") >= 2, 10)
        time.sleep(0.3)
        for i in range(reps):
            sub = "r%d" % i
            base = self.r.int("HGET", "cq:stats", "processed")
            t0 = time.monotonic()
            p = self.spawn([os.path.join(BIN, "cproducer"), "--api-url", self.api, "--dir",
                            sub + "/images"], "cproducer.log")
            wait_until("%d downloads" % IMAGES,
                       lambda: self.r.int("HGET", "cq:stats", "processed") >= base + IMAGES,
                       120, 0.002)
            dt = time.monotonic() - t0
            self.wait_exit(p, 30, "cproducer")
            failed = self.r.int("HGET", "cq:stats", "failed")
            if failed:
                raise BenchError("%d download jobs failed: %s"
                                 % (failed, self.logtail("cworker-download.log")))
            self.count_images(os.path.join(root, sub, "images"), IMAGES)
            self.add("cq_dist", dt, "s")
            log("cproducer + 2 cworker -c 64, %d images, run %d/%d: %.3fs" % (IMAGES, i + 1,
                                                                               reps, dt))
        for w in ws:
            self.stop(w)

    def rq_distributed(self, reps):
        """The lesson's RQ version: 8 running, idle `rq worker` (the default forking worker, as
        `rqworker` in the article); lesson_rq.py enqueues and waits."""
        self.flush()
        wd = self.fresh_dir("rq-workers")
        ws = [self.spawn(RQ + ["worker", "-q", "-u", self.url], "rq-download.log", cwd=wd)
              for _ in range(8)]
        wait_until("8 RQ workers to register", lambda: self.r.int("SCARD", "rq:workers") >= 8,
                   60, 0.05)
        time.sleep(0.3)
        for i in range(reps):
            d = self.fresh_dir("rq8")
            out, _ = self.run([PY, os.path.join(HERE, "lesson_rq.py")], 300, "lesson_rq.py",
                              cwd=d)
            self.count_images(os.path.join(d, "images"), IMAGES)
            t = took(out)
            self.add("rq8", t, "s")
            log("lesson_rq.py + 8 rq workers, %d images, run %d/%d: Took %.3fs"
                % (IMAGES, i + 1, reps, t))
        for w in ws:
            self.stop(w)

    def phase_lesson(self):
        c = self.cfg
        modes = self.cproducer_modes()
        self.res["cproducer_modes"] = sorted(modes)
        self.lesson_py("py_single", "lesson_single.py", c["slow_reps"])
        self.lesson_py("py_threads", "lesson_threads.py", c["mid_reps"])
        self.lesson_py("py_processes", "lesson_processes.py", c["mid_reps"])
        self.rq_distributed(c["mid_reps"])
        if modes:
            for key, mode, j, reps in (("cq_sequential", "sequential", 0, c["slow_reps"]),
                                       ("cq_threads", "threads", 8, c["mid_reps"]),
                                       ("cq_processes", "processes", 8, c["mid_reps"]),
                                       ("cq_async", "async", 64, c["reps"])):
                if mode in modes:
                    self.cq_local(key, mode, j, reps)
        else:
            log("cproducer has no --mode yet: the local modes are not measured")
        self.cq_distributed(c["reps"])

    # -- memory ------------------------------------------------------------------------------

    def timed_rss(self, argv, what, cwd=None, limit=600):
        """Run argv under /usr/bin/time; returns the peak RSS in KiB (the largest of the
        process and the children it waited for - for RQ, its work horses)."""
        f = os.path.join(self.tmp, "time.out")
        self.run(["/usr/bin/time", "-f", "%M", "-o", f] + argv, limit, what, cwd=cwd)
        with open(f) as fh:
            return int(fh.read().strip().splitlines()[-1])

    def watch_rss(self, argv, what, cwd=None, limit=600):
        """Like timed_rss, and while it runs, poll the process's /proc status every 5 ms:
        returns (peak KiB from time, {"anon": KiB, "file": KiB, "pss": KiB, "pss_anon": KiB,
        "threads": n, "maps": [(KiB, mapping)], "rollup": smaps_rollup}) with the largest
        anonymous and file-backed resident sizes and proportional set size seen, and a
        breakdown by mapping taken when the resident size was largest."""
        f = os.path.join(self.tmp, "time.out")
        if os.path.exists(f):
            os.unlink(f)
        tp = self.spawn(["/usr/bin/time", "-f", "%M", "-o", f] + argv, "rss-watch.log", cwd=cwd)
        kids = "/proc/%d/task/%d/children" % (tp.pid, tp.pid)

        def child():
            try:
                with open(kids) as fh:
                    return fh.read().split()[0]
            except (OSError, IndexError):
                return tp.poll() is not None and "gone"
        pid = wait_until(what + " to start", child, 10, 0.001)
        peak = {"anon": 0, "file": 0, "pss": 0, "pss_anon": 0, "threads": 0, "maps": []}
        best = 0
        deadline = time.monotonic() + limit
        while tp.poll() is None and time.monotonic() < deadline and pid != "gone":
            try:
                with open("/proc/%s/status" % pid) as fh:
                    st = dict(l.split(":", 1) for l in fh.read().splitlines() if ":" in l)
                anon = int(st.get("RssAnon", "0 kB").split()[0])
                filek = int(st.get("RssFile", "0 kB").split()[0])
                peak["anon"] = max(peak["anon"], anon)
                peak["file"] = max(peak["file"], filek)
                peak["threads"] = max(peak["threads"], int(st.get("Threads", "0")))
                roll = smaps_rollup(pid)
                peak["pss"] = max(peak["pss"], roll.get("Pss", 0))
                peak["pss_anon"] = max(peak["pss_anon"], roll.get("Pss_Anon", 0))
                if anon + filek > best:
                    maps = smaps_by_mapping(pid)
                    if maps and roll:      # empty when the process has just exited
                        best = anon + filek
                        peak["maps"], peak["rollup"] = maps, roll
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        self.wait_exit(tp, max(1.0, deadline - time.monotonic()), what)
        with open(f) as fh:
            return int(fh.read().strip().splitlines()[-1]), peak

    def phase_memory(self):
        c = self.cfg
        for i in range(c["mem_reps"]):
            self.flush()
            root = self.fresh_dir("mem-cq")
            self.run([os.path.join(BIN, "cproducer"), "--api-url", self.api, "--dir", "images"],
                     60, "cproducer")
            kib, peak = self.watch_rss([os.path.join(BIN, "cworker"), "-c", "64", "--burst",
                                        "--download-root", root, "--log-level", "warn"],
                                       "cworker -c 64 --burst")
            self.count_images(os.path.join(root, "images"), IMAGES)
            self.add("cq_rss", kib * 1024, "bytes")
            self.add("cq_rss_anon", peak["anon"] * 1024, "bytes")
            self.add("cq_rss_pss", peak["pss"] * 1024, "bytes")
            self.res.setdefault("cq_rss_parts", []).append(peak)
            log("peak RSS of cworker -c 64 downloading %d images, run %d/%d: %.1f MB "
                "(largest seen: %.1f MB anonymous, %.1f MB file-backed, PSS %.1f MB; %d "
                "threads)" % (IMAGES, i + 1, c["mem_reps"], kib * 1024 / 1e6,
                              peak["anon"] * 1024 / 1e6, peak["file"] * 1024 / 1e6,
                              peak["pss"] * 1024 / 1e6, peak["threads"]))
        # References: the same worker idle, and the floor of any program using libcurl.
        self.flush()
        w = self.spawn([os.path.join(BIN, "cworker"), "-c", "64", "--log-level", "warn"],
                       "cworker-idle.log")
        wait_until("cworker to register", lambda: self.r.int("SCARD", "cq:workers") >= 1, 10)
        time.sleep(1.0)
        with open("/proc/%d/status" % w.pid) as fh:
            st = dict(l.split(":", 1) for l in fh.read().splitlines() if ":" in l)
        self.res["cq_rss_idle"] = {k: int(st[k].split()[0]) for k in ("VmRSS", "RssAnon",
                                                                        "RssFile")}
        self.stop(w)
        floor = os.path.join(self.tmp, "rss_floor")
        try:
            self.run(["cc", "-O2", "-o", floor, os.path.join(HERE, "rss_floor.c"), "-lcurl"], 120,
                     "cc rss_floor.c")
            out, _ = self.run([floor, self.img + "floor.jpg", "64"], 30, "rss_floor")
            fl = {l.split()[0]: [int(x) for x in l.split()[1:]]
                  for l in out.splitlines() if len(l.split()) == 4}
            if "ok 64" not in out.splitlines():   # a download failed: not a floor of 64
                fl.pop("downloads_64", None)
                log("rss_floor: not every one of the 64 downloads ended with a 200")
            self.res["rss_floor"] = fl
        except BenchError as e:
            log("rss_floor: %s" % e)
        fl = self.res.get("rss_floor", {})
        log("references: cworker -c 64 idle %.1f MB; a program that only loads libcurl and "
            "calls curl_global_init + curl_easy_init: %s; the same with 64 downloads in flight "
            "on one multi handle: %s anonymous" % (
                self.res["cq_rss_idle"]["VmRSS"] * 1024 / 1e6,
                "%.1f MB" % (fl["easy_init"][0] * 1024 / 1e6) if "easy_init" in fl else "-",
                "%.1f MB" % (fl["downloads_64"][1] * 1024 / 1e6) if "downloads_64" in fl
                else "-"))
        # One RQ worker (the default, forking one) on the same downloads.
        self.flush()
        n = c["mem_rq_jobs"]
        d = self.fresh_dir("mem-rq")
        self.run([PY, "-c", ENQUEUE_DOWNLOADS, self.url, os.path.join(d, "images"), str(n)], 60,
                 "enqueue RQ download jobs", cwd=d)
        kib = self.timed_rss(RQ + ["worker", "--burst", "-q", "-u", self.url], "rq worker --burst",
                             cwd=d)
        self.count_images(os.path.join(d, "images"), n)
        self.add("rq_rss", kib * 1024, "bytes")
        log("peak RSS of one rq worker (and its work horses) downloading %d images: %.1f MB"
            % (n, kib * 1024 / 1e6))

    # -- callgrind ---------------------------------------------------------------------------

    @staticmethod
    def callgrind_total(path):
        with open(path) as f:
            for line in f:
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        raise BenchError("no totals in %s" % path)

    def phase_callgrind(self):
        c = self.cfg
        vg = ["valgrind", "--tool=callgrind", "--quiet"]
        for n in c["cg_worker"]:
            self.flush()
            self.cq_fill(n)
            out = os.path.join(self.tmp, "callgrind.worker.%d" % n)
            self.run(vg + ["--callgrind-out-file=" + out, os.path.join(BIN, "cworker"), "-c", "16",
                           "--burst", "--log-level", "warn"], 1800, "cworker under callgrind")
            if self.r.int("HGET", "cq:stats", "processed") != n:
                raise BenchError("callgrind run processed %s of %d"
                                 % (self.r.int("HGET", "cq:stats", "processed"), n))
            ir = self.callgrind_total(out)
            self.res["cg_worker_%d" % n] = {"samples": [ir], "unit": "Ir"}
            if n == max(c["cg_worker"]):
                self.res["cg_worker_top"] = callgrind_top(out, n)
            log("callgrind: cworker -c 16 --burst, %d noop jobs: %s instructions, %s per job"
                % (n, fmt_int(ir), fmt_int(ir / n)))
        for n in c["cg_enqueue"]:
            self.flush()
            out = os.path.join(self.tmp, "callgrind.enqueue.%d" % n)
            with open(self.noop_file(n), "rb") as f:
                self.run(vg + ["--callgrind-out-file=" + out, os.path.join(BIN, "cenqueue"),
                               "--stdin", "--quiet"], 1800, "cenqueue under callgrind", stdin=f)
            ir = self.callgrind_total(out)
            self.res["cg_enqueue_%d" % n] = {"samples": [ir], "unit": "Ir"}
            if n == max(c["cg_enqueue"]):
                self.res["cg_enqueue_top"] = callgrind_top(out, n)
            log("callgrind: cenqueue --stdin, %d jobs: %s instructions, %s per job"
                % (n, fmt_int(ir), fmt_int(ir / n)))
        self.callgrind_check()

    def callgrind_check(self):
        """The numbers of the regression check (tests/test_perf_callgrind.sh, CTest's
        perf_callgrind): the same script measures them, on a Redis of its own, and they are
        shown against its committed baseline."""
        out, dt = self.run(["bash", os.path.join(SRC, "tests", "test_perf_callgrind.sh"),
                            os.path.dirname(BIN), "--measure"], 600,
                           "tests/test_perf_callgrind.sh --measure")
        chk = {"baseline": read_baseline(CG_BASELINE), "seconds": dt}
        for line in out.splitlines():
            p_ = line.split()
            if len(p_) == 3 and p_[0] == "per-job":
                chk[p_[1]] = int(p_[2])
        if "cworker" not in chk or "cenqueue" not in chk:
            raise BenchError("tests/test_perf_callgrind.sh --measure printed no per-job lines: "
                             "%r" % out[-300:])
        self.res["cg_check"] = chk
        log("regression check's measure (%.0f s): cworker %s, cenqueue %s instructions a job; "
            "baseline %s, %s" % (dt, fmt_int(chk["cworker"]), fmt_int(chk["cenqueue"]),
                                 chk["baseline"].get("cworker", "-"),
                                 chk["baseline"].get("cenqueue", "-")))

    # -- profile -----------------------------------------------------------------------------

    def phase_profile(self):
        """Where the time of the 1-worker no-op drain goes: CPU and syscalls per job of cworker
        and of redis-server (perf stat), Redis commands and reads per job (INFO), and a
        system-wide sampled profile (perf record -a -g) split by process and symbol."""
        c = self.cfg
        n = c["prof_jobs"]
        if not have_perf():
            self.res["profile"] = {"error": "perf is not usable here"}
            log("perf is not usable here: no profile")
            return
        prof = {"jobs": n}
        prof.update(self.profile_drain(n, c["drain_conc"]))
        prof["enqueue"] = self.profile_enqueue(c["enq_cq"])
        if shutil.which("strace"):
            prof["enqueue"]["syscalls"] = self.enqueue_syscalls(min(c["enq_cq"], 20_000))
        prof.update(self.profile_record(n, c["drain_conc"]))
        self.res["profile"] = prof
        log("profile: drain %s jobs/s; cworker %.1f us CPU/job, redis-server %.1f us CPU/job"
            % (fmt_int(prof["rate"]), prof["worker"].get("task-clock", 0) * 1e3 / n,
               prof["redis"].get("task-clock", 0) * 1e3 / n))

    def perf_stat_redis(self, out):
        """perf stat attached to redis-server, its counters written to `out` when stopped."""
        p = self.spawn(["perf", "stat", "-x,", "-e", PERF_EVENTS, "-o", out, "-p",
                        str(self.redis_proc.pid)], "perf-stat.log")
        time.sleep(0.3)
        return p

    def profile_drain(self, n, conc):
        """Counters of a drain: perf stat on cworker (as a wrapper) and on redis-server
        (attached just before the worker starts, after the prefill), and Redis's INFO around
        the drain."""
        st_w = os.path.join(self.tmp, "perfstat.worker")
        st_r = os.path.join(self.tmp, "perfstat.redis")
        held = {}

        def before():
            held["perf"] = self.perf_stat_redis(st_r)
            held["info"] = self.r.info("all")
        rate, dt = self.cq_drain(1, n, conc, wrap=["perf", "stat", "-x,", "-e", PERF_EVENTS,
                                                   "-o", st_w, "--"], before=before)
        after = self.r.info("all")
        self.stop(held["perf"], signal.SIGINT)
        return {"rate": rate, "seconds": dt, "worker": read_perf_stat(st_w),
                "redis": read_perf_stat(st_r), "redis_info": redis_deltas(held["info"], after, n)}

    def profile_enqueue(self, n):
        """The same counters for `cenqueue --stdin` (bulk enqueue) of n jobs."""
        self.flush()
        st_e = os.path.join(self.tmp, "perfstat.enqueue")
        st_r = os.path.join(self.tmp, "perfstat.redis2")
        pr = self.perf_stat_redis(st_r)
        b = self.r.info("all")
        with open(self.noop_file(n), "rb") as f:
            _, dt = self.run(["perf", "stat", "-x,", "-e", PERF_EVENTS, "-o", st_e, "--",
                              os.path.join(BIN, "cenqueue"), "--stdin", "--quiet"], 300,
                             "cenqueue under perf stat", stdin=f)
        a = self.r.info("all")
        self.stop(pr, signal.SIGINT)
        return {"jobs": n, "seconds": dt, "client": read_perf_stat(st_e),
                "redis": read_perf_stat(st_r), "redis_info": redis_deltas(b, a, n)}

    def enqueue_syscalls(self, n):
        """System calls of cenqueue by name (strace -c), per job: which ones, not just how
        many. The 8 most frequent, as [(calls per job, name)]."""
        self.flush()
        sc = os.path.join(self.tmp, "strace.enqueue")
        with open(self.noop_file(n), "rb") as f:
            self.run(["strace", "-f", "-c", "-o", sc, os.path.join(BIN, "cenqueue"),
                      "--stdin", "--quiet"], 300, "cenqueue under strace", stdin=f)
        calls = []
        with open(sc) as fh:
            for line in fh:
                p_ = line.split()
                if len(p_) >= 5 and p_[3].isdigit() and p_[-1] != "total":
                    calls.append((int(p_[3]) / n, p_[-1]))
        return sorted(calls, reverse=True)[:8]

    def profile_record(self, n, conc):
        """A system-wide sampled profile of another drain, split by process and symbol."""
        data = os.path.join(self.tmp, "perf.data")
        held = {}

        def record():
            held["rec"] = self.spawn(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F",
                                      "999", "-o", data], "perf-record.log")
            time.sleep(0.5)
        rate, dt = self.cq_drain(1, n, conc, before=record)
        self.stop(held["rec"], signal.SIGINT, 120)
        return {
            "rate3": rate, "record_seconds": dt,
            "by_comm": perf_report(data, ["--sort", "comm"], 8),
            "worker_dso": perf_report(data, ["--comm", "cworker", "--sort", "dso"], 10),
            "worker_sym": perf_report(data, ["--comm", "cworker", "--sort", "dso,sym"], 25),
            "redis_sym": perf_report(data, ["--comm", "redis-server", "--sort", "dso,sym"], 15),
        }


# Enqueue RQ download_link jobs for the first N .jpg links of the fake gallery (memory phase).
ENQUEUE_DOWNLOADS = r"""
import os, sys
from redis import Redis
from rq import Queue
from lesson_download import get_links
from rq_jobs import download_link
url, directory, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(directory, exist_ok=True)
links = [l for l in get_links(os.environ['IMGUR_CLIENT_ID']) if l.endswith('.jpg')][:n]
q = Queue(connection=Redis.from_url(url))
for link in links:
    q.enqueue(download_link, directory, link)
"""


def read_baseline(path):
    """The key=value lines of tests/perf/callgrind-baseline (numbers as int), {} if none."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep and re.match(r"^[a-z]+$", k):
                    out[k] = int(v) if v.isdigit() else v
    except OSError:
        pass
    return out


def callgrind_fn(text):
    """'/work/main/common/queue.c:cycle [/x/cworker]' -> 'cycle (common/queue.c)';
    '???:sdscatfmt [/usr/lib/.../libhiredis.so.0.14]' -> 'sdscatfmt (libhiredis.so.0.14)'."""
    m = re.match(r"(.*?):(\S+)(?: \[(.*)\])?$", text)
    if not m:
        return text
    path, fn, obj = m.groups()
    if path.startswith(SRC + "/"):
        return "%s (%s)" % (fn, path[len(SRC) + 1:])
    return "%s (%s)" % (fn, os.path.basename(obj) if obj else path)


def callgrind_top(path, jobs, own=16, lib=12):
    """Inclusive instructions per job of cq's own functions, and the libraries' functions with
    the most exclusive instructions per job, from callgrind_annotate."""
    out = {}
    for key, inclusive in (("inclusive", "yes"), ("exclusive", "no")):
        try:
            r = subprocess.run(["callgrind_annotate", "--inclusive=" + inclusive, path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
        except (OSError, subprocess.TimeoutExpired):
            return {}
        rows = []
        for line in r.stdout.decode(errors="replace").splitlines():
            m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*\S)\s*$", line)
            if not m or "PROGRAM TOTALS" in line:
                continue
            ir = int(m.group(1).replace(",", ""))
            text = m.group(3)
            if inclusive == "yes":
                if not text.startswith(SRC + "/") or ":main " in text:
                    continue
            rows.append((ir / jobs, float(m.group(2)), callgrind_fn(text)))
            if len(rows) >= (own if inclusive == "yes" else lib):
                break
        out[key] = rows
    return out


def smaps_rollup(pid):
    """{"Rss": KiB, "Pss": KiB, "Pss_Anon": KiB, "Pss_File": KiB, ...} of a process."""
    out = {}
    try:
        with open("/proc/%s/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except (OSError, ValueError):
        pass
    return out


def smaps_by_mapping(pid):
    """Resident KiB by mapping (file path, [heap], [stack], or "anonymous") of a process."""
    import resource
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    out = {}
    name = None
    try:
        with open("/proc/%s/smaps" % pid) as f:
            for line in f:
                m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
                if m:
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else "anonymous"
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                    if name == "anonymous":
                        # glibc gives each thread a mapping of exactly the stack limit.
                        name = ("anonymous: thread stacks" if size == stack
                                else "anonymous: malloc arenas, library data")
                elif line.startswith("Rss:") and name is not None:
                    out[name] = out.get(name, 0) + int(line.split()[1])
    except (OSError, ValueError):
        return []
    return sorted(((v, k) for k, v in out.items() if v > 0), reverse=True)


def command_usec(stats):
    """Microseconds Redis spent inside the workers' own commands so far (INFO commandstats:
    the scripts and cq's module commands, each with the commands it ran), timed by the clock,
    not the CPU: beside Redis's CPU it tells a Redis that worked more from one held up."""
    total = 0
    for k, v in stats.items():
        name = k[len("cmdstat_"):]
        if k.startswith("cmdstat_") and (name in ("eval", "evalsha") or name.startswith("cq.")):
            m = re.search(r"usec=(\d+)", v)
            total += int(m.group(1)) if m else 0
    return total


def cpu_busy_seconds():
    """Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    """CPU seconds of this process and of every descendant it (or they) waited for."""
    import resource
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def busy_others():
    """Processes outside this run using the CPU right now: [(percent of a core, command)],
    from two /proc snapshots 0.5 s apart."""
    def snap():
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
                comm = st[st.index("(") + 1:st.rindex(")")]
                rest = st[st.rindex(")") + 2:].split()
                out[pid] = (comm, int(rest[11]) + int(rest[12]), int(rest[1]))
            except (OSError, ValueError, IndexError):
                pass
        return out
    a = snap()
    time.sleep(0.5)
    b = snap()
    hz = os.sysconf("SC_CLK_TCK")
    rows = []
    for pid, (comm, t, _) in b.items():
        if pid in a and t > a[pid][1] and int(pid) != os.getpid():
            rows.append(((t - a[pid][1]) / hz / 0.5 * 100, comm))
    return sorted(rows, reverse=True)[:5]


def have_perf():
    if not shutil.which("perf"):
        return False
    try:
        return subprocess.run(["perf", "stat", "-e", "task-clock,raw_syscalls:sys_enter", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def read_perf_stat(path):
    """perf stat -x, output -> {event: value}; task-clock in ms."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) >= 3 and parts[0] and not line.startswith("#"):
                    try:
                        out[parts[2]] = float(parts[0])
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def perf_report(data, args, top):
    """The first `top` rows of a perf report: [(percent, samples, name)]."""
    try:
        r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-n", "-g",
                            "none", "--percent-limit", "0.3"] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    except subprocess.TimeoutExpired:
        return []
    rows = []
    for line in r.stdout.decode(errors="replace").splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+(\d+)\s+(.*\S)\s*$", line)
        if m:
            rows.append((float(m.group(1)), int(m.group(2)), re.sub(r"\s+", " ", m.group(3))))
        if len(rows) >= top:
            break
    return rows


def redis_deltas(b, a, n):
    """Per-job Redis work between two INFO ALL snapshots."""
    def f(d, k):
        try:
            return float(d.get(k, 0))
        except ValueError:
            return 0.0
    out = {
        "commands_per_job": (f(a, "total_commands_processed") - f(b, "total_commands_processed")) / n,
        "reads_per_job": (f(a, "total_reads_processed") - f(b, "total_reads_processed")) / n,
        "cpu_us_per_job": ((f(a, "used_cpu_user") + f(a, "used_cpu_sys"))
                           - (f(b, "used_cpu_user") + f(b, "used_cpu_sys"))) * 1e6 / n,
        "net_in_per_job": (f(a, "total_net_input_bytes") - f(b, "total_net_input_bytes")) / n,
        "net_out_per_job": (f(a, "total_net_output_bytes") - f(b, "total_net_output_bytes")) / n,
    }
    calls = {}
    for k, v in a.items():
        if k.startswith("cmdstat_"):
            m = re.search(r"calls=(\d+)", v)
            mb = re.search(r"calls=(\d+)", b.get(k, "calls=0"))
            d = int(m.group(1)) - int(mb.group(1)) if m and mb else 0
            if d > 0:
                calls[k[len("cmdstat_"):]] = d / n
    out["calls_per_job"] = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
    return out


def machine_info():
    def cmd(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=30, cwd=SRC).stdout.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
                break
    commit = cmd(["git", "rev-parse", "--short=12", "HEAD"])
    dirty = cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    redis_v = re.search(r"v=(\S+)", cmd(["redis-server", "--version"]))
    rq_v = cmd([PY, "-c", "import rq, redis; print(rq.__version__, redis.__version__)"]).split()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": os.uname().release,
        "os": cmd(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "redis": redis_v.group(1) if redis_v else "?",
        "rq": rq_v[0] if rq_v else "?",
        "redis_py": rq_v[1] if len(rq_v) > 1 else "?",
        "python": cmd([PY, "--version"]).replace("Python ", ""),
        "cc": cmd(["cc", "--version"]).splitlines()[0] if shutil.which("cc") else "?",
        "valgrind": cmd(["valgrind", "--version"]) if shutil.which("valgrind") else "-",
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load": open("/proc/loadavg").read().split()[:3],
    }



# ---- the run ------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(
        prog="bench/run", description="cq against RQ and the lesson's scripts: measure, save the raw results in "
        "bench/out/<mode>.json, and write the Markdown report from them (bench/report.py)")
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller counts")
    ap.add_argument("--only", metavar="PHASES", help="comma-separated phases to run (%s)" % ",".join(PHASES))
    ap.add_argument("--out", metavar="FILE", help="where to write the Markdown report (default: "
                    "docs/BENCHMARKS.md for a full run of every phase, else "
                    "bench/out/BENCHMARKS-quick.md or bench/out/BENCHMARKS-partial.md)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    ap.add_argument("--no-redis-module", dest="redis_module", action="store_false",
                    help="run Redis without cq's module (build/lib/cq-redis.so, loaded by "
                    "default as docker-compose.yml loads it): the workers' outcomes then go "
                    "through the apply script")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing and start no server: write the report again from "
                    "the saved results of the mode --quick/--only select (bench/out/full.json, "
                    "quick.json, full-partial.json or quick-partial.json); the default --out "
                    "follows the mode of those results, and docs/BENCHMARKS.md is only "
                    "rewritten from results that hold every phase")
    ap.add_argument("--from", dest="from_json", metavar="JSON",
                    help="with --report-only: the saved results to read instead")
    args = ap.parse_args()
    args.phases = PHASES
    if args.only:
        args.phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
        bad = [p for p in args.phases if p not in PHASES]
        if bad:
            ap.error("unknown phase %s (phases: %s)" % (",".join(bad), ",".join(PHASES)))
    if args.from_json and not args.report_only:
        ap.error("--from needs --report-only")
    args.name = ("quick" if args.quick else "full") + ("-partial" if args.only else "")
    args.results = (os.path.abspath(args.from_json) if args.from_json
                    else os.path.join(HERE, "out", "%s.json" % args.name))
    return args


def check_tools(phases):
    for tool in ("redis-server", "redis-benchmark", "/usr/bin/time", PY):
        if not shutil.which(tool):
            sys.exit("bench: %s is missing (run bench/deps)" % tool)
    for b in ("cworker", "cenqueue", "cproducer"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit("bench: %s/%s is missing (run scripts/build)" % (BIN, b))
    if "callgrind" in phases and not shutil.which("valgrind"):
        sys.exit("bench: valgrind is missing (run bench/deps)")


def cpu_probe(n=300_000):
    """The CPU time, in ms, of a fixed piece of work in this process. On an undisturbed
    machine it takes the same each time; it takes longer when the host runs this machine's
    CPUs slower (another guest on the same cores, a lower clock), which neither the load nor
    the other processes' CPU time shows, and which slows Redis and the workers alike."""
    t0 = time.process_time()
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return (time.process_time() - t0) * 1000.0


def probe(b, where):
    """A cpu_probe sample, saved with where it was taken."""
    ms = cpu_probe()
    b.res.setdefault("cpu_probe", []).append({"where": where, "ms": ms})
    return ms


def run_phases(b, phases, errors):
    """Run each phase; a failed one is noted in `errors` and the next one still runs."""
    for ph in phases:
        log("== %s (cpu probe %.1f ms)" % (ph, probe(b, ph)))
        try:
            getattr(b, "phase_" + ph)()
        except BenchError as e:
            errors.append("%s: %s" % (ph, e))
            log("FAILED %s: %s" % (ph, e))
            # Workers of a failed phase must not spill into the next one.
            for p in list(b.procs):
                if p is not b.redis_proc and p.log_name not in ("httpd.log", "fake_imgur.log"):
                    b.stop(p, signal.SIGKILL)
    log("cpu probe at the end %.1f ms" % probe(b, "end"))


def start_machine(command, cfg, phases):
    """The machine and how busy it is before the run (logged as well)."""
    machine = machine_info()
    machine["load_start"] = machine["load"]
    log("%s run (%s), phases: %s" % (cfg["name"], command, ", ".join(phases)))
    log("machine: %s x %s, %s, Redis %s, RQ %s, tree %s, load %s"
        % (machine["nproc"], machine["cpu"], machine["memory"], machine["redis"], machine["rq"],
           machine["commit"], " ".join(machine["load"])))
    others = busy_others()
    machine["busy_start"] = others
    if others and others[0][0] > 20:
        log("WARNING: other processes are using the CPU: %s - numbers will be noisy"
            % ", ".join("%s %.0f%%" % (n, p_) for p_, n in others if p_ > 5))
    return machine


def measure(args):
    """Run the phases on servers of their own and save, in args.results, everything the report
    needs. Returns 0, or the exit status when interrupted (then nothing is saved)."""
    cfg = dict(QUICK if args.quick else FULL, name=args.name, redis_module=args.redis_module)

    def on_term(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    command = "bench/run" + "".join(" " + a for a in sys.argv[1:])
    machine = start_machine(command, cfg, args.phases)
    machine["redis_module"] = "cq-redis.so" if args.redis_module else ""
    busy0, own0 = cpu_busy_seconds(), own_cpu_seconds()
    tmp = tempfile.mkdtemp(prefix="cq-bench.")
    b = Bench(cfg, tmp)
    errors = []
    interrupted = 0
    try:
        b.start_servers()
        run_phases(b, args.phases, errors)
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = e.code if isinstance(e, SystemExit) else 130
    finally:
        b.stop_all()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        log("interrupted: every server and worker is stopped; no results saved, no report "
            "written")
        return interrupted
    machine["other_cpu"] = max(0.0, (cpu_busy_seconds() - busy0) - (own_cpu_seconds() - own0))
    machine["load_end"] = open("/proc/loadavg").read().split()[:3]
    saved = {"command": command, "machine": machine, "config": cfg, "phases": list(args.phases),
             "setup": {"images": IMAGES, "latency": LATENCY, "image_size": IMAGE_SIZE,
                       "gallery_items": b.gallery_items},
             "results": b.res, "notes": b.notes, "errors": errors,
             "seconds": time.monotonic() - T0}
    report.write(json.dumps(saved, indent=1) + "\n", args.results)
    return 0


def shown(path):
    """A path as the log shows it: relative to the tree when inside it."""
    rel = os.path.relpath(path, SRC)
    return path if rel.startswith("..") else rel


def write_report(args):
    """Build the report from the saved results in args.results and write it. Returns the exit
    status: 1 when a phase of a measuring run failed."""
    try:
        run = report.load(args.results)
    except report.ReportError as e:
        sys.exit("bench: %s" % e)
    out_path = os.path.abspath(args.out) if args.out else report.default_out(run.cfg["name"])
    missing = run.missing_phases()
    if args.report_only:
        if out_path == report.DOCS_REPORT and not args.out and missing:
            sys.exit("bench: %s has no results of %s: not rewriting docs/BENCHMARKS.md from it "
                     "(--out FILE writes the report elsewhere)"
                     % (shown(args.results), ", ".join(missing)))
        if run.phases is not None and args.only and set(run.phases) != set(args.phases):
            log("note: %s holds the phases %s, not %s; reporting what it holds"
                % (shown(args.results), ",".join(run.phases),
                   ",".join(args.phases)))
    text = report.build(run, out_path)
    report.write(text, out_path)
    log("wrote %s from %s" % (shown(out_path), shown(args.results)))
    for line in report.goals_table(text):
        print(line)
    if run.errors:
        print("bench: %d phase(s) failed%s:" % (len(run.errors), " in the saved run"
                                                if args.report_only else ""))
        for e in run.errors:
            print("  " + e)
    return 1 if run.errors and not args.report_only else 0


def main():
    args = parse_args()
    if not args.report_only:
        check_tools(args.phases)
        status = measure(args)
        if status:
            return status
    return write_report(args)


if __name__ == "__main__":
    sys.exit(main())
