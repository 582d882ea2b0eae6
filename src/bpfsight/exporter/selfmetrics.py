"""What the exporter itself costs and loses: each BPF program's run count and run time
(bpf_stats), records its ring buffers dropped, inserts refused by full maps, maps drained to
make room, and how long collecting and scraping took."""

from ..bpf import info
from .metrics import counter, gauge


class SelfMetrics:
    """A collector of metric families over the running collectors; the server records timings."""

    def __init__(self, collectors, max_series, bpf_stats):
        self.collectors = collectors
        self.max_series = max_series
        self.bpf_stats = bpf_stats
        self.durations = {}   # collector -> seconds its last families() took
        self.errors = {c.name: 0 for c in collectors}
        self.scrape_s = 0.0   # the previous scrape: collect and render
        self.samples = 0      # samples the previous scrape exported

    def collect(self):
        yield from self._programs()
        yield from self._losses()
        yield from self._timings()

    def _programs(self):
        # event: the hook (sched_switch, sys_exit, ...), so what every collector together costs
        # per event class is one sum away
        runs = counter(
            "bpfsight_bpf_program_runs_total",
            "Times each BPF program ran (kernel bpf_stats; counts only while stats are on).",
            ["collector", "program", "event"])
        secs = counter(
            "bpfsight_bpf_program_run_seconds_total",
            "Time each BPF program ran, timing overhead (~20-50 ns a run) included.",
            ["collector", "program", "event"])
        for c in self.collectors:
            for name, prog in c.obj.programs.items():
                if prog.fd >= 0:
                    pi = info.prog_info(prog.fd)
                    event = prog.section.rsplit("/", 1)[-1]
                    runs.add([c.name, name, event], pi.run_cnt)
                    secs.add([c.name, name, event], pi.run_time_ns / 1e9)
        yield runs
        yield secs
        yield gauge("bpfsight_bpf_stats_enabled",
                    "1 while the exporter holds BPF run-time statistics on.",
                    value=int(self.bpf_stats))

    def _losses(self):
        drops = counter("bpfsight_ringbuf_drops_total",
                        "Records lost because a ring buffer was full.",
                        ["collector"])
        full = counter("bpfsight_map_full_total",
                       "Samples lost because an aggregation map was full.",
                       ["collector"])
        drains = counter("bpfsight_map_drains_total",
                         "Times a map past half full was drained (values kept) to "
                         "make room for new keys.", ["collector", "map"])
        for c in self.collectors:
            maps = c.obj.maps
            if "event_drops" in maps:
                drops.add([c.name], maps["event_drops"].sum_cpus())
            if "map_full" in maps:
                full.add([c.name], maps["map_full"].sum_cpus())
            for r in c.reads:
                if r.drains:
                    drains.add([c.name, r.map.name], r.drains_done)
        yield drops
        yield full
        yield drains

    def _timings(self):
        dur = gauge("bpfsight_collector_duration_seconds",
                    "Time each collector took to read and decode its maps in this "
                    "scrape.", ["collector"])
        errors = counter("bpfsight_collector_errors_total",
                         "Scrapes in which a collector failed.", ["collector"])
        for c in self.collectors:
            dur.add([c.name], self.durations.get(c.name, 0.0))
            errors.add([c.name], self.errors[c.name])
        yield dur
        yield errors
        yield gauge("bpfsight_scrape_duration_seconds",
                    "Time the previous scrape took to collect and render.",
                    value=self.scrape_s)
        yield gauge("bpfsight_scrape_samples",
                    "Samples the previous scrape exported.", value=self.samples)
        yield gauge("bpfsight_series_limit",
                    "Label sets named per metric before the rest go to 'other' "
                    "(--max-series).", value=self.max_series)
