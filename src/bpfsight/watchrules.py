"""`bpfsight watch`'s rule language (docs/watch.md): a YAML list of rules, validated with the
line of each mistake, compiled into what bpf/watch.bpf.c matches in the kernel (a rule array,
path prefixes and networks in LPM tries, each entry carrying the bitmask of its rules)."""
import ipaddress
import os

from .errors import UsageError

KINDS = {"exec": 1, "open": 2, "connect": 3, "listen": 4, "setuid": 5, "capset": 6,
         "ptrace": 7, "module": 8, "bpf": 9, "mount": 10}
EXEC_NOTE = 100
SEVERITIES = ("low", "medium", "high", "critical")
ACCESS = {"read": 1, "write": 2}
MAX_RULES, MAX_NAMES, MAX_PORTS, PATH_LEN = 32, 8, 8, 256  # as in watch.bpf.c
ANY_UID = 0xFFFFFFFF

# which keys each kind takes, beyond the common ones
COMMON = {"name", "kind", "severity", "comm", "parent", "uid", "cgroup", "action", "rate",
          "description"}
KEYS = {"exec": {"paths", "not_paths"}, "open": {"paths", "not_paths", "access"},
        "connect": {"networks", "not_networks", "ports", "not_ports"},
        "listen": {"ports", "not_ports"}}

DEFAULT_RULES = """\
# bpfsight watch: the default rules (docs/watch.md explains every key)
rules:
  - name: shell-from-server
    description: a shell started by a network server (a web shell, a command injection)
    kind: exec
    severity: critical
    paths: [/bin/sh, /bin/bash, /bin/dash, /usr/bin/sh, /usr/bin/bash, /usr/bin/dash]
    parent: [nginx, apache2, httpd, lighttpd, php-fpm, node, java, redis-server]
  - name: exec-from-writable-dir
    description: a program run from a world-writable directory
    kind: exec
    severity: high
    paths: [/tmp/, /dev/shm/, /var/tmp/, /run/user/]
  - name: sensitive-file-read
    description: password hashes, sudo rules, SSH host and user keys, cloud credentials
    kind: open
    severity: high
    paths: [/etc/shadow, /etc/gshadow, /etc/sudoers, /etc/sudoers.d/, /etc/ssh/ssh_host_*,
            /root/.ssh/, /root/.aws/, /root/.kube/, /var/run/secrets/]
    access: [read]
  - name: sensitive-file-write
    kind: open
    severity: critical
    paths: [/etc/shadow, /etc/gshadow, /etc/passwd, /etc/group, /etc/sudoers,
            /etc/sudoers.d/, /etc/ssh/, /root/.ssh/, /etc/ld.so.preload]
    access: [write]
  - name: kernel-tunable-write
    description: writes to /proc/sys and /sys
    kind: open
    severity: medium
    paths: [/proc/sys/, /sys/]
    access: [write]
  - name: connect-outside-private
    description: outbound connects beyond loopback and private networks, other than DNS and web
    kind: connect
    severity: low
    not_networks: [127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16,
                   "::1/128", "fc00::/7", "fe80::/10"]
    not_ports: [53, 80, 443]
  - name: new-listener
    kind: listen
    severity: low
  - name: setuid-root
    description: set*id(2) asking for uid or gid 0
    kind: setuid
    severity: high
  - name: ptrace-attach
    kind: ptrace
    severity: high
  - name: module-load
    kind: module
    severity: critical
  - name: bpf-program-load
    kind: bpf
    severity: medium
  - name: mount
    kind: mount
    severity: medium
"""


class Rule:
    def __init__(self, index, name, kind, severity, action, description, fields):
        self.index, self.name, self.kind = index, name, kind
        self.severity, self.action, self.description = severity, action, description
        self.fields = fields  # what the kernel struct rule takes


def _line_loader():
    """A YAML SafeLoader that records each mapping's line as `__line__` (1-based)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            mapping = super().construct_mapping(node, deep=deep)
            mapping["__line__"] = node.start_mark.line + 1
            return mapping
    return yaml, Loader


def load(text, source):
    """The rules of a rules file's text, validated; UsageError naming source:line otherwise."""
    yaml, loader = _line_loader()
    try:
        doc = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise UsageError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise UsageError(f"{source}: expected a mapping with a non-empty 'rules' list")
    if len(doc["rules"]) > MAX_RULES:
        raise UsageError(f"{source}: {len(doc['rules'])} rules, at most {MAX_RULES}")
    rules, names = [], set()
    for i, item in enumerate(doc["rules"]):
        if not isinstance(item, dict):
            raise UsageError(f"{source}: rule {i + 1} is not a mapping")
        rule = _rule(i, item, f"{source}:{item['__line__']}")
        if rule.name in names:
            raise UsageError(f"{source}:{item['__line__']}: rule name {rule.name!r} used twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _rule(index, item, where):
    def fail(text):
        raise UsageError(f"{where}: rule {item.get('name', index + 1)!r}: {text}")

    name, kind = item.get("name"), item.get("kind")
    if not isinstance(name, str) or not name:
        fail("needs a name")
    if kind not in KINDS:
        fail(f"kind {kind!r}: choose from {', '.join(KINDS)}")
    unknown = set(item) - COMMON - KEYS.get(kind, set()) - {"__line__"}
    if unknown:
        fail(f"unknown key {sorted(unknown)[0]!r} for kind {kind}")
    severity = item.get("severity", "medium")
    if severity not in SEVERITIES:
        fail(f"severity {severity!r}: choose from {', '.join(SEVERITIES)}")
    action = item.get("action", "alert")
    if action not in ("alert", "kill"):
        fail(f"action {action!r}: alert or kill")
    f = {"kind": KINDS[kind], "uid": ANY_UID, "access": 0, "rate": 10, "cgid": 0, "cglevel": 0,
         "listed": 0, "unlisted": 0, "ports_unlisted": 0, "kill": int(action == "kill"),
         "comms": [], "parents": [], "ports": [], "paths": [], "networks": []}
    for key, dest in (("comm", "comms"), ("parent", "parents")):
        if key in item:
            f[dest] = _names(item[key], key, fail)
    if "uid" in item:
        if not isinstance(item["uid"], int) or not 0 <= item["uid"] < ANY_UID:
            fail(f"uid {item['uid']!r} is not a user id")
        f["uid"] = item["uid"]
    if "rate" in item:
        if not isinstance(item["rate"], int) or item["rate"] < 1:
            fail(f"rate {item['rate']!r}: alerts per second, a positive integer")
        f["rate"] = item["rate"]
    if "cgroup" in item:
        f["cgid"], f["cglevel"] = _cgroup(item["cgroup"], fail)
    for listed, unlisted, parse, dest in (("paths", "not_paths", _path, "paths"),
                                          ("networks", "not_networks", _network, "networks")):
        if listed in item and unlisted in item:
            fail(f"{listed} and {unlisted} together: one or the other")
        key = listed if listed in item else unlisted if unlisted in item else None
        if key:
            values = _list(item[key], key, fail)
            f[dest] = [parse(v, fail) for v in values]
            f["listed"], f["unlisted"] = 1, int(key == unlisted)
    if "ports" in item and "not_ports" in item:
        fail("ports and not_ports together: one or the other")
    for key in ("ports", "not_ports"):
        if key in item:
            ports = _list(item[key], key, fail)
            if len(ports) > MAX_PORTS or not all(isinstance(p, int) and 0 < p < 65536
                                                 for p in ports):
                fail(f"{key}: at most {MAX_PORTS} port numbers (1-65535)")
            f["ports"], f["ports_unlisted"] = ports, int(key == "not_ports")
    if "access" in item:
        access = _list(item["access"], "access", fail)
        if not access or any(a not in ACCESS for a in access):
            fail("access: a list of read and write")
        f["access"] = sum(ACCESS[a] for a in set(access))
    return Rule(index, name, kind, severity, action, item.get("description", ""), f)


def _list(value, key, fail):
    values = value if isinstance(value, list) else [value]
    if not values:
        fail(f"{key}: an empty list")
    return values


def _names(value, key, fail):
    names = _list(value, key, fail)
    if len(names) > MAX_NAMES or not all(isinstance(n, str) and 0 < len(n) for n in names):
        fail(f"{key}: at most {MAX_NAMES} process names")
    return [n.encode()[:15] for n in names]  # the kernel keeps 15 bytes of a name


def _path(value, fail):
    if not isinstance(value, str) or not value.startswith("/") or len(value) >= PATH_LEN:
        fail(f"path {value!r}: absolute, under {PATH_LEN} bytes (a directory ends in '/', a "
             "prefix in '*')")
    if "*" in value[:-1]:
        fail(f"path {value!r}: '*' only at the end (a prefix)")
    return value


def _network(value, fail):
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        fail(f"network {value!r} is not an address or CIDR")


def _cgroup(path, fail):
    full = path if str(path).startswith("/sys/fs/cgroup") else "/sys/fs/cgroup/" + \
        str(path).lstrip("/")
    try:
        cgid = os.stat(full).st_ino
    except OSError:
        fail(f"cgroup {path!r}: no such cgroup v2 directory")
    rel = os.path.relpath(full, "/sys/fs/cgroup")
    return cgid, 0 if rel == "." else rel.count("/") + 1


# --- into the kernel's maps ---

def path_entries(rules):
    """{path bytes as matched: rule mask}: an exact file is matched with its NUL, a directory
    (ending in '/') or a prefix (ending in '*') as a prefix; each entry also carries the rules
    of the shorter prefixes it lies under (an LPM lookup returns the longest entry only)."""
    entries = {}
    for r in rules:
        for p in r.fields["paths"]:
            key = p[:-1].encode() if p.endswith("*") else \
                p.encode() if p.endswith("/") else p.encode() + b"\0"
            entries[key] = entries.get(key, 0) | 1 << r.index
    return {k: mask | _covering(entries, k) for k, mask in entries.items()}


def _covering(entries, key):
    return _or(m for other, m in entries.items()
               if other != key and not other.endswith(b"\0") and key.startswith(other))


def network_entries(rules):
    entries = {}
    for r in rules:
        for net in r.fields["networks"]:
            entries[net] = entries.get(net, 0) | 1 << r.index
    return {n: mask | _covering_net(entries, n) for n, mask in entries.items()}


def _covering_net(entries, net):
    return _or(m for other, m in entries.items()
               if other != net and other.version == net.version and net.subnet_of(other))


def _or(masks):
    out = 0
    for m in masks:
        out |= m
    return out


def load_into(obj, rules):
    """Write the rules, their paths and networks into a loaded watch object."""
    import numpy as np
    table = obj.map("rules")
    for r in rules:
        v = np.zeros((), table.value_dtype())
        for name, value in r.fields.items():
            if name in ("comms", "parents"):
                v["n" + name] = len(value)
                for i, n in enumerate(value):
                    v[name][i] = n
            elif name == "ports":
                v["nports"] = len(value)
                v["ports"][:len(value)] = value
            elif name not in ("paths", "networks"):
                v[name] = value
        table[r.index] = v.tobytes()
    paths = obj.map("paths")
    for path, mask in path_entries(rules).items():
        k = np.zeros((), paths.key_dtype())
        k["prefixlen"], k["path"] = len(path) * 8, path
        paths[k.tobytes()] = mask
    for net, mask in network_entries(rules).items():
        m = obj.map("nets4" if net.version == 4 else "nets6")
        m[net.prefixlen.to_bytes(4, "little") + net.network_address.packed] = mask
