"""Headless Chromium for the HTML reports (Debian's `chromium` package): found on PATH, or
installed with apt-get when missing and we are root; otherwise the calling test skips (which
conftest turns into a failure in CI)."""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_NAMES = ("chromium", "chromium-browser")


def _find():
    return next((p for p in map(shutil.which, _NAMES) if p), None)


def chromium():
    path = _find()
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        for cmd in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
            subprocess.run(cmd, capture_output=True, timeout=900,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            path = _find()
            if path:
                break
    if path is None:
        pytest.skip("chromium is not installed and could not be installed "
                    "(apt-get install chromium)")
    return path


def _run(args, timeout=60):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def dump_dom(html_path, fragment="", size=(1200, 800)):
    """The DOM after the page's scripts ran, serialised."""
    url = f"file://{os.path.abspath(html_path)}" + (f"#{fragment}" if fragment else "")
    res = _run([f"--window-size={size[0]},{size[1]}", "--dump-dom", url])
    assert "<body" in res.stdout, res.stderr[-2000:]
    return res.stdout


def screenshot(html_path, png_path, size=(1200, 800)):
    url = f"file://{os.path.abspath(html_path)}"
    res = _run([f"--window-size={size[0]},{size[1]}", f"--screenshot={png_path}", url])
    assert os.path.exists(png_path), res.stderr[-2000:]
    return png_path


def body_attr(dom, name):
    m = re.search(rf'<body[^>]*\s{name}="(\d+)"', dom)
    assert m, f"body has no {name} attribute"
    return int(m.group(1))


def _png_chunks(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return hdr, zlib.decompress(idat)


def png_summary(path):
    """(width, height, distinct byte values in the image data): a blank page has a handful,
    a rendered flame graph hundreds (filtered bytes, so no full decode is needed)."""
    (width, height, *_), raw = _png_chunks(path)
    return width, height, len(set(raw))


def read_png_unfiltered(path):
    """(width, height, rows of (r, g, b)) of an 8-bit RGB PNG written without filters (ours)."""
    (width, height, depth, ctype, _, _, interlace), raw = _png_chunks(path)
    assert (depth, ctype, interlace) == (8, 2, 0)
    rows, stride = [], width * 3 + 1
    for y in range(height):
        line = raw[y * stride:(y + 1) * stride]
        assert line[0] == 0, "filtered row"
        rows.append([tuple(line[1 + 3 * x:4 + 3 * x]) for x in range(width)])
    return width, height, rows
