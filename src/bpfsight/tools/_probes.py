"""What funccount, stackcount, trace and argdist share: the generic object bpf/probes.bpf.c,
configured per probe (bpfsight.probespec), attached once per probe, then reported every
interval (counting tools) or per event (trace)."""
import time

from .. import probespec
from ..errors import UsageError
from ..profile.symbols import Symbolizer
from ..report.output import clock_hms
from ..tool import StopSignal, Tool, event_ring, output_for, report_drops, stream_loop


class ProbeTool(Tool):
    object_name = "probes"
    target = True
    streams_events = False  # trace: records on the ring; the others count in the kernel

    def plan(self, opts):
        """[(Probe, cfg dict)] for opts (UsageError for a bad specification)."""
        raise NotImplementedError

    def configure(self, spec, opts):
        self._plan = self.plan(opts)
        if len(self._plan) > probespec.MAX_PROBES:
            raise UsageError(f"{len(self._plan)} probes, at most {probespec.MAX_PROBES}")

    def attach(self, obj, opts):
        probespec.configure(obj, [(i, cfg) for i, (_, cfg) in enumerate(self._plan)])
        probespec.attach_all(obj, [p for p, _ in self._plan], opts.pid)

    @property
    def probes(self):
        return [p for p, _ in self._plan]

    def run(self, args):
        out = output_for(args)
        spec = self.open(args)
        with StopSignal() as stop, spec.load() as obj:
            self.stop = stop
            self.attach(obj, args)
            out.banner(self.banner_for(args))
            if self.streams_events:
                dtype = obj.record_dtype()
                with event_ring(obj) as ring:
                    stream_loop(stop, ring, lambda r: self.events(r.read_array(dtype), obj,
                                                                  args, out),
                                duration=args.duration)
                    report_drops(ring, out)
                return 0
            # counting: the ring announces processes whose user stacks were taken, so their
            # maps are read while they live (symbolised at the report)
            self.symbolizer = Symbolizer()
            notes = lambda r: [self.symbolizer.capture(int(pid))  # noqa: E731
                               for pid in r.read_array("<u4")]
            deadline = time.monotonic() + args.duration if args.duration else None
            with event_ring(obj) as ring:
                while True:
                    step = args.interval or (deadline - time.monotonic() if deadline
                                             else 99999999)
                    stream_loop(stop, ring, notes, duration=max(0.01, step))
                    if args.interval and args.timestamp:
                        out.text(clock_hms())
                    self.report(obj, args, out, final=stop.stopped or not args.interval)
                    if stop.stopped or (deadline and time.monotonic() >= deadline) or \
                            not args.interval:
                        break
        return 0

    def counts(self, obj, delete):
        """[(count_key record, count)] read from the kernel (deleted with delete: per
        interval)."""
        keys, values = obj.map("counts").read_all(delete=delete)
        return list(zip(keys, values.tolist()))

    def events(self, batch, obj, args, out):
        raise NotImplementedError

    def report(self, obj, args, out, final):
        raise NotImplementedError
