"""`bpfsight exporter`: the tool suite's in-kernel aggregates served to Prometheus.

Each collector loads a tool's own BPF object (biolatency, biostat, runqlat, ...) configured to
aggregate in the kernel, and decodes its maps with that tool's own helpers when Prometheus
scrapes: one definition of a metric feeds the terminal, NDJSON and Prometheus.

    series.py      cumulative, cardinality-capped series fed from kernel readings
    labels.py      comm / cgroup path -> container id / Kubernetes pod UID
    collectors.py  one collector per tool
    selfmetrics.py what the exporter itself costs (bpf_stats, drops, map-full, scrape time)
    server.py      /metrics (text or OpenMetrics), /healthz
    command.py     the `bpfsight exporter` command
"""
