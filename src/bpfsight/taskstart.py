"""User side of bpf/include/task_start.bpf.h: per-task start times live in task storage when
the tp_btf programs load, in a tid-keyed hash when their raw_tp twins do."""


def use_task_storage(spec, tp_btf_prog):
    """Call after select_hooks. When tp_btf_prog (a tp_btf program) was chosen, the fallback
    hash is never written: shrink it to one entry instead of preallocating 10240."""
    if spec.programs[tp_btf_prog].autoload:
        spec.maps["tid_start"].max_entries = 1
