"""Cumulative, cardinality-capped series fed from the kernel's cumulative readings.

The kernel keeps counters per key (a pid, a flow, a disk...) and never resets them; on each
scrape the change of every key since the last scrape is credited to that key's label set.
Crediting changes (not copying totals) is what keeps every exported counter monotonic while:
  - a label set is admitted or dropped by the cardinality cap (top-N + "other"): past counts
    stay where they were credited, only later changes move;
  - a map that fills with short-lived keys is drained (read and deleted atomically per key):
    the drained values are credited, and a key seen again afterwards starts from zero.
At most `max_series` label sets are named per metric; the rest are summed under "other".
A named label set that has not grown for `idle_s` seconds is dropped (its series ends in
Prometheus) so its slot can go to a newer process.
"""
import time

OTHER = "other"


class CappedSeries:
    """Label tuple -> cumulative numpy vector (a counter's dimensions, or histogram slots and
    total), for one metric family."""

    def __init__(self, nlabels, shape, max_series, idle_s=600.0, weight=None,
                 clock=time.monotonic):
        import numpy as np
        self._np = np
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.max_series = max_series
        self.idle_s = idle_s
        self.other = (OTHER,) * nlabels
        self._weight = weight or (lambda d: int(d.sum()))
        self._clock = clock
        self._last = {}    # kernel key -> last reading
        self._label = {}   # kernel key -> its label tuple, fixed for the key's lifetime
        self.values = {}   # exported label tuple (named, or self.other) -> cumulative vector
        self._grew = {}    # named label tuple -> when it last grew

    def zeros(self):
        return self._np.zeros(self.shape, dtype=self._np.int64)

    def observe(self, readings, label_of, drained=False):
        """Credit the changes of cumulative readings [(key, vector, item)]; keys not read
        this time are forgotten (a key that comes back starts from zero). label_of(item)
        names a key (hashable) the first time it is seen. drained: the readings were deleted
        from the kernel as they were read, so every key starts from zero next time."""
        np = self._np
        deltas, seen = {}, set()
        for key, value, item in readings:
            value = np.asarray(value, dtype=np.int64).reshape(self.shape)
            last = self._last.get(key)
            if last is not None and value.tobytes() == last.tobytes():
                seen.add(key)  # unchanged, as most keys are at most scrapes: nothing to credit
                continue
            if last is None:
                label = self._label[key] = label_of(item)
                delta = value
            else:
                label = self._label[key]
                # never negative: a reading extended to "now" by user space may run a little
                # ahead of the kernel's next exact one
                delta = np.maximum(value - last, 0)
                value = np.maximum(value, last)
            self._last[key] = value
            seen.add(key)
            if delta.any():
                deltas[label] = deltas[label] + delta if label in deltas else delta
        forget = list(self._last) if drained else [k for k in self._last if k not in seen]
        for key in forget:
            del self._last[key]
            del self._label[key]
        self.credit(deltas)

    def add(self, label, delta):
        """Credit one change directly (events read from a ring buffer)."""
        self.credit({label: self._np.asarray(delta, dtype=self._np.int64).reshape(self.shape)})

    def credit(self, deltas):
        now = self._clock()
        self._evict_idle(now)  # first, so this scrape's newcomers can have the freed slots
        # newcomers are admitted biggest first while there is room: top-N by growth
        for label, delta in sorted(deltas.items(), key=lambda kv: -self._weight(kv[1])):
            if label not in self._grew and label != self.other:
                if len(self._grew) >= self.max_series:
                    label = self.other
                else:
                    self.values[label] = self.zeros()
            if label != self.other:
                self._grew[label] = now
            self.values[label] = self.values.get(label, 0) + delta

    def _evict_idle(self, now):
        for label, when in list(self._grew.items()):
            if now - when > self.idle_s:
                del self._grew[label]
                del self.values[label]

    def items(self):
        """(label tuple, cumulative vector) of every exported series, "other" last."""
        named = [(k, v) for k, v in self.values.items() if k != self.other]
        if self.other in self.values:
            named.append((self.other, self.values[self.other]))
        return named

    def __len__(self):
        return len(self.values)
