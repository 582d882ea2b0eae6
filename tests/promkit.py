"""Exporter test helpers: `bpfsight exporter` on a free loopback port, scraped directly or by a
real Prometheus server (Debian's `prometheus` binary, started here with a temporary config
and TSDB on loopback: the packaged service is never used)."""
import gzip
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from helpers import Running, assert_released, bpf_objects_of

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, headers=None, timeout=10):
    """(status, headers, body) of a GET; error statuses are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def samples(text):
    """[(sample name, labels dict, value)] of a text-format exposition."""
    from prometheus_client.parser import text_string_to_metric_families
    return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text)
            for s in fam.samples]


def total(found, name, **labels):
    return sum(v for n, lab, v in found if n == name
               and all(lab.get(k) == want for k, want in labels.items()))


class Exporter:
    """`bpfsight exporter ARGS --listen 127.0.0.1:0`; .url is where it serves."""

    def __init__(self, *args):
        self.tool = Running("exporter", "--listen", "127.0.0.1:0", *args).wait_attached(60)
        m = re.search(r"serving (http://\S+)/metrics", self.tool.stdout.decode())
        assert m, self.tool.stdout
        self.url = m.group(1)
        self.address = self.url.split("//", 1)[1]
        self.pid = self.tool.proc.pid
        self.held = bpf_objects_of(self.pid)

    def get(self, path="/metrics", headers=None):
        return http_get(self.url + path, headers)

    def scrape(self):
        """Every sample of a /metrics scrape in the classic text format."""
        status, _, body = self.get()
        assert status == 200, (status, body[:200])
        return samples(body.decode())

    def rss_kb(self):
        with open(f"/proc/{self.pid}/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))

    def stop(self):
        rc, out, err = self.tool.stop()
        assert rc == 0, err
        assert "Traceback" not in err, err
        assert_released(self.held)
        return err

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.stop()
        elif self.tool.proc.poll() is None:
            self.tool.proc.kill()
            self.tool.proc.wait()


class PrometheusServer:
    """A Prometheus scraping `targets` every interval_s, its API on a free loopback port."""

    def __init__(self, tmp_path, targets, interval_s=1):
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.skip("needs Debian's prometheus package (apt-get install prometheus)")
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": f"{interval_s}s", "scrape_timeout": f"{interval_s}s"},
            "scrape_configs": [{"job_name": "bpfsight",
                                "static_configs": [{"targets": list(targets)}]}]}))
        self.api = f"http://127.0.0.1:{free_port()}/api/v1"
        self.log = open(tmp_path / "prometheus.log", "w+")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address={self.api.split('/')[2]}", "--log.level=warn"],
            stdout=self.log, stderr=self.log)
        self._wait(lambda: http_get(self.api.replace("/api/v1", "/-/ready"))[0] == 200, 30)

    def _wait(self, ready, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.log.seek(0)
        raise AssertionError(f"prometheus not ready: {self.log.read()[-2000:]}")

    def query(self, expr):
        """[(labels, value)] of an instant query."""
        status, _, body = http_get(f"{self.api}/query?" + urllib.parse.urlencode({"query": expr}))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", (expr, body[:500])
        return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]

    def scalar(self, expr):
        found = self.query(expr)
        assert len(found) == 1, (expr, found)
        return found[0][1]

    def wait_scrape_after(self, t, timeout=15, cache_s=1.0):
        """Until Prometheus holds a successful scrape of every target collected after time t
        (the exporter reuses a collection for cache_s seconds)."""
        t += cache_s
        def done():
            ups = self.query('up{job="bpfsight"}')
            stamps = self.query('timestamp(up{job="bpfsight"})')
            return ups and all(v == 1 for _, v in ups) and all(v > t for _, v in stamps)
        self._wait(done, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def gunzip(body):
    return gzip.decompress(body)
