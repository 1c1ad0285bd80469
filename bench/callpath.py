"""bench/callpath.py - run by bench/callpath: no-op drains alternating between today's
cworker and a baseline binary (bench.py's Bench does the servers and the timing)."""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="no-op throughput: this tree against a baseline")
    ap.add_argument("--baseline", required=True, help="the baseline's cworker binary")
    ap.add_argument("--rev", default="baseline", help="the baseline's name in the report")
    ap.add_argument("--runs", type=int, default=7, help="drains of each binary (default 7)")
    ap.add_argument("--jobs", type=int, default=200000, help="jobs a drain (default 200000)")
    ap.add_argument("--conc", type=int, default=64, help="cworker -c (default 64)")
    ap.add_argument("--no-callgrind", action="store_true",
                    help="skip the instruction counts (valgrind)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cq-callpath.")
    b = bench.Bench(dict(bench.FULL), tmp)
    now, base = [], []
    ir = {}
    try:
        b.start_servers()
        if not args.no_callgrind:
            # Instructions a job, deterministic where wall time is not: the marginal cost
            # between a 20k and a 10k drain under callgrind, so start-up cancels out.
            for name, binary in (("now", os.path.join(bench.BIN, "cworker")),
                                 ("base", args.baseline)):
                tot = {}
                for n in (20000, 10000):
                    b.flush()
                    b.cq_fill(n)
                    out = os.path.join(tmp, "cg.%s.%d" % (name, n))
                    b.run(["valgrind", "--tool=callgrind", "--quiet",
                           "--callgrind-out-file=" + out, binary, "-c", "16", "--burst",
                           "--log-level", "warn"], 1800, "cworker under callgrind")
                    tot[n] = b.callgrind_total(out)
                ir[name] = (tot[20000] - tot[10000]) / 10000.0
                bench.log("callgrind %s: %s instructions a job" % (name, bench.fmt_int(ir[name])))
        for i in range(args.runs):
            # Alternate which goes first, so that a drift in the machine hits both alike.
            order = [("now", None), ("base", args.baseline)]
            if i % 2:
                order.reverse()
            for name, binary in order:
                rate, dt = b.cq_drain(1, args.jobs, args.conc, cworker=binary)
                (now if name == "now" else base).append(rate)
                bench.log("run %d/%d %s: %.2fs, %s jobs/s" % (i + 1, args.runs, name, dt,
                                                            bench.fmt_int(rate)))
    finally:
        b.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    mn, mb = bench.median(now), bench.median(base)
    print("| cworker -c %d, %d no-op jobs, %d drains each | median jobs/s | runs |"
          % (args.conc, args.jobs, args.runs))
    print("|---|---|---|")
    print("| this tree | %s | %s |" % (bench.fmt_int(mn), ", ".join(bench.fmt_int(x) for x in now)))
    print("| %s | %s | %s |" % (args.rev, bench.fmt_int(mb),
                                ", ".join(bench.fmt_int(x) for x in base)))
    print()
    print("ratio (this tree / %s): %.3f" % (args.rev, mn / mb))
    if ir:
        print("instructions a job in cworker (callgrind, marginal 10k jobs, -c 16): this tree "
              "%s, %s %s, ratio %.3f" % (bench.fmt_int(ir["now"]), args.rev,
                                         bench.fmt_int(ir["base"]), ir["now"] / ir["base"]))


if __name__ == "__main__":
    main()
