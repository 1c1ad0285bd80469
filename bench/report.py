"""report.py - the Markdown report of a bench run, built from its saved results alone.

bench.py measures and saves everything a report needs in bench/out/<mode>.json: the raw
samples of every measurement, the configuration, the machine, the setup of the fixtures and the
errors of failed phases. This module reads such a file and writes the report, so the report of
a run can be rebuilt (`bench/run --report-only`) after an edit here without measuring again;
the measuring run itself writes its report the same way, from the file it has just saved.

A section whose phase has no results says so (not run, failed, or absent from the file) and
the others are written as usual. The hand-written text between the analysis markers of the
file being rewritten is kept byte for byte. Standard library only.
"""
import json
import math
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
DOCS_REPORT = os.path.join(SRC, "docs", "BENCHMARKS.md")

# The result keys (or key prefixes) each phase of bench.py saves, in the order the phases run.
PHASE_KEYS = {
    "enqueue": ("cq_enqueue", "rq_enqueue_many", "redis_floor_enqueue"),
    "noop": ("cq_drain_", "cq_defaults"),
    "rq": ("rq_simple", "rq_fork"),
    "latency": ("cq_latency", "rq_latency"),
    "recovery": ("cq_recovery",),
    "lesson": ("py_", "rq8", "cq_sequential", "cq_threads", "cq_processes", "cq_async",
               "cq_dist"),
    "memory": ("cq_rss", "rq_rss", "rss_floor"),
    "callgrind": ("cg_",),
    "profile": ("profile",),
}

ANALYSIS_BEGIN = "<!-- analysis:begin (kept by bench/run when it rewrites this file) -->"
ANALYSIS_END = "<!-- analysis:end -->"
ANALYSIS_EMPTY = "\n(Not written yet: read the profile above.)\n"


class ReportError(Exception):
    pass


# ---- statistics and formatting --------------------------------------------------------------

def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)] if s else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_int(x):
    return "{:,.0f}".format(x) if x is not None else "-"


def fmt_s(x):
    return "%.3f s" % x if x is not None else "-"


def fmt_ms(x):
    return "%.2f ms" % (x * 1e3) if x is not None else "-"


def fmt_mb(x):
    return "%.1f MB" % (x / 1e6) if x is not None else "-"


def fmt_kib(kib):
    """KiB (as /proc gives them) in MB of 10^6 bytes."""
    return "%.1f MB" % (kib * 1.024e-3)


def fmt_ratio(x):
    if x is None:
        return "-"
    return "%.0fx" % x if x >= 100 else ("%.1fx" % x if x >= 10 else "%.2fx" % x)


def pss_text(r):
    """The proportional set size (shared pages divided among the processes that map them)."""
    if not r or "Pss" not in r:
        return ""
    return (" (its proportional set size then: %.1f MB, of which %.1f MB anonymous and %.1f MB "
            "file-backed)" % (r["Pss"] * 1024 / 1e6, r.get("Pss_Anon", 0) * 1024 / 1e6,
                              r.get("Pss_File", 0) * 1024 / 1e6))


def judge(value, goal, higher):
    """(verdict, by how much) for a value against a goal: at least `goal` when `higher`, else
    at most."""
    if value is None:
        return "not measured", ""
    if higher:
        if value >= goal:
            return "PASS", "+%.0f%% above the goal" % ((value / goal - 1) * 100)
        return "MISS", "%.0f%% short: needs %.2fx more" % ((1 - value / goal) * 100, goal / value)
    if value <= goal:
        return "PASS", "%.0f%% under the goal" % ((1 - value / goal) * 100)
    return "MISS", "%.0f%% over: needs %.2fx less" % ((value / goal - 1) * 100, value / goal)


def samples_text(e, f):
    return ", ".join(f(x) for x in e["samples"]) if e else "-"


def code_block(intro, lines):
    """A paragraph, then `lines` in a fenced block."""
    return [intro, "", "```"] + lines + ["```", ""]


def perf_block(intro, rows):
    """Rows of `perf report` ([percent, samples, name]) under a paragraph."""
    return code_block(intro, ["%6.2f%%  %7d  %s" % (p, s, name) for p, s, name in rows])


def callgrind_block(intro, rows):
    """Rows of callgrind_annotate ([Ir per job, percent, function]) under a paragraph."""
    return code_block(intro, ["%9s Ir/job %6.2f%%  %s" % (fmt_int(per), p, name)
                              for per, p, name in rows])


# ---- the saved results ----------------------------------------------------------------------

class Run:
    """The saved results of one bench run, as bench.py wrote them."""

    def __init__(self, data):
        missing = [k for k in ("command", "machine", "config", "results", "seconds", "setup")
                   if k not in data]
        if missing:
            raise ReportError("no %s in the saved results (written by an older bench.py? "
                              "run the bench again)" % ", ".join(missing))
        self.command = data["command"]
        self.machine = data["machine"]
        self.cfg = data["config"]
        self.res = data["results"]
        self.setup = data["setup"]
        self.seconds = data["seconds"]
        self.errors = data.get("errors", [])
        self.phases = data.get("phases")

    def med(self, key):
        e = self.res.get(key)
        return median(e["samples"]) if e and e["samples"] else None

    def samples(self, key, f):
        return samples_text(self.res.get(key), f)

    def ratios(self, a, b):
        """a / b run by run, for two keys measured in the same rounds (the runs alternate)."""
        ea, eb = self.res.get(a), self.res.get(b)
        if not ea or not eb:
            return []
        return [x / y for x, y in zip(ea["samples"], eb["samples"]) if y]

    def measured(self, phase):
        return any(k.startswith(PHASE_KEYS[phase]) for k in self.res)

    def missing_phases(self):
        return [ph for ph in PHASE_KEYS if not self.measured(ph)]

    def why_missing(self, phase):
        if any(e.startswith(phase + ":") for e in self.errors):
            return "the `%s` phase failed in this run (see the errors at the top)" % phase
        if self.phases is not None and phase not in self.phases:
            return "the `%s` phase was not run" % phase
        return "the saved results hold nothing from the `%s` phase" % phase

    def not_measured(self, *phases):
        return ["Not measured: %s." % "; ".join(self.why_missing(ph) for ph in phases), ""]


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReportError("no saved results at %s: measure first (bench/run without "
                          "--report-only, same --quick/--only)" % path)
    except OSError as e:
        raise ReportError("cannot read the saved results: %s" % e)
    except ValueError as e:
        raise ReportError("%s: not a bench results file: %s" % (path, e))
    try:
        return Run(data)
    except ReportError as e:
        raise ReportError("%s: %s" % (path, e))


def default_out(name):
    """Where the report of a run named `name` (its config's name) goes by default."""
    if name == "full":
        return DOCS_REPORT
    return os.path.join(HERE, "out", "BENCHMARKS-%s.md" % ("quick" if name.startswith("quick")
                                                           else "partial"))


# ---- sections -------------------------------------------------------------------------------

def header(run):
    m, elapsed = run.machine, run.seconds
    cpus = elapsed * int(m["nproc"])
    busy = ["%s %.0f%%" % (n, p) for p, n in m["busy_start"] if p >= 5]
    L = ["# Benchmarks", "",
         "cq against RQ %s (Debian's python3-rq) and the lesson's scripts, measured in one run "
         "of" % m["rq"],
         "`bench/run` on one private Redis, everything on 127.0.0.1. Generated from the run's "
         "saved results: edit `bench/report.py`, not the tables; only the section *What limits "
         "it* is written by hand (the report keeps it when it rewrites this file).",
         "",
         "- **Command:** `%s` (%s mode, took %.0f s)" % (run.command, run.cfg["name"], elapsed),
         "- **Date:** %s; **tree:** `%s`" % (m["date"], m["commit"]),
         "- **Machine:** %s CPUs (%s), %s RAM, Linux %s, %s"
         % (m["nproc"], m["cpu"], m["memory"], m["kernel"], m["os"]),
         "- **Noise:** CPU used by processes outside this run while it ran: %.0f s of the %.0f s "
         "the machine's %s CPUs had (%.0f%%); load average %s at the start, %s at the end%s"
         % (m["other_cpu"], cpus, m["nproc"], 100.0 * m["other_cpu"] / cpus,
            " ".join(m["load_start"]), " ".join(m["load_end"]),
            "; busy at the start: " + ", ".join(busy) if busy else "") + cpu_probe_text(run),
         "- **Software:** Redis %s (%s), RQ %s with redis-py %s on Python %s (/usr/bin/python3), "
         "%s, %s" % (m["redis"], "with cq's module: takes and outcomes through CQ.TAKE1 and CQ.APPLY1"
                     if m.get("redis_module") else "without cq's module: takes and outcomes "
                     "through the Lua scripts", m["rq"], m["redis_py"], m["python"], m["cc"], m["valgrind"]),
         "- **Rules:** each value is the median of the runs listed below it; each ratio is "
         "against a baseline measured in the same run. Timings on a shared 2-core machine are "
         "noisy: read the ratios, and the per-run samples in the detail tables."]
    missing = run.missing_phases()
    if missing:
        L.append("- **Not in these results:** the %s %s (each section says why)"
                 % ("phase" if len(missing) == 1 else "phases",
                    ", ".join("`%s`" % ph for ph in missing)))
    if run.errors:
        L += ["", "**Some measurements failed in this run:**"]
        L += ["- %s" % e for e in run.errors]
    return L + [""]


def memory_floor(run):
    """The resident set that the libraries alone set (bench/rss_floor.c after
    curl_easy_init): (VmRSS KiB, RssAnon KiB), or None."""
    fl = run.res.get("rss_floor")
    return (fl["easy_init"][0], fl["easy_init"][1]) if fl and "easy_init" in fl else None


def memory_floor_downloads(run):
    """The private memory of libcurl alone with 64 downloads in flight (bench/rss_floor.c
    URL 64: one thread and multi handle, libcurl's defaults): RssAnon KiB, or None."""
    fl = run.res.get("rss_floor")
    return fl["downloads_64"][1] if fl and "downloads_64" in fl else None


def cpu_probe_text(run):
    """How steady the machine's speed was: bench.py's cpu_probe (a fixed piece of work, timed
    in CPU time) before each phase and each round of no-op drains."""
    ps = [p["ms"] for p in run.res.get("cpu_probe") or []]
    if len(ps) < 2:
        return ""
    lo, hi = min(ps), max(ps)
    return ("; speed: a fixed piece of work (bench.py's `cpu_probe`, %d times) took %.1f-%.1f "
            "ms of CPU, median %.1f: the slowest %.0f%% slower than the fastest%s"
            % (len(ps), lo, hi, median(ps), 100.0 * (hi / lo - 1),
               " (the host ran this machine's CPUs slower at times: read the ratios, not the "
               "absolute rates)" if hi > 1.2 * lo else ""))


def goal_rows_round2(run):
    """The goals of the second performance round: Redis CPU a job, one worker tuned and with
    its defaults, bulk enqueue, private memory, instructions a job."""
    c, m = run.cfg, run.med
    noop1, rqs = m("cq_drain_1"), m("rq_simple")
    r1, r1main = m("cq_drain_1_redis_us"), m("cq_drain_1_redis_main_us")
    dflt, dnull, dwarn = m("cq_defaults"), m("cq_defaults_null"), m("cq_defaults_warn")
    info_cost = median(run.ratios("cq_defaults", "cq_defaults_warn"))
    d = run.res.get("cworker_defaults") or {}
    enq, rqe, efloor = m("cq_enqueue"), m("rq_enqueue_many"), m("redis_floor_enqueue")
    anon, rss, pss = m("cq_rss_anon"), m("cq_rss"), m("cq_rss_pss")
    parts = run.res.get("cq_rss_parts") or []
    if anon is None and parts:   # saved by an older bench.py: its largest seen, and its PSS
        anon = median([pk["anon"] * 1024 for pk in parts])   # when the RSS was largest
        pss = median([pk["rollup"]["Pss"] * 1024 for pk in parts if "Pss" in pk.get("rollup", {})])
    floor, floor64 = memory_floor(run), memory_floor_downloads(run)
    rows = [
        ("Redis CPU a job, no-op drain by 1 `cworker -c %d --log-level warn` (take + start + "
         "finish; `INFO cpu`)" % c["drain_conc"],
         "%.2f us (main thread %.2f us)" % (r1, r1main) if r1 is not None else "-",
         "12.3 us before the second round", "", "<= 5 us", judge(r1, 5, False)),
        ("No-op throughput, 1 `cworker -c %d --log-level warn`, %s jobs, status written"
         % (c["drain_conc"], fmt_int(c["drain_jobs"])),
         fmt_int(noop1) + " jobs/s", "RQ SimpleWorker " + fmt_int(rqs) + " jobs/s",
         fmt_ratio(ratio(noop1, rqs)), ">= 120,000 jobs/s", judge(noop1, 120000, True)),
        ("  same, against RQ", "", "", fmt_ratio(ratio(noop1, rqs)), ">= 250x RQ SimpleWorker",
         judge(ratio(noop1, rqs), 250, True)),
        ("No-op throughput, 1 `cworker` with the default flags (-c %s, log level %s: a line a "
         "job; stderr to a file)" % (d.get("concurrency", "?"), d.get("log_level", "?")),
         fmt_int(dflt) + " jobs/s", "stderr to /dev/null " + fmt_int(dnull) + " jobs/s",
         fmt_ratio(ratio(dflt, dnull)), ">= 80,000 jobs/s", judge(dflt, 80000, True)),
        ("  what logging at %s costs: defaults / the same with `--log-level warn`, median of "
         "the rounds" % d.get("log_level", "?"), "%.3f" % info_cost if info_cost else "-",
         "`--log-level warn` " + fmt_int(dwarn) + " jobs/s", "",
         ">= 0.90 (costs at most 10%)", judge(info_cost, 0.90, True)),
        ("Bulk enqueue, `cenqueue --stdin`, %s jobs" % fmt_int(c["enq_cq"]),
         fmt_int(enq) + " jobs/s", "RQ enqueue_many " + fmt_int(rqe) + " jobs/s"
         + ("; Redis alone, the same writes as plain commands (redis-benchmark): %s jobs/s, "
            "%.2fx of it" % (fmt_int(efloor), ratio(enq, efloor)) if efloor else ""),
         fmt_ratio(ratio(enq, rqe)), ">= 500,000 jobs/s", judge(enq, 500000, True)),
        ("Private (anonymous) memory of `cworker -c 64`, 64 downloads in flight (peak)",
         fmt_mb(anon), "RSS %s, PSS %s; the libraries' floor (libcurl alone): %s anonymous, "
         "%s RSS%s" % (fmt_mb(rss), fmt_mb(pss), fmt_kib(floor[1]) if floor else "-",
                       fmt_kib(floor[0]) if floor else "-",
                       "; with 64 downloads in flight (libcurl alone, one multi handle): %s "
                       "anonymous" % fmt_kib(floor64) if floor64 else ""), "", "<= 4 MB",
         judge(anon, 4e6, False)),
    ]
    rows += callgrind_goal_rows(run)
    return [("2",) + r[:5] + r[5] for r in rows]


def callgrind_goal_rows(run):
    """The regression check's numbers (tests/test_perf_callgrind.sh) against its baseline."""
    chk = run.res.get("cg_check")
    if not chk or not chk.get("baseline"):
        return [("Instructions a job, `cworker` and `cenqueue` (callgrind; "
                 "`tests/test_perf_callgrind.sh`)", "-", "-", "", "<= 1.10x the baseline",
                 judge(None, 1.10, False))]
    rows = []
    names = {"redis": "redis-server` draining for `cworker -c 64",
             "redismodule": "redis-server` with cq's module, draining for `cworker -c 64",
             "redisenqueue": "redis-server` with cq's module, for `cenqueue --stdin"}
    for prog in ("cworker", "cenqueue", "redis", "redismodule", "redisenqueue"):
        now, base = chk.get(prog), chk["baseline"].get(prog)
        if prog in names and now is None and base is None:
            continue  # a run from before Redis (or the module) was counted
        rows.append(("Instructions a job, `%s` (callgrind; `tests/test_perf_callgrind.sh`)"
                     % names.get(prog, prog),
                     fmt_int(now), "baseline %s (%s)" % (fmt_int(base),
                                                                  chk["baseline"].get("date", "?")),
                     "%.3f" % (now / base) if now and base else "-",
                     "<= 1.10x the baseline", judge(ratio(now, base), 1.10, False)))
    return rows


def goal_rows_round1(run):
    """The first round's goals, kept to show that nothing went back."""
    c, m = run.cfg, run.med
    images, latency = run.setup["images"], run.setup["latency"]
    noop1, rqs = m("cq_drain_1"), m("rq_simple")
    enq, rqe = m("cq_enqueue"), m("rq_enqueue_many")
    dist, pyth, rq8 = m("cq_dist"), m("py_threads"), m("rq8")
    rss, rqrss = m("cq_rss"), m("rq_rss")
    cseq, cthr, casy = m("cq_sequential"), m("cq_threads"), m("cq_async")
    lat = run.res.get("cq_latency")
    lat_med = median(lat["samples"]) if lat else None
    lat_p99 = pct(lat["samples"], 99) if lat else None
    rq_lat = run.res.get("rq_latency")
    rec = m("cq_recovery")
    rows = [
        ("No-op throughput, 1 `cworker -c %d`, %s jobs, status written"
         % (c["drain_conc"], fmt_int(c["drain_jobs"])),
         fmt_int(noop1) + " jobs/s", "RQ SimpleWorker " + fmt_int(rqs) + " jobs/s",
         fmt_ratio(ratio(noop1, rqs)), ">= 50,000 jobs/s", judge(noop1, 50000, True)),
        ("  same, against RQ", "", "", fmt_ratio(ratio(noop1, rqs)), ">= 100x RQ SimpleWorker",
         judge(ratio(noop1, rqs), 100, True)),
        ("Bulk enqueue, `cenqueue --stdin`, %s jobs" % fmt_int(c["enq_cq"]),
         fmt_int(enq) + " jobs/s", "RQ enqueue_many " + fmt_int(rqe) + " jobs/s",
         fmt_ratio(ratio(enq, rqe)), ">= 100,000 jobs/s", judge(enq, 100000, True)),
        ("  same, against RQ", "", "", fmt_ratio(ratio(enq, rqe)), ">= 10x enqueue_many",
         judge(ratio(enq, rqe), 10, True)),
        ("Lesson download, %d images at %.1f s: `cproducer` + 2 `cworker -c 64`"
         % (images, latency), fmt_s(dist), "lesson threads(8) " + fmt_s(pyth),
         fmt_ratio(ratio(pyth, dist)), ">= 4x faster than the lesson's threads",
         judge(ratio(pyth, dist), 4, True)),
        ("  same, absolute (machine-dependent)", fmt_s(dist), "RQ, 8 workers " + fmt_s(rq8),
         fmt_ratio(ratio(rq8, dist)), "< 0.6 s", judge(dist, 0.6, False)),
        ("Peak RSS of `cworker -c 64` during the downloads", fmt_mb(rss),
         "one RQ worker " + fmt_mb(rqrss),
         fmt_ratio(ratio(rqrss, rss)) + (" less" if rss and rqrss else ""), "< 10 MB",
         judge(rss, 10e6, False)),
        ("`cproducer --mode threads -j 8` vs `--mode sequential`", fmt_s(cthr),
         "sequential " + fmt_s(cseq), fmt_ratio(ratio(cseq, cthr)), ">= 7x faster",
         judge(ratio(cseq, cthr), 7, True)),
        ("`cproducer --mode async -j 64` vs `--mode sequential`", fmt_s(casy),
         "sequential " + fmt_s(cseq), fmt_ratio(ratio(cseq, casy)), ">= 30x faster",
         judge(ratio(cseq, casy), 30, True)),
        ("Idle pickup, enqueue to start: median (p99 %s)" % fmt_ms(lat_p99), fmt_ms(lat_med),
         "RQ SimpleWorker " + fmt_ms(median(rq_lat["samples"]) if rq_lat else None), "",
         "< 50 ms", judge(lat_med, 0.05, False)),
        ("Recovery after a SIGKILL: jobs back in their queue (running again after %s)"
         % fmt_s(m("cq_recovery_restart")), fmt_s(rec),
         "RQ, Sidekiq OSS: never; asynq: about a minute", "", "< 15 s", judge(rec, 15, False)),
    ]
    return [("1",) + r[:5] + r[5] for r in rows]


def goal_rows(run):
    return goal_rows_round2(run) + goal_rows_round1(run)


def goals(run):
    L = ["## Goals", "",
         "| round | metric | cq (median) | baseline, same run (median) | ratio | goal | result "
         "| by how much |",
         "|---|---|---|---|---|---|---|---|"]
    L += ["| %s |" % " | ".join(r) for r in goal_rows(run)]
    return L + ["",
                "Round 2 is this round's goals (speed, round two); the rows of round 1 "
                "are the first round's goals, kept to show that nothing went back. Absolute "
                "goals (jobs/s, seconds, MB, us) depend on the machine; the ratios are the "
                "checks that travel. CPU a job is measured by the kernel (Redis's `INFO cpu`, "
                "the workers' rusage), so it moves less with the machine's load than jobs/s. "
                "MB are 10^6 bytes.", ""]


def fmt_us(x):
    return "%.2f" % x if x is not None else "-"


def throughput(run):
    c = run.cfg
    L = ["## No-op throughput and scaling", ""]
    if run.measured("noop"):
        noop1 = run.med("cq_drain_1")
        L += ["A queue pre-filled with %s `noop` jobs (by `cenqueue --stdin`); N `cworker "
              "--burst -c %d --log-level warn` processes started at once; timed from their "
              "start until `HGET cq:stats processed` reaches the job count (polled every 5 ms), "
              "then checked: queue and in-flight lists empty, nothing failed. Each job's status "
              "hash is written (`started`, then `finished`). CPU a job: Redis's from `INFO cpu` "
              "(used_cpu_sys + used_cpu_user, all its threads; *main*: its main thread, which "
              "runs the commands) read before the workers start and after they exit, and the "
              "workers' own, summed (user + system, from their rusage at exit); both include "
              "the workers' start-up and exit. The drains of this section and the next "
              "alternate, round by round."
              % (fmt_int(c["drain_jobs"]), c["drain_conc"]), "",
              "| workers | jobs/s (median) | vs 1 worker | Redis CPU a job, us (main thread) | "
              "cworker CPU a job, us (all workers) | runs (jobs/s) |",
              "|---|---|---|---|---|---|"]
        for nw in c["workers"]:
            key = "cq_drain_%d" % nw
            L.append("| %d | %s | %s | %s (%s) | %s | %s |" % (
                nw, fmt_int(run.med(key)), fmt_ratio(ratio(run.med(key), noop1)),
                fmt_us(run.med(key + "_redis_us")), fmt_us(run.med(key + "_redis_main_us")),
                fmt_us(run.med(key + "_worker_us")), run.samples(key, fmt_int)))
        L.append("")
        L += defaults_drains(run)
    else:
        L += run.not_measured("noop")
    if not run.measured("rq"):
        return L + run.not_measured("rq")
    return L + [
        "RQ, one worker draining pre-filled `rq_jobs.noop` jobs (`rq worker --burst -q`), timed "
        "from its first finished job to the last (start-up left out, in RQ's favour):", "",
        "| RQ worker | jobs | jobs/s (median) | runs (jobs/s) |",
        "|---|---|---|---|",
        "| SimpleWorker (`--worker-class rq.SimpleWorker`) | %s | %s | %s |"
        % (fmt_int(c["rq_simple_jobs"]), fmt_int(run.med("rq_simple")),
           run.samples("rq_simple", fmt_int)),
        "| default Worker (forks a work horse per job) | %s | %s | %s |"
        % (fmt_int(c["rq_fork_jobs"]), fmt_int(run.med("rq_fork")),
           run.samples("rq_fork", fmt_int)),
        ""]


def defaults_drains(run):
    """One worker with the default flags, logging a line a job, against --log-level warn."""
    c, d = run.cfg, run.res.get("cworker_defaults")
    if not d or "cq_defaults" not in run.res:
        return []
    L = ["With the default flags: `cworker --burst -u URL default`, nothing else: -c %d and "
         "log level %s (read from `cworker --help` at run time), so a line a job on stderr. "
         "Its stderr goes to a file, as a user would redirect it (what the goal counts), or "
         "to /dev/null; and the same worker with only `--log-level warn` added, which logs "
         "nothing a job. %s jobs each."
         % (d["concurrency"], d["log_level"], fmt_int(c["drain_jobs"])), "",
         "| `cworker` | stderr | jobs/s (median) | Redis CPU a job, us | cworker CPU a job, us "
         "| log a job | runs (jobs/s) |",
         "|---|---|---|---|---|---|---|"]
    for key, flags, where in (("cq_defaults", "defaults", "a file"),
                              ("cq_defaults_null", "defaults", "/dev/null"),
                              ("cq_defaults_warn", "`--log-level warn`", "a file")):
        lb = run.med(key + "_log_bytes")
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            flags, where, fmt_int(run.med(key)), fmt_us(run.med(key + "_redis_us")),
            fmt_us(run.med(key + "_worker_us")), "%.0f bytes" % lb if lb is not None else "-",
            run.samples(key, fmt_int)))
    rs = run.ratios("cq_defaults", "cq_defaults_warn")
    L += ["", "Defaults / `--log-level warn`, round by round (each pair ran back to back): %s; "
          "median %s." % (", ".join("%.3f" % x for x in rs), "%.3f" % median(rs) if rs else "-"),
          ""]
    return L


def sizing(run):
    """The model of jobs/s against workers, Redis CPU and worker CPU, checked against the
    drains."""
    L = ["## Sizing: a model", ""]
    if not run.measured("noop"):
        return L + run.not_measured("noop")
    c, m = run.cfg, run.med
    x1, r, w = m("cq_drain_1"), m("cq_drain_1_redis_us"), m("cq_drain_1_worker_us")
    if not x1 or not r or not w:
        return L + ["Not measured: this run's no-op drains have no CPU figures (an older "
                    "bench.py).", ""]
    ncpu = int(run.machine["nproc"])
    busy = [x for nw in c["workers"]
            for x in (run.res.get("cq_drain_%d_others_cores" % nw) or {"samples": []})["samples"]]
    others = median(busy) or 0.0
    cores = ncpu - others
    L += ["Jobs a second of W workers = min(W x X1, 1e6 / r, cores x 1e6 / (r + w)), where "
          "X1 = one worker's jobs/s (%s), r = Redis CPU a job (%.2f us) and w = one cworker's "
          "CPU a job (%.2f us), all three from the 1-worker drain above, and cores = the CPUs "
          "this machine had for Redis and the workers: its %d, less the %.2f that other "
          "processes kept busy during these drains (median; from /proc/stat), so %.2f. The "
          "three limits: the workers themselves; Redis, which runs every command on one "
          "thread, so one core's worth of CPU at most; and the CPUs that Redis and the workers "
          "share here (on separate hosts this one is per host: Redis's host and the workers' "
          "hosts each have their own)." % (fmt_int(x1), r, w, ncpu, others, cores), "",
          "| workers | predicted jobs/s | measured jobs/s (median) | error | limit that binds | "
          "measured r, us (Redis) | measured w, us (all workers) |",
          "|---|---|---|---|---|---|---|"]
    for nw in c["workers"]:
        key = "cq_drain_%d" % nw
        limits = [(nw * x1, "workers (W x X1)"), (1e6 / r, "Redis's one core (1e6 / r)"),
                  (cores * 1e6 / (r + w), "the %.2f shared CPUs (cores x 1e6 / (r + w))" % cores)]
        pred, which = min(limits)
        meas = m(key)
        L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
            nw, fmt_int(pred), fmt_int(meas),
            "%+.0f%%" % ((pred / meas - 1) * 100) if meas else "-", which,
            fmt_us(m(key + "_redis_us")), fmt_us(m(key + "_worker_us"))))
    L += ["", "Error = predicted / measured - 1. The measured r and w columns (w: the CPU of "
          "all the workers together, a job) show how far the CPU a job moves with the number "
          "of workers, which the model takes as fixed.", ""] + sizing_example(x1, r, w, ncpu)
    return L


def nice(x):
    """x rounded down to two significant digits (for a round target in the example)."""
    if x <= 0:
        return 0
    p = 10 ** max(0, int(math.floor(math.log10(x))) - 1)
    return int(x // p * p)


def sizing_example(x1, r, w, per_host):
    """A worked example from the measured X1, r and w, with worker hosts of per_host cores."""
    ceiling = 1e6 / r
    target = nice(0.7 * ceiling)
    redis_cores = target * r / 1e6
    workers = int(math.ceil(target / x1))
    worker_cores = target * w / 1e6
    hosts = int(math.ceil(worker_cores / per_host))
    return [
        "Worked example, from these numbers. One Redis can carry at most 1e6 / %.2f = %s "
        "no-op jobs a second, whatever the workers (its command thread is then always busy). "
        "For a target of %s jobs/s (70%% of that, leaving Redis room for bursts, "
        "persistence and clients): Redis needs %s x %.2f us = %.2f of its one core; the "
        "workers need %s / %s = %d cworker processes at the rate one reached here, using %s x "
        "%.2f us = %.1f cores in all: with %d-core worker hosts, %d of them (Redis on a host "
        "of its own). A higher target needs cheaper jobs for Redis (a smaller r) or more than "
        "one Redis (queues spread over them)."
        % (r, fmt_int(ceiling), fmt_int(target), fmt_int(target), r, redis_cores,
           fmt_int(target), fmt_int(x1), workers, fmt_int(target), w, worker_cores,
           per_host, hosts), "",
        "What the model assumes: the CPU a job costs Redis and a worker is the same at every "
        "number of workers and every rate (the table above shows how far it moves); a "
        "worker's rate does not grow past X1, measured here with Redis on the same machine "
        "and one round trip to it taking microseconds (on a network, a longer round trip "
        "lowers X1 unless -c is raised); nothing else runs on Redis's core; the jobs are "
        "no-ops, so a job's own work adds to w and not to r; and the numbers come from this "
        "machine (cores of another speed scale r and w).", ""]


def enqueue(run):
    c = run.cfg
    L = ["## Bulk enqueue", ""]
    if not run.measured("enqueue"):
        return L + run.not_measured("enqueue")
    return L + [
        "| producer | jobs | jobs/s (median) | runs (jobs/s) |",
        "|---|---|---|---|",
        "| `cenqueue --stdin --quiet < file` (one line `noop` per job; whole process timed) | "
        "%s | %s | %s |" % (fmt_int(c["enq_cq"]), fmt_int(run.med("cq_enqueue")),
                            run.samples("cq_enqueue", fmt_int)),
        "| RQ `Queue.prepare_data` + `Queue.enqueue_many` (in-process timing: interpreter "
        "start left out) | %s | %s | %s |" % (fmt_int(c["enq_rq"]),
                                              fmt_int(run.med("rq_enqueue_many")),
                                              run.samples("rq_enqueue_many", fmt_int)),
        ""] + enqueue_floor(run)


def enqueue_floor(run):
    """Redis alone doing the writes of a bulk enqueue, beside cq's Redis CPU a job."""
    c, m = run.cfg, run.med
    if m("redis_floor_enqueue") is None:
        return []
    cq_us, fl_us = m("cq_enqueue_redis_us"), m("redis_floor_enqueue_redis_us")
    return [
        "What Redis itself does of the same writes, in the same run: for each job a new status "
        "hash with the fields `cenqueue` wrote (`HSET`, a key as long as cenqueue's) and a "
        "record as long as cenqueue's pushed onto the queue (`LPUSH`), sent as plain commands "
        "by `redis-benchmark -c 4 -P 500 -r 1000000000` (the HSETs, then the LPUSHes; Redis "
        "busy throughout); jobs/s = jobs / (the HSETs' time + the LPUSHes' time). This is what "
        "any producer that writes those commands gets from this Redis on this machine:", "",
        "| writes | jobs | jobs/s (median) | runs (jobs/s) | Redis main thread CPU a job |",
        "|---|---|---|---|---|",
        "| `cenqueue --stdin` (as above) | %s | %s | %s | %s |"
        % (fmt_int(c["enq_cq"]), fmt_int(m("cq_enqueue")), run.samples("cq_enqueue", fmt_int),
           "%.2f us" % cq_us if cq_us is not None else "-"),
        "| Redis alone: `HSET` + `LPUSH` a job, redis-benchmark | %s | %s | %s | %s |"
        % (fmt_int(c["enq_cq"]), fmt_int(m("redis_floor_enqueue")),
           run.samples("redis_floor_enqueue", fmt_int),
           "%.2f us" % fl_us if fl_us is not None else "-"),
        ""]


def latency(run):
    L = ["## Latency: enqueue to start", ""]
    if not run.measured("latency"):
        return L + run.not_measured("latency")
    L += ["An idle worker; one job at a time, 10-30 ms apart; latency = the job's `started_at` "
          "- `enqueued_at` as the queue records them (cq: `cq:job:<id>` fields written by "
          "`cenqueue` and by the worker; RQ: `job.started_at - job.enqueued_at`).", "",
          "| worker | samples | median | p99 | max |",
          "|---|---|---|---|---|"]
    for key, name in (("cq_latency", "`cworker -c 16`, jobs from `cenqueue noop`"),
                      ("rq_latency", "RQ SimpleWorker, jobs from `Queue.enqueue`")):
        e = run.res.get(key)
        xs = e["samples"] if e else []
        L.append("| %s | %d | %s | %s | %s |" % (name, len(xs), fmt_ms(median(xs)),
                                                fmt_ms(pct(xs, 99)),
                                                fmt_ms(max(xs) if xs else None)))
    return L + [""]


def recovery(run):
    L = ["## Recovery after a SIGKILL", ""]
    if not run.measured("recovery"):
        return L + run.not_measured("recovery")
    return L + [
        "Worker A (`cworker -c 4`) runs four `sleep 60` jobs; worker B is idle; A is "
        "SIGKILLed. Timed from the kill until all four jobs are back at the head of their queue "
        "(each job's `recovered` count is 1), and until B has started all four. B looks A's "
        "connections up in `CLIENT LIST` once a second and takes A's jobs back when two "
        "passes in a row find none, so 1-2 s is expected (A's lease, 10 s, would take 8-11 s: "
        "docs/OPERATIONS.md, \"Leases\").", "",
        "| | median | runs |",
        "|---|---|---|",
        "| back in the queue | %s | %s |" % (fmt_s(run.med("cq_recovery")),
                                            run.samples("cq_recovery", fmt_s)),
        "| running on worker B | %s | %s |" % (fmt_s(run.med("cq_recovery_restart")),
                                               run.samples("cq_recovery_restart", fmt_s)),
        ""]


LESSON_ROWS = (
    ("py_single", "lesson `single.py` (sequential)"),
    ("py_threads", "lesson threads, 8 `DownloadWorker`s"),
    ("py_processes", "lesson processes, `Pool(8)`"),
    ("rq8", "lesson RQ: `lesson_rq.py` + 8 `rq worker` (forking)"),
    ("cq_sequential", "`cproducer --mode sequential`"),
    ("cq_threads", "`cproducer --mode threads -j 8`"),
    ("cq_processes", "`cproducer --mode processes -j 8`"),
    ("cq_async", "`cproducer --mode async -j 64`"),
    ("cq_dist", "`cproducer` + 2 `cworker -c 64` (distributed)"),
)


def lesson_row(run, key, name):
    e = run.res.get(key)
    if e is None:
        no_mode = (key.startswith("cq_") and key != "cq_dist"
                   and not run.res.get("cproducer_modes"))
        return "| %s | 0 | not measured%s | | | |" % (
            name, " (`cproducer` has no `--mode` in this tree)" if no_mode else "")
    v = run.med(key)
    return "| %s | %d | %s | %s | %s | %s |" % (
        name, len(e["samples"]), fmt_s(v), fmt_ratio(ratio(run.med("py_single"), v)),
        fmt_ratio(ratio(run.med("py_threads"), v)), samples_text(e, lambda x: "%.3f" % x))


def lesson(run):
    s = run.setup
    L = ["## The lesson's download, side by side", ""]
    if not run.measured("lesson"):
        return L + run.not_measured("lesson")
    L += ["The lesson's run: sequential, 91 images in 19.4 s (about 0.2 s each); threads(8) "
          "4.1 s (4.7x). Here: %d .jpg links from the local fake Imgur API (a generated "
          "gallery: the two recorded pages plus copies of their jpeg items, %d items in all, "
          "albums, gifs and pngs filtered out by the lesson's `.jpg` rule), each image served "
          "after %.1f s by tests/fixtures/httpd.py (%d bytes, TCP_NODELAY set). Every run "
          "downloads into a fresh directory and is checked: %d files of the right size."
          % (s["images"], s["gallery_items"], s["latency"], s["image_size"], s["images"]), "",
          "Times are the program's own `Took` (as in the article, from the start of its main), "
          "except the distributed cq row: from `cproducer`'s start until the workers' processed "
          "counter has grown by %d (bench clock, 2 ms polls). Both distributed rows use workers "
          "that were already running and idle." % s["images"], "",
          "| version | runs | Took (median) | vs lesson sequential | vs lesson threads | runs "
          "(s) |",
          "|---|---|---|---|---|---|"]
    L += [lesson_row(run, key, name) for key, name in LESSON_ROWS]
    return L + [""]


def memory(run):
    c = run.cfg
    L = ["## Memory", ""]
    if not run.measured("memory"):
        return L + run.not_measured("memory")
    L += ["Peak RSS from `/usr/bin/time -f %%M` (the largest resident set of the process and of "
          "the children it waited for). cq: `cworker -c 64 --burst` downloading the %d queued "
          "images (64 downloads at once). RQ: one `rq worker --burst` (the default worker, whose "
          "forked work horses count too) downloading %d of them."
          % (run.setup["images"], c["mem_rq_jobs"]), "",
          "| worker | peak RSS (median) | runs | peak anonymous (private) | peak PSS |",
          "|---|---|---|---|---|",
          "| `cworker -c 64` | %s | %s | %s | %s |" % (
              fmt_mb(run.med("cq_rss")), run.samples("cq_rss", fmt_mb),
              fmt_mb(run.med("cq_rss_anon")), fmt_mb(run.med("cq_rss_pss"))),
          "| `rq worker` | %s | %s | | |" % (fmt_mb(run.med("rq_rss")),
                                             run.samples("rq_rss", fmt_mb)),
          "",
          "Anonymous and PSS: the largest `RssAnon` (`/proc/PID/status`) and `Pss` "
          "(`/proc/PID/smaps_rollup`) seen while polling every 5 ms, medians of the runs. The "
          "anonymous pages are the worker's own (heap, thread stacks, malloc arenas, the "
          "libraries' writable data); PSS counts each shared library page divided among the "
          "processes that map it.", ""]
    parts = run.res.get("cq_rss_parts")
    if parts:
        L += memory_references(run, parts[-1]) + memory_mappings(parts[-1])
    return L


def memory_references(run, pk):
    """Resident sets of the idle worker and of a program that only initialises libcurl."""
    idle, fl = run.res.get("cq_rss_idle"), run.res.get("rss_floor")
    if not idle and not fl:
        return []
    L = ["For reference, resident sets (VmRSS, of which anonymous / file-backed):", "",
         "| process | resident | anonymous | file-backed |",
         "|---|---|---|---|"]
    for step, label in (("start", "bench/rss_floor.c, linked with libcurl, at the start of "
                         "`main`"),
                        ("global_init", "... after `curl_global_init`"),
                        ("easy_init", "... and one `curl_easy_init`"),
                        ("downloads_64", "... and 64 downloads of the images in flight at once "
                         "(one thread, one multi handle, libcurl's defaults; the largest seen)")):
        if fl and step in fl:
            L.append("| %s | %s | %s | %s |" % ((label,) + tuple(fmt_kib(x) for x in fl[step])))
    if idle:
        L.append("| `cworker -c 64`, idle, 1 s after start | %s | %s | %s |"
                 % (fmt_kib(idle["VmRSS"]), fmt_kib(idle["RssAnon"]), fmt_kib(idle["RssFile"])))
    L.append("| `cworker -c 64`, downloading (peak, median of the runs above) | %s | %s | %s |"
             % (fmt_mb(run.med("cq_rss")), fmt_kib(pk["anon"]), fmt_kib(pk["file"])))
    return L + [""]


def memory_mappings(pk):
    """What the resident set of the last run was made of, by mapping."""
    L = ["What the resident set of `cworker -c 64` is made of (its `/proc` status and smaps, "
         "polled every 5 ms during the last run): at most %.1f MB anonymous (its own heap, "
         "thread stacks and malloc arenas) and %.1f MB file-backed (pages of shared "
         "libraries, which every process using them shares), %d threads. By mapping, when the "
         "resident set was largest%s:" % (pk["anon"] * 1024 / 1e6, pk["file"] * 1024 / 1e6,
                                          pk["threads"], pss_text(pk.get("rollup"))), "",
         "| resident | mapping |",
         "|---|---|"]
    L += ["| %.2f MB | `%s` |" % (kib * 1024 / 1e6, name) for kib, name in pk["maps"][:14]]
    return L + [""]


def callgrind(run):
    c, res = run.cfg, run.res
    L = ["## Instructions per job (callgrind)", ""]
    if not run.measured("callgrind"):
        return L + run.not_measured("callgrind")
    L += ["Instruction counts do not depend on the machine's load, so a regression shows here "
          "first. `valgrind --tool=callgrind`, all threads; *per job* = total / jobs (start-up "
          "included); *marginal* = (Ir of the larger run - Ir of the smaller) / (difference in "
          "jobs): start-up and shutdown cancel out. Redis's own instructions are not counted.",
          "",
          "| program | jobs | instructions (Ir) | per job | marginal per job |",
          "|---|---|---|---|---|"]
    for prog, key in (("`cworker -c 16 --burst` (noop jobs)", "cg_worker"),
                      ("`cenqueue --stdin --quiet`", "cg_enqueue")):
        big, small = c[key]
        ib = res.get("%s_%d" % (key, big))
        ism = res.get("%s_%d" % (key, small))
        marg = ((ib["samples"][0] - ism["samples"][0]) / (big - small)) if ib and ism else None
        for n, e in ((small, ism), (big, ib)):
            ir = e["samples"][0] if e else None
            L.append("| %s | %s | %s | %s | %s |" % (prog, fmt_int(n), fmt_int(ir),
                                                    fmt_int(ir / n if ir else None),
                                                    fmt_int(marg) if n == big else ""))
    L.append("")
    chk = res.get("cg_check")
    if chk:
        base = chk.get("baseline") or {}
        L += ["cworker's count here moves from run to run by a fifth and more (19-68%% "
              "between five runs, docs/TESTING.md): under valgrind its threads run one at a "
              "time, and the order they run in decides how many jobs each round trip to Redis "
              "carries. The regression check "
              "(`tests/test_perf_callgrind.sh`, CTest's `perf_callgrind`) measures in a way "
              "that repeats (docs/TESTING.md); its numbers in this run (%.0f s):" % chk["seconds"],
              "",
              "| program | instructions a job | baseline (%s, tree %s) | ratio | check |"
              % (base.get("date", "none"), base.get("tree", "-")),
              "|---|---|---|---|---|"]
        for prog in ("cworker", "cenqueue"):
            now, was = chk.get(prog), base.get(prog)
            q = ratio(now, was)
            L.append("| `%s` | %s | %s | %s | %s |" % (
                prog, fmt_int(now), fmt_int(was), "%.3f" % q if q else "-",
                "-" if q is None else "fails (over 1.10)" if q > 1.10 else
                "passes; the baseline should be lowered (under 0.90)" if q < 0.90 else "passes"))
        L.append("")
    return L + callgrind_tops(run)


def callgrind_tops(run):
    """Where the instructions of the larger callgrind runs go (callgrind_annotate)."""
    L = []
    for key, prog in (("cg_worker_top", "`cworker`"), ("cg_enqueue_top", "`cenqueue --stdin`")):
        top = run.res.get(key)
        if not top:
            continue
        L += callgrind_block("%s, where the instructions of the larger run go, per job "
                             "(start-up included). cq's own functions, inclusive (with what "
                             "they call):" % prog, top.get("inclusive", []))
        L += callgrind_block("The functions with the most instructions of their own "
                             "(exclusive):", top.get("exclusive", []))
    return L


def profile(run):
    prof = run.res.get("profile")
    L = ["## Profile: where a job's time goes", ""]
    if not prof:
        return L + run.not_measured("profile")
    if "error" in prof:
        return L + ["Not measured: %s." % prof["error"], ""]
    return L + profile_counters(run, prof) + profile_calls(prof) + profile_samples(prof)


# The rows of the counters table: (label, f(perf stat counters, seconds, jobs, Redis INFO
# deltas or None)).
COUNTER_ROWS = (
    ("wall time", lambda st, sec, jobs, ri: "%.2f us" % (sec * 1e6 / jobs)),
    ("CPU time (task-clock)", lambda st, sec, jobs, ri: "%.2f us (%.0f%%)" % (
        st.get("task-clock", 0) * 1e3 / jobs, st.get("task-clock", 0) / 10 / sec)),
    ("system calls", lambda st, sec, jobs, ri: "%.2f" % (
        st.get("raw_syscalls:sys_enter", 0) / jobs)),
    ("context switches", lambda st, sec, jobs, ri: "%.3f" % (
        st.get("context-switches", 0) / jobs)),
    ("Redis commands run (Lua's inner calls included)",
     lambda st, sec, jobs, ri: "%.2f" % ri["commands_per_job"] if ri else ""),
    ("client reads by Redis (about one per round trip)",
     lambda st, sec, jobs, ri: "%.3f" % ri["reads_per_job"] if ri else ""),
    ("bytes to / from Redis", lambda st, sec, jobs, ri: "%.0f / %.0f" % (
        ri["net_in_per_job"], ri["net_out_per_job"]) if ri else ""),
)


def profile_counters(run, prof):
    """perf stat and Redis INFO per job, for the drain and for the bulk enqueue."""
    n, en = prof["jobs"], prof.get("enqueue")
    cols = [("drain: `cworker`", prof["worker"], prof["seconds"], n, None),
            ("drain: redis-server", prof["redis"], prof["seconds"], n, prof["redis_info"])]
    if en:
        cols += [("enqueue: `cenqueue`", en["client"], en["seconds"], en["jobs"], None),
                 ("enqueue: redis-server", en["redis"], en["seconds"], en["jobs"],
                  en["redis_info"])]
    L = ["Counters over two runs: a 1-worker no-op drain of %s jobs (`cworker --burst -c %d` "
         "wrapped in `perf stat`; it ran at %s jobs/s) and a bulk enqueue of %s jobs "
         "(`cenqueue --stdin --quiet` in `perf stat`%s), with `perf stat -p` attached to "
         "redis-server and Redis's `INFO` read before and after. Per job; CPU as a share of "
         "one core over the wall time:"
         % (fmt_int(n), run.cfg["drain_conc"], fmt_int(prof["rate"]),
            fmt_int(en["jobs"]) if en else "-",
            "; %s jobs/s" % fmt_int(en["jobs"] / en["seconds"]) if en else ""), "",
         "| per job | " + " | ".join(col[0] for col in cols) + " |",
         "|---|" + "---|" * len(cols)]
    L += ["| %s | %s |" % (label, " | ".join(f(*col[1:]) for col in cols))
          for label, f in COUNTER_ROWS]
    return L + [""]


def profile_calls(prof):
    """cenqueue's system calls by name, and Redis's commands by name, per job."""
    L = []
    en = prof.get("enqueue")
    if en and en.get("syscalls"):
        L += ["System calls of `cenqueue --stdin` per job, by name (`strace -f -c`): "
              + ", ".join("%s %.2f" % (name, per) for per, name in en["syscalls"]) + ".", ""]
    for label, ri in (("drain", prof["redis_info"]), ("enqueue", en and en["redis_info"])):
        if ri:
            L += ["Redis commands per job, %s: " % label + ", ".join(
                "%s %.3f" % (k, v) for k, v in list(ri["calls_per_job"].items())[:12]) + ".", ""]
    return L


def profile_samples(prof):
    """The sampled profile (perf record -a -g): by process, library and function."""
    return (perf_block("Sampled profile: `perf record -a -g -e cpu-clock -F 999` over another "
                       "1-worker drain (%s jobs/s under the profiler), `perf report "
                       "--no-children`. CPU by process (percent of all samples on both CPUs; "
                       "`swapper` is idle time):" % fmt_int(prof["rate3"]), prof["by_comm"])
            + perf_block("cworker by library (`--comm cworker --sort dso`), percent of all "
                         "samples:", prof["worker_dso"])
            + perf_block("cworker's hottest functions (`--comm cworker --sort dso,sym`):",
                         prof["worker_sym"])
            + perf_block("redis-server's hottest functions:", prof["redis_sym"]))


def kept_analysis(path):
    """The text between the analysis markers of the file at `path`, exactly as it is there
    (newlines around it included); None when there is no such file or section."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    i = text.find(ANALYSIS_BEGIN)
    j = text.find(ANALYSIS_END, i + len(ANALYSIS_BEGIN)) if i >= 0 else -1
    if i < 0 or j < 0:
        return None
    return text[i + len(ANALYSIS_BEGIN):j]


def analysis(out_path):
    kept = kept_analysis(out_path)
    return ["## What limits it", "",
            ANALYSIS_BEGIN + (kept if kept is not None else ANALYSIS_EMPTY) + ANALYSIS_END, ""]


def reproduce(run):
    return ["## Reproduce", "",
            "```sh",
            "bench/run                # everything, several minutes; rewrites docs/BENCHMARKS.md",
            "bench/run --quick        # a smoke run, about two minutes; "
            "bench/out/BENCHMARKS-quick.md",
            "bench/run --report-only  # this file again from bench/out/full.json, measuring "
            "nothing",
            "bench/callpath           # no-op throughput and instructions a job against a "
            "baseline revision",
            "tests/test_perf_callgrind.sh build   # instructions a job against "
            "tests/perf/callgrind-baseline (CI)",
            "```", "",
            "Raw samples of this run: `bench/out/%s.json` (not committed). See bench/README.md."
            % run.cfg["name"]]


SECTIONS = (header, goals, throughput, sizing, enqueue, latency, recovery, lesson, memory,
            callgrind, profile)


def build(run, out_path):
    """The whole report; the analysis is taken from the file at out_path, if it has one."""
    L = []
    for section in SECTIONS:
        L += section(run)
    L += analysis(out_path) + reproduce(run)
    return "\n".join(L) + "\n"


def write(text, out_path):
    """Write through a temporary file in the same folder: a reader never sees half a report."""
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out_path + ".tmp", out_path)


def goals_table(text):
    """The rows of the report's goals table, to show on the terminal."""
    part = text.split("## Goals", 1)[1].split("##", 1)[0]
    return [line for line in part.strip().splitlines() if line.startswith("|")]
