"""Readings of a user's program's maps (userprog.Program.snapshot) and its ring records as text:
plain data in, text out."""
from .histogram import format_log2


def record_line(rec):
    """One ring buffer record as `field=value ...`."""
    return " ".join(f"{k}={_short(v)}" for k, v in rec.items())


def render_reading(reading):
    """A map reading (see userprog) as text, plain data in, text out."""
    name = reading["map"]
    if reading["kind"] == "globals":
        return "\n".join(f"@{var}: {_short(v)}" for var, v in reading["values"].items()) + "\n"
    lines = [f"@{name} ({reading['keys']} keys):" if reading["keys"] != 1 else f"@{name}:"]
    if reading["kind"] == "hist":
        for row in reading["rows"]:
            label = _label(row["key"])
            extra = " ".join(f"{k}={_short(v)}" for k, v in row.items() if k not in ("key", "hist"))
            if label or extra:
                lines.append(f"[{' '.join(x for x in (label, extra) if x)}]")
            lines.append(format_log2(row["hist"]).rstrip("\n") or "  (empty)")
        return "\n".join(lines) + "\n"
    rows = reading["rows"]
    if not rows:
        return "\n".join(lines + ["  (empty)"]) + "\n"
    flat = [{**_flatten("", r["key"], "key"), **_flatten("", r["value"], "value")} for r in rows]
    stacks = [c for c in flat[0] if isinstance(flat[0][c], list) and
              all(isinstance(f, str) for f in flat[0][c])]
    cols = [c for c in flat[0] if c not in stacks]
    widths = {c: max(len(c), *(len(_short(f[c])) for f in flat)) for c in cols}
    lines.append("  " + " ".join(c.ljust(widths[c]) for c in cols))
    for f in flat:
        lines.append("  " + " ".join(_short(f[c]).ljust(widths[c]) for c in cols))
        for c in stacks:
            lines += [f"      {frame}" for frame in f[c]] or ["      [no stack]"]
    if reading["keys"] > len(rows):
        lines.append(f"  ... {reading['keys'] - len(rows)} more")
    return "\n".join(lines) + "\n"


def _flatten(prefix, value, default):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(f"{prefix}{k}.", v, k) if isinstance(v, dict)
                       else {f"{prefix}{k}": v})
        return out
    return {prefix.rstrip(".") or default: value}


def _label(key):
    if isinstance(key, dict):
        return " ".join(f"{k}={_short(v)}" for k, v in _flatten("", key, "key").items())
    return f"key={key}" if key not in (0, None) else ""


def _short(value):
    if isinstance(value, list):
        text = ",".join(str(v) for v in value[:8])
        return f"[{text}{',...' if len(value) > 8 else ''}]"
    return str(value)
