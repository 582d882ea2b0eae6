"""Profiling in user space, after collection: symbolization (symbols), stack decoding and the
folded format (stacks), reports shared by profile/offcputime (report), flame graphs
(flamegraph), pprof (pprof) and latency heat maps (heatmap). Nothing here touches the kernel
except report.collect, which drains the collectors' ring buffer."""
