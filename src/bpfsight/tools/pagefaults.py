"""pagefaults: minor and major page faults per process per interval, with every fault exception
taken (user or kernel mode) beside them, and with -f the files whose pages needed I/O."""
from ..bpf import features
from ..bpf.links import PERF_TYPE_SOFTWARE, online_cpus, perf_event_open
from ..report.grouped import first_comm, sum_per_cpu
from ..report.output import clock_hms
from ..tool import (TIMESTAMP, Option, StopSignal, Tool, disable_programs, flag,
                    interval_loop, output_for, positive_int)

PERF_COUNT_SW_PAGE_FAULTS_MIN, PERF_COUNT_SW_PAGE_FAULTS_MAJ = 5, 6
EXCEPTION_PROGS = ("pagefaults_user", "pagefaults_kernel", "pagefaults_user_raw",
                   "pagefaults_kernel_raw")
HEADER = "%-7s %-16s %10s %8s %10s %8s"
ROW = "%-7d %-16s %10d %8d %10s %8s"
FIELDS = ("minor", "major", "user", "kernel")


def has_exception_hooks():
    return (features.btf_tracepoint_exists("page_fault_user")
            or features.tracepoint_exists("exceptions", "page_fault_user"))


def attach_fault_events(obj):
    """The kernel's page-faults-min/-maj software events, every fault (period 1), on each CPU."""
    for cpu in online_cpus():
        for prog, config in (("pagefaults_minor", PERF_COUNT_SW_PAGE_FAULTS_MIN),
                             ("pagefaults_major", PERF_COUNT_SW_PAGE_FAULTS_MAJ)):
            obj.attach_perf_event(prog, perf_event_open(PERF_TYPE_SOFTWARE, config, cpu, period=1))


def process_rows(keys, values):
    sums = sum_per_cpu(values, FIELDS)
    rows = [{"pid": int(k), "comm": first_comm(values["comm"][i]),
             **{f: int(sums[f][i]) for f in FIELDS}} for i, k in enumerate(keys)]
    return sorted(rows, key=lambda r: (-(r["minor"] + r["major"]), r["pid"]))


class Pagefaults(Tool):
    name = "pagefaults"
    summary = "minor/major page faults per process"
    description = ("Count page faults per process: MINFLT and MAJFLT (software perf events "
                   "page-faults-min/-maj: as in /proc/PID/stat, less faults taken for "
                   "get_user_pages), and UFAULTS/KFAULTS, every page-fault exception taken in "
                   "user or kernel mode (exceptions:page_fault_user/kernel, x86 only; this also "
                   "counts faults that retry or fail). -f lists the files major faults read.")

    target = intervals = True
    banner = "Tracing page faults... Hit Ctrl-C to end."
    options = (
        flag("-f", "--files",
             help="also list files by major faults (looks up each major fault's VMA)"),
        Option("-r", "--rows", type=positive_int("rows"), default=20,
               help="maximum rows to print, default 20"),
        flag("--no-split", help="minor and major faults only, without the user/kernel split "
                                "(no exception hooks: cheaper)"),
        TIMESTAMP)

    def configure(self, spec, opts):
        spec.set_global("targ_files", opts.files)
        if opts.no_split or not has_exception_hooks():
            disable_programs(spec, *EXCEPTION_PROGS)

    def attach(self, obj, opts):
        obj.attach_all()
        attach_fault_events(obj)

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        split = spec.programs[EXCEPTION_PROGS[0]].autoload or \
            spec.programs[EXCEPTION_PROGS[2]].autoload
        with StopSignal() as stop, spec.load() as obj:
            self.attach(obj, args)
            faults, files = obj.map("faults"), obj.map("files")
            out.banner(self.banner)

            def tick():
                self._render(out, args, process_rows(*faults.read_all(delete=True)), split)
                if args.files:
                    self._render_files(out, args, *files.read_all(delete=True))

            interval_loop(stop, args.interval, args.count, tick)
        return 0

    def _render(self, out, args, rows, exceptions):
        out.text()
        if args.timestamp:
            out.text(clock_hms())
        out.text(HEADER % ("PID", "COMM", "MINFLT", "MAJFLT", "UFAULTS", "KFAULTS"))
        for r in rows[:args.rows]:
            if not exceptions:
                r["user"] = r["kernel"] = None
            out.text(ROW % (r["pid"], r["comm"], r["minor"], r["major"],
                            "-" if r["user"] is None else r["user"],
                            "-" if r["kernel"] is None else r["kernel"]))
            out.record({"tool": self.name, **r})

    def _render_files(self, out, args, keys, values):
        from ..report.grouped import comm_of
        out.text("\n%8s  %s" % ("MAJFLT", "FILE"))
        order = sorted(zip(keys, values), key=lambda kv: -int(kv[1]["major"]))
        for key, val in order[:args.rows]:
            name = comm_of(val["name"]) if int(key["ino"]) else "[anon: swap-in]"
            out.text("%8d  %s" % (int(val["major"]), name))
            out.record({"tool": self.name, "file": name, "ino": int(key["ino"]),
                        "dev": int(key["dev"]), "major": int(val["major"])})
