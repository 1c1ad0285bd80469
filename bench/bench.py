#!/usr/bin/python3
"""bench.py - cq against RQ (Debian's python3-rq) and the lesson's scripts, in one run.

Run it through bench/run (which installs what is missing and builds cq first):

    bench/run            the full run, several minutes; writes docs/BENCHMARKS.md
    bench/run --quick    a smoke run in about two minutes; writes bench/out/BENCHMARKS-quick.md

Everything runs on 127.0.0.1: one private redis-server, the image server of the tests
(tests/fixtures/httpd.py, 0.2 s per image) and the fake Imgur API (tests/fixtures/fake_imgur.py)
serving a gallery generated here with 91 .jpg links, as the lesson's run had. Every server and
worker is started by this script and stopped by it, whatever happens (try/finally, SIGTERM,
SIGINT). Every wait is bounded. Standard library only (the RQ side runs in its own scripts).

Numbers are medians of several runs; each goal is judged against a baseline measured in the
same run (RQ, the lesson's scripts), and the raw samples are kept in bench/out/*.json.
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
BIN = os.path.join(SRC, "build", "bin")
PY = "/usr/bin/python3"          # Debian's python: the one that imports python3-rq
RQ = [PY, "-m", "rq.cli"]         # `rq` as Debian installs it (/usr/bin/rq is the same)
CLIENT_ID = "bench-client"
IMAGES = 91                       # the lesson's run downloaded 91 images
LATENCY = 0.2                     # seconds the image server waits before each answer
IMAGE_SIZE = 32768                # bytes of each generated image (httpd.py's default)

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


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)] if s else None


class Bench:
    def __init__(self, cfg, tmp):
        self.cfg = cfg
        self.tmp = tmp
        self.procs = []
        self.res = {}          # key -> {"samples": [...], "unit": ..., ...}
        self.notes = {}        # key -> text shown next to the measurement
        self.env = dict(os.environ)
        for k in ("CQ_PREFIX", "IMGUR_CLIENT_ID", "IMGUR_API_URL", "REDIS_URL"):
            self.env.pop(k, None)
        self.env["PYTHONPATH"] = HERE
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.runs = 0
        self.gallery_items = 0

    # -- process bookkeeping ---------------------------------------------------------------

    def spawn(self, argv, log_name, cwd=None, env=None, **kw):
        logf = open(os.path.join(self.tmp, "log", log_name), "ab")
        p = subprocess.Popen(argv, cwd=cwd or self.tmp, env=env or self.env,
                             stdout=kw.pop("stdout", logf), stderr=logf,
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
        self.redis_proc = self.spawn(
            ["redis-server", "--port", str(self.rport), "--bind", "127.0.0.1",
             "--dir", os.path.join(self.tmp, "redis"), "--save", "", "--appendonly", "no",
             "--logfile", os.path.join(self.tmp, "log", "redis.log")], "redis.out")

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

    def med(self, key):
        e = self.res.get(key)
        return median(e["samples"]) if e and e["samples"] else None

    # -- measurements: cq --------------------------------------------------------------------

    def cq_drain(self, nworkers, njobs, conc, wrap=None, before=None, cworker=None):
        """Pre-fill njobs noop jobs, start nworkers `cworker --burst -c conc`, and time from
        their start until `HGET cq:stats processed` reaches njobs; then check that the queue
        and every in-flight list are empty and nothing failed. Returns jobs/s."""
        self.flush()
        self.cq_fill(njobs)
        if before:
            before()
        argv = [cworker or os.path.join(BIN, "cworker"), "--burst", "-c", str(conc),
                "--log-level", "warn"]
        t0 = time.monotonic()
        ws = [self.spawn((wrap or []) + argv, "cworker-drain.log") for _ in range(nworkers)]
        wait_until("%d noop jobs processed" % njobs,
                   lambda: self.r.int("HGET", "cq:stats", "processed") >= njobs, 600)
        dt = time.monotonic() - t0
        for w in ws:
            self.wait_exit(w, 60, "cworker --burst")
        left = self.r.int("LLEN", "cq:queue:default")
        inflight = self.r.cmd("KEYS", "cq:inflight:*")
        failed = self.r.int("HGET", "cq:stats", "failed")
        if left or inflight or failed:
            raise BenchError("drain: %d left in the queue, in-flight lists %r, %d failed"
                             % (left, inflight, failed))
        return njobs / dt, dt

    def phase_noop(self):
        c = self.cfg
        for nw in c["workers"]:
            reps = c["reps"]
            for i in range(reps):
                rate, dt = self.cq_drain(nw, c["drain_jobs"], c["drain_conc"])
                self.add("cq_drain_%d" % nw, rate, "jobs/s")
                log("no-op drain, %d cworker -c %d, %d jobs, run %d/%d: %.2fs, %s jobs/s"
                    % (nw, c["drain_conc"], c["drain_jobs"], i + 1, reps, dt, fmt_int(rate)))

    def phase_enqueue(self):
        c = self.cfg
        n = c["enq_cq"]
        path = self.noop_file(n)
        for i in range(c["reps"]):
            self.flush()
            with open(path, "rb") as f:
                _, dt = self.run([os.path.join(BIN, "cenqueue"), "--stdin", "--quiet"], 120,
                                 "cenqueue --stdin", stdin=f)
            got = self.r.int("LLEN", "cq:queue:default")
            if got != n:
                raise BenchError("cenqueue: %d jobs queued, expected %d" % (got, n))
            self.add("cq_enqueue", n / dt, "jobs/s")
            log("cenqueue --stdin, %d jobs, run %d/%d: %.3fs, %s jobs/s"
                % (n, i + 1, c["reps"], dt, fmt_int(n / dt)))
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
        returns (peak KiB from time, {"anon": KiB, "file": KiB, "threads": n,
        "maps": [(KiB, mapping)]}) with the largest anonymous and file-backed resident sizes
        seen, and a breakdown by mapping taken when the resident size was largest."""
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
        peak = {"anon": 0, "file": 0, "threads": 0, "maps": []}
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
                if anon + filek > best:
                    maps, roll = smaps_by_mapping(pid), smaps_rollup(pid)
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
            self.res.setdefault("cq_rss_parts", []).append(peak)
            log("peak RSS of cworker -c 64 downloading %d images, run %d/%d: %.1f MB "
                "(largest seen: %.1f MB anonymous, %.1f MB file-backed; %d threads)"
                % (IMAGES, i + 1, c["mem_reps"], kib * 1024 / 1e6, peak["anon"] * 1024 / 1e6,
                   peak["file"] * 1024 / 1e6, peak["threads"]))
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
            out, _ = self.run([floor], 30, "rss_floor")
            self.res["rss_floor"] = {l.split()[0]: [int(x) for x in l.split()[1:]]
                                     for l in out.splitlines() if len(l.split()) == 4}
        except BenchError as e:
            log("rss_floor: %s" % e)
        log("references: cworker -c 64 idle %.1f MB; a program that only loads libcurl and "
            "calls curl_global_init + curl_easy_init: %s" % (
                self.res["cq_rss_idle"]["VmRSS"] * 1024 / 1e6,
                "%.1f MB" % (self.res["rss_floor"]["easy_init"][0] * 1024 / 1e6)
                if "rss_floor" in self.res else "-"))
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

    # -- profile -----------------------------------------------------------------------------

    def phase_profile(self):
        """Where the time of the 1-worker no-op drain goes: CPU and syscalls per job of cworker
        and of redis-server (perf stat), Redis commands and reads per job (INFO), and a
        system-wide sampled profile (perf record -a -g) split by process and symbol."""
        c = self.cfg
        n = c["prof_jobs"]
        conc = c["drain_conc"]
        if not have_perf():
            self.res["profile"] = {"error": "perf is not usable here"}
            log("perf is not usable here: no profile")
            return
        prof = {"jobs": n}
        # 1. counters: perf stat on cworker (as a wrapper) and on redis-server (attached just
        # before the worker starts, after the prefill), and Redis's INFO around the drain.
        st_w = os.path.join(self.tmp, "perfstat.worker")
        st_r = os.path.join(self.tmp, "perfstat.redis")
        ev = "task-clock,context-switches,raw_syscalls:sys_enter"
        held = {}

        def before():
            held["perf"] = self.spawn(["perf", "stat", "-x,", "-e", ev, "-o", st_r, "-p",
                                       str(self.redis_proc.pid)], "perf-stat.log")
            time.sleep(0.3)
            held["info"] = self.r.info("all")
        rate, dt = self.cq_drain(1, n, conc, wrap=["perf", "stat", "-x,", "-e", ev, "-o", st_w,
                                                   "--"], before=before)
        after = self.r.info("all")
        self.stop(held["perf"], signal.SIGINT)
        prof["rate"] = rate
        prof["seconds"] = dt
        prof["worker"] = read_perf_stat(st_w)
        prof["redis"] = read_perf_stat(st_r)
        prof["redis_info"] = redis_deltas(held["info"], after, n)
        # 2. the same counters for `cenqueue --stdin` (bulk enqueue) of the same number of jobs.
        self.flush()
        ne = c["enq_cq"]
        st_e = os.path.join(self.tmp, "perfstat.enqueue")
        st_r2 = os.path.join(self.tmp, "perfstat.redis2")
        pr = self.spawn(["perf", "stat", "-x,", "-e", ev, "-o", st_r2, "-p",
                         str(self.redis_proc.pid)], "perf-stat.log")
        time.sleep(0.3)
        b = self.r.info("all")
        with open(self.noop_file(ne), "rb") as f:
            _, dte = self.run(["perf", "stat", "-x,", "-e", ev, "-o", st_e, "--",
                               os.path.join(BIN, "cenqueue"), "--stdin", "--quiet"], 300,
                              "cenqueue under perf stat", stdin=f)
        a = self.r.info("all")
        self.stop(pr, signal.SIGINT)
        prof["enqueue"] = {"jobs": ne, "seconds": dte, "client": read_perf_stat(st_e),
                           "redis": read_perf_stat(st_r2), "redis_info": redis_deltas(b, a, ne)}
        # System calls of cenqueue by name (strace -c), per job: which ones, not just how many.
        if shutil.which("strace"):
            self.flush()
            ns = min(ne, 20_000)
            sc = os.path.join(self.tmp, "strace.enqueue")
            with open(self.noop_file(ns), "rb") as f:
                self.run(["strace", "-f", "-c", "-o", sc, os.path.join(BIN, "cenqueue"),
                          "--stdin", "--quiet"], 300, "cenqueue under strace", stdin=f)
            calls = []
            with open(sc) as fh:
                for line in fh:
                    p_ = line.split()
                    if len(p_) >= 5 and p_[3].isdigit() and p_[-1] != "total":
                        calls.append((int(p_[3]) / ns, p_[-1]))
            prof["enqueue"]["syscalls"] = sorted(calls, reverse=True)[:8]
        # 3. sampled profile, system-wide.
        data = os.path.join(self.tmp, "perf.data")

        def record():
            held["rec"] = self.spawn(["perf", "record", "-a", "-g", "-e", "cpu-clock", "-F",
                                      "999", "-o", data], "perf-record.log")
            time.sleep(0.5)
        rate3, dt3 = self.cq_drain(1, n, conc, before=record)
        self.stop(held["rec"], signal.SIGINT, 120)
        prof["rate3"] = rate3
        prof["record_seconds"] = dt3
        prof["by_comm"] = perf_report(data, ["--sort", "comm"], 8)
        prof["worker_dso"] = perf_report(data, ["--comm", "cworker", "--sort", "dso"], 10)
        prof["worker_sym"] = perf_report(data, ["--comm", "cworker", "--sort", "dso,sym"], 25)
        prof["redis_sym"] = perf_report(data, ["--comm", "redis-server", "--sort", "dso,sym"], 15)
        self.res["profile"] = prof
        log("profile: drain %s jobs/s; cworker %.1f us CPU/job, redis-server %.1f us CPU/job"
            % (fmt_int(rate), prof["worker"].get("task-clock", 0) * 1e3 / n,
               prof["redis"].get("task-clock", 0) * 1e3 / n))


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


# ---- formatting and the report ------------------------------------------------------------

def fmt_int(x):
    return "{:,.0f}".format(x) if x is not None else "-"


def fmt_s(x):
    return "%.3f s" % x if x is not None else "-"


def fmt_ms(x):
    return "%.2f ms" % (x * 1e3) if x is not None else "-"


def fmt_mb(x):
    return "%.1f MB" % (x / 1e6) if x is not None else "-"


def pss_text(r):
    """The proportional set size (shared pages divided among the processes that map them)."""
    if not r or "Pss" not in r:
        return ""
    return (" (its proportional set size then: %.1f MB, of which %.1f MB anonymous and %.1f MB "
            "file-backed)" % (r["Pss"] * 1024 / 1e6, r.get("Pss_Anon", 0) * 1024 / 1e6,
                              r.get("Pss_File", 0) * 1024 / 1e6))


def fmt_ratio(x):
    if x is None:
        return "-"
    return "%.0fx" % x if x >= 100 else ("%.1fx" % x if x >= 10 else "%.2fx" % x)


def judge(value, goal, higher):
    """(verdict, by how much) for a value against a goal."""
    if value is None:
        return "not measured", ""
    if higher:
        if value >= goal:
            return "PASS", "+%.0f%% above the goal" % ((value / goal - 1) * 100)
        return "MISS", "%.0f%% short: needs %.2fx more" % ((1 - value / goal) * 100, goal / value)
    if value < goal:
        return "PASS", "%.0f%% under the goal" % ((1 - value / goal) * 100)
    return "MISS", "%.0f%% over: needs %.2fx less" % ((value / goal - 1) * 100, value / goal)


def samples_text(e, f):
    return ", ".join(f(x) for x in e["samples"]) if e else "-"


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


ANALYSIS_BEGIN = "<!-- analysis:begin (kept by bench/run when it rewrites this file) -->"
ANALYSIS_END = "<!-- analysis:end -->"


def old_analysis(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    i, j = text.find(ANALYSIS_BEGIN), text.find(ANALYSIS_END)
    if i < 0 or j < i:
        return None
    return text[i + len(ANALYSIS_BEGIN):j].strip("\n")


def report(b, machine, command, elapsed, out_path, errors):
    c = b.cfg
    res = b.res
    m = b.med
    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("cq against RQ %s (Debian's python3-rq) and the lesson's scripts, measured in one run of"
      % machine["rq"])
    w("`bench/run` on one private Redis, everything on 127.0.0.1. Generated by the run: edit "
      "`bench/bench.py`, not the tables; only the section *What limits it* is written by hand "
      "(the driver keeps it when it rewrites this file).")
    w("")
    w("- **Command:** `%s` (%s mode, took %.0f s)" % (command, c["name"], elapsed))
    w("- **Date:** %s; **tree:** `%s`" % (machine["date"], machine["commit"]))
    w("- **Machine:** %s CPUs (%s), %s RAM, Linux %s, %s"
      % (machine["nproc"], machine["cpu"], machine["memory"], machine["kernel"], machine["os"]))
    w("- **Noise:** CPU used by processes outside this run while it ran: %.0f s of the %.0f s "
      "the machine's %s CPUs had (%.0f%%); load average %s at the start, %s at the end%s"
      % (machine["other_cpu"], elapsed * int(machine["nproc"]), machine["nproc"],
         100.0 * machine["other_cpu"] / (elapsed * int(machine["nproc"])),
         " ".join(machine["load_start"]), " ".join(machine["load_end"]),
         "; busy at the start: " + ", ".join("%s %.0f%%" % (n, p_) for p_, n in
                                           machine["busy_start"] if p_ >= 5)
         if any(p_ >= 5 for p_, n in machine["busy_start"]) else ""))
    w("- **Software:** Redis %s, RQ %s with redis-py %s on Python %s (/usr/bin/python3), %s, %s"
      % (machine["redis"], machine["rq"], machine["redis_py"], machine["python"], machine["cc"],
         machine["valgrind"]))
    w("- **Rules:** each value is the median of the runs listed below it; each ratio is "
      "against a baseline measured in the same run. Timings on a shared 2-core machine are "
      "noisy: read the ratios, and the per-run samples in the detail tables.")
    if errors:
        w("")
        w("**Some measurements failed in this run:**")
        for e in errors:
            w("- %s" % e)
    w("")

    # ---- goals
    rows = []
    noop1, rqs = m("cq_drain_1"), m("rq_simple")
    enq, rqe = m("cq_enqueue"), m("rq_enqueue_many")
    dist, pyth, rq8 = m("cq_dist"), m("py_threads"), m("rq8")
    rss, rqrss = m("cq_rss"), m("rq_rss")
    cseq, cthr, casy = m("cq_sequential"), m("cq_threads"), m("cq_async")

    def ratio(a, bb):
        return a / bb if a is not None and bb else None

    def row(metric, value, base, rat, goal, verdict):
        rows.append((metric, value, base, rat, goal) + verdict)

    row("No-op throughput, 1 `cworker -c %d`, %s jobs, status written" % (c["drain_conc"],
                                                                         fmt_int(c["drain_jobs"])),
        fmt_int(noop1) + " jobs/s", "RQ SimpleWorker " + fmt_int(rqs) + " jobs/s",
        fmt_ratio(ratio(noop1, rqs)), ">= 50,000 jobs/s", judge(noop1, 50000, True))
    row("  same, against RQ", "", "", fmt_ratio(ratio(noop1, rqs)), ">= 100x RQ SimpleWorker",
        judge(ratio(noop1, rqs), 100, True))
    row("Bulk enqueue, `cenqueue --stdin`, %s jobs" % fmt_int(c["enq_cq"]),
        fmt_int(enq) + " jobs/s", "RQ enqueue_many " + fmt_int(rqe) + " jobs/s",
        fmt_ratio(ratio(enq, rqe)), ">= 100,000 jobs/s", judge(enq, 100000, True))
    row("  same, against RQ", "", "", fmt_ratio(ratio(enq, rqe)), ">= 10x enqueue_many",
        judge(ratio(enq, rqe), 10, True))
    row("Lesson download, %d images at %.1f s: `cproducer` + 2 `cworker -c 64`" % (IMAGES, LATENCY),
        fmt_s(dist), "lesson threads(8) " + fmt_s(pyth), fmt_ratio(ratio(pyth, dist)),
        ">= 4x faster than the lesson's threads", judge(ratio(pyth, dist), 4, True))
    row("  same, absolute (machine-dependent)", fmt_s(dist), "RQ, 8 workers " + fmt_s(rq8),
        fmt_ratio(ratio(rq8, dist)), "< 0.6 s", judge(dist, 0.6, False))
    row("Peak RSS of `cworker -c 64` during the downloads", fmt_mb(rss),
        "one RQ worker " + fmt_mb(rqrss), fmt_ratio(ratio(rqrss, rss)) + (" less" if rss and rqrss else ""),
        "< 10 MB", judge(rss, 10e6, False))
    row("`cproducer --mode threads -j 8` vs `--mode sequential`", fmt_s(cthr),
        "sequential " + fmt_s(cseq), fmt_ratio(ratio(cseq, cthr)), ">= 7x faster",
        judge(ratio(cseq, cthr), 7, True))
    row("`cproducer --mode async -j 64` vs `--mode sequential`", fmt_s(casy),
        "sequential " + fmt_s(cseq), fmt_ratio(ratio(cseq, casy)), ">= 30x faster",
        judge(ratio(cseq, casy), 30, True))
    lat = res.get("cq_latency")
    lat_med = median(lat["samples"]) if lat else None
    lat_p99 = pct(lat["samples"], 99) if lat else None
    rq_lat = res.get("rq_latency")
    rec = m("cq_recovery")
    row("Idle pickup, enqueue to start: median (p99 %s)" % fmt_ms(lat_p99), fmt_ms(lat_med),
        "RQ SimpleWorker " + fmt_ms(median(rq_lat["samples"]) if rq_lat else None), "",
        "< 50 ms", judge(lat_med, 0.05, False))
    row("Recovery after a SIGKILL: jobs back in their queue (running again after %s)"
        % fmt_s(m("cq_recovery_restart")), fmt_s(rec),
        "RQ, Sidekiq OSS: never; asynq: about a minute", "", "< 15 s", judge(rec, 15, False))
    w("## Goals")
    w("")
    w("| metric | cq (median) | baseline, same run (median) | ratio | goal | result | by how much |")
    w("|---|---|---|---|---|---|---|")
    for r in rows:
        w("| %s |" % " | ".join(r))
    w("")
    w("Goals from issues 5 and 6. Absolute goals (jobs/s, seconds, MB) depend on the machine; "
      "the ratios are the checks that travel. Peak RSS is in MB of 10^6 bytes.")
    w("")

    # ---- throughput and scaling
    w("## No-op throughput and scaling")
    w("")
    w("A queue pre-filled with %s `noop` jobs (by `cenqueue --stdin`); N `cworker --burst -c %d "
      "--log-level warn` processes started at once; timed from their start until `HGET cq:stats "
      "processed` reaches the job count (polled every 5 ms), then checked: queue and in-flight "
      "lists empty, nothing failed. Each job's status hash is written (`started`, then "
      "`finished`)." % (fmt_int(c["drain_jobs"]), c["drain_conc"]))
    w("")
    w("| workers | jobs/s (median) | vs 1 worker | runs (jobs/s) |")
    w("|---|---|---|---|")
    for nw in c["workers"]:
        e = res.get("cq_drain_%d" % nw)
        w("| %d | %s | %s | %s |" % (nw, fmt_int(m("cq_drain_%d" % nw)),
                                    fmt_ratio(ratio(m("cq_drain_%d" % nw), noop1)),
                                    samples_text(e, fmt_int)))
    w("")
    w("RQ, one worker draining pre-filled `rq_jobs.noop` jobs (`rq worker --burst -q`), timed "
      "from its first finished job to the last (start-up left out, in RQ's favour):")
    w("")
    w("| RQ worker | jobs | jobs/s (median) | runs (jobs/s) |")
    w("|---|---|---|---|")
    w("| SimpleWorker (`--worker-class rq.SimpleWorker`) | %s | %s | %s |"
      % (fmt_int(c["rq_simple_jobs"]), fmt_int(m("rq_simple")),
         samples_text(res.get("rq_simple"), fmt_int)))
    w("| default Worker (forks a work horse per job) | %s | %s | %s |"
      % (fmt_int(c["rq_fork_jobs"]), fmt_int(m("rq_fork")),
         samples_text(res.get("rq_fork"), fmt_int)))
    w("")

    # ---- enqueue
    w("## Bulk enqueue")
    w("")
    w("| producer | jobs | jobs/s (median) | runs (jobs/s) |")
    w("|---|---|---|---|")
    w("| `cenqueue --stdin --quiet < file` (one line `noop` per job; whole process timed) | %s "
      "| %s | %s |" % (fmt_int(c["enq_cq"]), fmt_int(enq), samples_text(res.get("cq_enqueue"),
                                                                        fmt_int)))
    w("| RQ `Queue.prepare_data` + `Queue.enqueue_many` (in-process timing: interpreter start "
      "left out) | %s | %s | %s |" % (fmt_int(c["enq_rq"]), fmt_int(rqe),
                                      samples_text(res.get("rq_enqueue_many"), fmt_int)))
    w("")

    # ---- latency
    w("## Latency: enqueue to start")
    w("")
    w("An idle worker; one job at a time, 10-30 ms apart; latency = the job's `started_at` - "
      "`enqueued_at` as the queue records them (cq: `cq:job:<id>` fields written by `cenqueue` "
      "and by the worker; RQ: `job.started_at - job.enqueued_at`).")
    w("")
    w("| worker | samples | median | p99 | max |")
    w("|---|---|---|---|---|")
    for key, name in (("cq_latency", "`cworker -c 16`, jobs from `cenqueue noop`"),
                      ("rq_latency", "RQ SimpleWorker, jobs from `Queue.enqueue`")):
        e = res.get(key)
        xs = e["samples"] if e else []
        w("| %s | %d | %s | %s | %s |" % (name, len(xs), fmt_ms(median(xs)), fmt_ms(pct(xs, 99)),
                                         fmt_ms(max(xs) if xs else None)))
    w("")

    # ---- recovery
    w("## Recovery after a SIGKILL")
    w("")
    w("Worker A (`cworker -c 4`) runs four `sleep 60` jobs; worker B is idle; A is SIGKILLed. "
      "Timed from the kill until all four jobs are back at the head of their queue (each "
      "job's `recovered` count is 1), and until B has started all four. A worker's lease "
      "lasts 10 s after its last heartbeat and every live worker looks for expired leases "
      "once a second, so about 10-12 s is expected.")
    w("")
    w("| | median | runs |")
    w("|---|---|---|")
    w("| back in the queue | %s | %s |" % (fmt_s(rec), samples_text(res.get("cq_recovery"),
                                                                     fmt_s)))
    w("| running on worker B | %s | %s |" % (fmt_s(m("cq_recovery_restart")),
                                             samples_text(res.get("cq_recovery_restart"), fmt_s)))
    w("")

    # ---- lesson
    w("## The lesson's download, side by side")
    w("")
    w("The lesson's run: sequential, 91 images in 19.4 s (about 0.2 s each); threads(8) 4.1 s "
      "(4.7x). Here: %d .jpg links from the local fake Imgur API (a generated gallery: the two "
      "recorded pages plus copies of their jpeg items, %d items in all, albums, gifs and pngs "
      "filtered out by the lesson's `.jpg` rule), each image served after %.1f s by "
      "tests/fixtures/httpd.py (%d bytes, TCP_NODELAY set). Every run downloads into a fresh "
      "directory and is "
      "checked: %d files of the right size." % (IMAGES, b.gallery_items, LATENCY, IMAGE_SIZE,
                                                IMAGES))
    w("")
    w("Times are the program's own `Took` (as in the article, from the start of its main), "
      "except the distributed cq row: from `cproducer`'s start until the workers' processed "
      "counter has grown by %d (bench clock, 2 ms polls). Both distributed rows use workers "
      "that were already running and idle." % IMAGES)
    w("")
    seq_py = m("py_single")
    w("| version | runs | Took (median) | vs lesson sequential | vs lesson threads | runs (s) |")
    w("|---|---|---|---|---|---|")
    lesson_rows = [
        ("py_single", "lesson `single.py` (sequential)"),
        ("py_threads", "lesson threads, 8 `DownloadWorker`s"),
        ("py_processes", "lesson processes, `Pool(8)`"),
        ("rq8", "lesson RQ: `lesson_rq.py` + 8 `rq worker` (forking)"),
        ("cq_sequential", "`cproducer --mode sequential`"),
        ("cq_threads", "`cproducer --mode threads -j 8`"),
        ("cq_processes", "`cproducer --mode processes -j 8`"),
        ("cq_async", "`cproducer --mode async -j 64`"),
        ("cq_dist", "`cproducer` + 2 `cworker -c 64` (distributed)"),
    ]
    for key, name in lesson_rows:
        e = res.get(key)
        v = m(key)
        if e is None:
            w("| %s | 0 | not measured%s | | | |" % (
                name, " (`cproducer` has no `--mode` in this tree)"
                if key.startswith("cq_") and key != "cq_dist" and not res.get("cproducer_modes")
                else ""))
            continue
        w("| %s | %d | %s | %s | %s | %s |" % (name, len(e["samples"]), fmt_s(v),
                                              fmt_ratio(ratio(seq_py, v)),
                                              fmt_ratio(ratio(pyth, v)),
                                              samples_text(e, lambda x: "%.3f" % x)))
    w("")

    # ---- memory
    w("## Memory")
    w("")
    w("Peak RSS from `/usr/bin/time -f %%M` (the largest resident set of the process and of the "
      "children it waited for). cq: `cworker -c 64 --burst` downloading the %d queued images "
      "(64 downloads at once). RQ: one `rq worker --burst` (the default worker, whose forked "
      "work horses count too) downloading %d of them." % (IMAGES, c["mem_rq_jobs"]))
    w("")
    w("| worker | peak RSS (median) | runs |")
    w("|---|---|---|")
    w("| `cworker -c 64` | %s | %s |" % (fmt_mb(rss), samples_text(res.get("cq_rss"), fmt_mb)))
    w("| `rq worker` | %s | %s |" % (fmt_mb(rqrss), samples_text(res.get("rq_rss"), fmt_mb)))
    w("")
    parts = res.get("cq_rss_parts")
    if parts:
        pk = parts[-1]
        idle, fl = res.get("cq_rss_idle"), res.get("rss_floor")
        if idle or fl:
            w("For reference, resident sets (VmRSS, of which anonymous / file-backed):")
            w("")
            w("| process | resident | anonymous | file-backed |")
            w("|---|---|---|---|")
            if fl:
                for step, label in (("start", "bench/rss_floor.c, linked with libcurl, at the "
                                     "start of `main`"),
                                    ("global_init", "... after `curl_global_init`"),
                                    ("easy_init", "... and one `curl_easy_init`")):
                    if step in fl:
                        r_, a_, f_ = fl[step]
                        w("| %s | %.1f MB | %.1f MB | %.1f MB |" % (label, r_ * 1.024e-3,
                                                                   a_ * 1.024e-3, f_ * 1.024e-3))
            if idle:
                w("| `cworker -c 64`, idle, 1 s after start | %.1f MB | %.1f MB | %.1f MB |"
                  % (idle["VmRSS"] * 1.024e-3, idle["RssAnon"] * 1.024e-3,
                     idle["RssFile"] * 1.024e-3))
            w("| `cworker -c 64`, downloading (peak, median of the runs above) | %s | "
              "%.1f MB | %.1f MB |" % (fmt_mb(rss), pk["anon"] * 1.024e-3, pk["file"] * 1.024e-3))
            w("")
        w("What the resident set of `cworker -c 64` is made of (its `/proc` status and smaps, "
          "polled every 5 ms during the last run): at most %.1f MB anonymous (its own heap, "
          "thread stacks and malloc arenas) and %.1f MB file-backed (pages of shared "
          "libraries, which every process using them shares), %d threads. By mapping, when the "
          "resident set was largest%s:" % (pk["anon"] * 1024 / 1e6, pk["file"] * 1024 / 1e6,
                                           pk["threads"], pss_text(pk.get("rollup"))))
        w("")
        w("| resident | mapping |")
        w("|---|---|")
        for kib, name in pk["maps"][:14]:
            w("| %.2f MB | `%s` |" % (kib * 1024 / 1e6, name))
        w("")

    # ---- callgrind
    w("## Instructions per job (callgrind)")
    w("")
    w("Instruction counts do not depend on the machine's load, so a regression shows here "
      "first. `valgrind --tool=callgrind`, all threads; *per job* = total / jobs (start-up "
      "included); *marginal* = (Ir of the larger run - Ir of the smaller) / (difference in "
      "jobs): start-up and shutdown cancel out. Redis's own instructions are not counted.")
    w("")
    w("| program | jobs | instructions (Ir) | per job | marginal per job |")
    w("|---|---|---|---|---|")
    for prog, key, cfgk in (("`cworker -c 16 --burst` (noop jobs)", "cg_worker", "cg_worker"),
                            ("`cenqueue --stdin --quiet`", "cg_enqueue", "cg_enqueue")):
        big, small = c[cfgk]
        ib = res.get("%s_%d" % (key, big))
        ism = res.get("%s_%d" % (key, small))
        marg = ((ib["samples"][0] - ism["samples"][0]) / (big - small)) if ib and ism else None
        for n, e in ((small, ism), (big, ib)):
            ir = e["samples"][0] if e else None
            w("| %s | %s | %s | %s | %s |" % (prog, fmt_int(n), fmt_int(ir),
                                             fmt_int(ir / n if ir else None),
                                             fmt_int(marg) if n == big else ""))
    w("")

    for key, prog in (("cg_worker_top", "`cworker`"), ("cg_enqueue_top", "`cenqueue --stdin`")):
        top = res.get(key)
        if not top:
            continue
        w("%s, where the instructions of the larger run go, per job (start-up included). cq's "
          "own functions, inclusive (with what they call):" % prog)
        w("")
        w("```")
        for per, pc, name in top.get("inclusive", []):
            w("%9s Ir/job %6.2f%%  %s" % (fmt_int(per), pc, name))
        w("```")
        w("")
        w("The functions with the most instructions of their own (exclusive):")
        w("")
        w("```")
        for per, pc, name in top.get("exclusive", []):
            w("%9s Ir/job %6.2f%%  %s" % (fmt_int(per), pc, name))
        w("```")
        w("")

    # ---- profile
    prof = res.get("profile")
    w("## Profile: where a job's time goes")
    w("")
    if not prof or "error" in prof:
        w("Not measured%s." % (": " + prof["error"] if prof else ""))
    else:
        n = prof["jobs"]
        en = prof.get("enqueue")
        cols = [("drain: `cworker`", prof["worker"], prof["seconds"], n, None),
                ("drain: redis-server", prof["redis"], prof["seconds"], n, prof["redis_info"])]
        if en:
            cols += [("enqueue: `cenqueue`", en["client"], en["seconds"], en["jobs"], None),
                     ("enqueue: redis-server", en["redis"], en["seconds"], en["jobs"],
                      en["redis_info"])]
        w("Counters over two runs: a 1-worker no-op drain of %s jobs (`cworker --burst -c %d` "
          "wrapped in `perf stat`; it ran at %s jobs/s) and a bulk enqueue of %s jobs "
          "(`cenqueue --stdin --quiet` in `perf stat`%s), with `perf stat -p` attached to "
          "redis-server and Redis's `INFO` read before and after. Per job; CPU as a share of "
          "one core over the wall time:"
          % (fmt_int(n), c["drain_conc"], fmt_int(prof["rate"]),
             fmt_int(en["jobs"]) if en else "-",
             "; %s jobs/s" % fmt_int(en["jobs"] / en["seconds"]) if en else ""))
        w("")
        w("| per job | " + " | ".join(cc[0] for cc in cols) + " |")
        w("|---|" + "---|" * len(cols))

        def line(label, f):
            w("| %s | %s |" % (label, " | ".join(f(*cc[1:]) for cc in cols)))
        line("wall time", lambda st, sec, jobs, ri: "%.2f us" % (sec * 1e6 / jobs))
        line("CPU time (task-clock)", lambda st, sec, jobs, ri: "%.2f us (%.0f%%)" % (
            st.get("task-clock", 0) * 1e3 / jobs, st.get("task-clock", 0) / 10 / sec))
        line("system calls", lambda st, sec, jobs, ri: "%.2f" % (
            st.get("raw_syscalls:sys_enter", 0) / jobs))
        line("context switches", lambda st, sec, jobs, ri: "%.3f" % (
            st.get("context-switches", 0) / jobs))
        line("Redis commands run (Lua's inner calls included)",
             lambda st, sec, jobs, ri: "%.2f" % ri["commands_per_job"] if ri else "")
        line("client reads by Redis (about one per round trip)",
             lambda st, sec, jobs, ri: "%.3f" % ri["reads_per_job"] if ri else "")
        line("bytes to / from Redis", lambda st, sec, jobs, ri: "%.0f / %.0f" % (
            ri["net_in_per_job"], ri["net_out_per_job"]) if ri else "")
        w("")
        if en and en.get("syscalls"):
            w("System calls of `cenqueue --stdin` per job, by name (`strace -f -c`): " + ", ".join(
                "%s %.2f" % (name, per) for per, name in en["syscalls"]) + ".")
            w("")
        for label, ri in (("drain", prof["redis_info"]), ("enqueue", en and en["redis_info"])):
            if ri:
                w("Redis commands per job, %s: " % label + ", ".join(
                    "%s %.3f" % (k, v) for k, v in list(ri["calls_per_job"].items())[:12]) + ".")
                w("")
        w("Sampled profile: `perf record -a -g -e cpu-clock -F 999` over another 1-worker drain (%s "
          "jobs/s under the profiler), `perf report --no-children`. CPU by process (percent of all "
          "samples on both CPUs; `swapper` is idle time):" % fmt_int(prof["rate3"]))
        w("")
        w("```")
        for p_, s_, name in prof["by_comm"]:
            w("%6.2f%%  %7d  %s" % (p_, s_, name))
        w("```")
        w("")
        w("cworker by library (`--comm cworker --sort dso`), percent of all samples:")
        w("")
        w("```")
        for p_, s_, name in prof["worker_dso"]:
            w("%6.2f%%  %7d  %s" % (p_, s_, name))
        w("```")
        w("")
        w("cworker's hottest functions (`--comm cworker --sort dso,sym`):")
        w("")
        w("```")
        for p_, s_, name in prof["worker_sym"]:
            w("%6.2f%%  %7d  %s" % (p_, s_, name))
        w("```")
        w("")
        w("redis-server's hottest functions:")
        w("")
        w("```")
        for p_, s_, name in prof["redis_sym"]:
            w("%6.2f%%  %7d  %s" % (p_, s_, name))
        w("```")
    w("")

    # ---- analysis (hand-written, kept)
    w("## What limits it")
    w("")
    w(ANALYSIS_BEGIN)
    w(old_analysis(out_path) or "(Not written yet: read the profile above.)")
    w(ANALYSIS_END)
    w("")
    w("## Reproduce")
    w("")
    w("```sh")
    w("bench/run            # everything, several minutes; rewrites docs/BENCHMARKS.md")
    w("bench/run --quick    # a smoke run, about two minutes; bench/out/BENCHMARKS-quick.md")
    w("bench/callpath       # no-op throughput and instructions a job against a baseline revision")
    w("```")
    w("")
    w("Raw samples of this run: `bench/out/%s.json` (not committed). See bench/README.md."
      % c["name"])
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description="cq against RQ and the lesson's scripts")
    ap.add_argument("--quick", action="store_true", help="fewer runs, smaller counts")
    ap.add_argument("--only", help="comma-separated phases to run (%s)" % ",".join(PHASES))
    ap.add_argument("--out", help="where to write the Markdown report (default: "
                    "docs/BENCHMARKS.md for a full run of every phase, else bench/out/)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    phases = PHASES
    if args.only:
        phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
        bad = [p for p in phases if p not in PHASES]
        if bad:
            ap.error("unknown phase %s (phases: %s)" % (",".join(bad), ",".join(PHASES)))
    if args.out:
        out_path = os.path.abspath(args.out)
    elif not args.quick and phases == PHASES:
        out_path = os.path.join(SRC, "docs", "BENCHMARKS.md")
    else:
        out_path = os.path.join(HERE, "out", "BENCHMARKS-%s.md" % ("quick" if args.quick
                                                                   else "partial"))
    if args.only:
        cfg["name"] += "-partial"
    for tool in ("redis-server", "/usr/bin/time", PY):
        if not shutil.which(tool):
            sys.exit("bench: %s is missing (run bench/deps)" % tool)
    for b in ("cworker", "cenqueue", "cproducer"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit("bench: %s/%s is missing (run scripts/build)" % (BIN, b))
    if "callgrind" in phases and not shutil.which("valgrind"):
        sys.exit("bench: valgrind is missing (run bench/deps)")

    def on_term(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    command = "bench/run" + "".join(" " + a for a in sys.argv[1:])
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
    busy0, own0 = cpu_busy_seconds(), own_cpu_seconds()
    tmp = tempfile.mkdtemp(prefix="cq-bench.")
    b = Bench(cfg, tmp)
    errors = []
    interrupted = False
    try:
        b.start_servers()
        for ph in phases:
            log("== %s" % ph)
            try:
                getattr(b, "phase_" + ph)()
            except BenchError as e:
                errors.append("%s: %s" % (ph, e))
                log("FAILED %s: %s" % (ph, e))
                # Workers of a failed phase must not spill into the next one.
                for p in list(b.procs):
                    if p is not b.redis_proc and p.log_name not in ("httpd.log",
                                                                   "fake_imgur.log"):
                        b.stop(p, signal.SIGKILL)
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = e.code if isinstance(e, SystemExit) else 130
    finally:
        b.stop_all()
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        log("interrupted: every server and worker is stopped; no report written")
        return interrupted
    elapsed = time.monotonic() - T0
    machine["other_cpu"] = max(0.0, (cpu_busy_seconds() - busy0) - (own_cpu_seconds() - own0))
    machine["load_end"] = open("/proc/loadavg").read().split()[:3]
    os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
    raw = os.path.join(HERE, "out", "%s.json" % cfg["name"])
    with open(raw, "w") as f:
        json.dump({"command": command, "machine": machine, "config": cfg, "results": b.res,
                   "errors": errors, "seconds": elapsed}, f, indent=1)
    text = report(b, machine, command, elapsed, out_path, errors)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out_path + ".tmp", out_path)
    log("wrote %s and %s" % (os.path.relpath(out_path, SRC), os.path.relpath(raw, SRC)))
    # The goals table, on the terminal too.
    for line in text.split("## Goals", 1)[1].split("##", 1)[0].strip().splitlines():
        if line.startswith("|"):
            print(line)
    if errors:
        print("bench: %d phase(s) failed:" % len(errors))
        for e in errors:
            print("  " + e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
