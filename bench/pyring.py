"""bpfsight's side of the streaming benchmark, the counterpart of c/ringcons.c: the selftest
producer (one 40-byte record per syscall of TGID) read the way a bpfsight snoop reads its ring
(stream_loop + RingBuffer.read_array). Usage: pyring.py TGID WAKEUP_BYTES; prints
"records N getppid M drops D" after SIGINT."""
import sys

from bpfsight.bpf import ObjectSpec
from bpfsight.tool import StopSignal, event_ring, stream_loop

GETPPID = 110  # x86_64


def record_dtype():
    import numpy as np
    return np.dtype([("ts", "<u8"), ("pid", "<u4"), ("seq", "<u4"), ("id", "<u8"),
                     ("a", "<u8"), ("b", "<u8")])


def main(tgid, wakeup_bytes):
    spec = ObjectSpec.open("selftest")
    spec.set_globals(targ_tgid=tgid, wakeup_bytes=wakeup_bytes)
    dtype = record_dtype()
    counts = {"records": 0, "getppid": 0}

    def handle(ring):
        recs = ring.read_array(dtype)
        counts["records"] += len(recs)
        counts["getppid"] += int((recs["id"] == GETPPID).sum())

    with StopSignal() as stop, spec.load() as obj:
        obj.attach_all()
        ring = event_ring(obj)
        print("attached", flush=True)
        try:
            stream_loop(stop, ring, handle)
            print(f"records {counts['records']} getppid {counts['getppid']} drops {ring.drops()}",
                  flush=True)
        finally:
            ring.close()


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
