"""Python evidence for a diagnose of one CPython process (3.10-3.13): where in its Python code
its threads were blocked, by line. offcputime's definition does the measuring (its kernel walk
of the interpreter's frames at each switch-out, opened like any other tool), and this turns its
map into the heaviest blocked places: "blocked 1.2 s at process_batch (worker.py:42)"."""
from ..tool import Options

TOP_LINES = 5
BLOCKED_STATES = ("S", "D")  # asleep or in uninterruptible wait; not preempted (R: the CPU's)


class PythonEvidence:
    """offcputime, opened for process pid when it runs a supported CPython, else None."""

    @classmethod
    def open(cls, pid):
        from ..pyframes import find_interpreter
        from ..tools.offcputime import Offcputime
        interp = find_interpreter(pid)
        if interp is None or not interp.supported:
            return None
        self = cls()
        self.tool = Offcputime()
        # user stacks only: the kernel's are diagnose's own; the Python frames are the point
        self.opts = Options(self.tool, pid=pid, user_stacks_only=True)
        self.spec = self.tool.open(self.opts)
        self.interp = interp
        return self

    def attach(self, obj):
        self.tool.attach(obj, self.opts)

    def read(self, obj):
        """{interpreter, blocked_at: [{frame, callers, state, seconds}]}: the innermost Python
        frame of the heaviest blocked periods, summed per frame and state."""
        from .. import pyframes
        from ..tools.offcputime import state_name
        keys, values = obj.map("counts").read_all()
        stacks = pyframes.stacks(obj, self.interp, (int(k["py_stack_id"]) for k in keys))
        by = {}
        for k, total_ns in zip(keys, values["total_ns"].tolist()):
            frames, state = stacks.get(int(k["py_stack_id"])), state_name(int(k["state"]))
            if frames and state in BLOCKED_STATES:
                key = (frames[0], frames[1:3], state)
                by[key] = by.get(key, 0) + total_ns
        top = sorted(by.items(), key=lambda kv: -kv[1])[:TOP_LINES]
        return {"interpreter": self.interp.describe(),
                "blocked_at": [{"frame": f, "callers": list(c), "state": s,
                                "seconds": round(ns / 1e9, 4)} for (f, c, s), ns in top]}


def add_to_verdict(verdict, python):
    """A wait-type bottleneck (not the CPU, not none) names the Python line that waited most."""
    if python and python["blocked_at"] and verdict["bottleneck"] not in ("cpu", "none"):
        top = python["blocked_at"][0]
        verdict["summary"] += (f"; in Python, blocked longest at {top['frame']} "
                               f"({top['seconds']:.2f} s)")
