"""A Python program with a known CPU profile (run by tests/test_profile_python.py, not
collected): an asyncio event loop (two coroutines), a thread pool, a generator chain and an
exception-heavy path, each spending the CPU time BUDGET gives it (seconds of its own thread's
CPU, so the shares are the design's whatever the machine does). Gated: prints "ready", waits
for a line on stdin, works, prints "done" and its BUDGET."""
import asyncio
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

BUDGET = {"crunch": 1.5, "pool_task": 0.9, "gen_consume": 1.5, "catcher": 0.9}


async def crunch(cpu_s):
    # two of these share the event loop's thread: each counts only its own slices
    used, x = 0.0, 0
    while used < cpu_s:
        t = time.thread_time()
        for i in range(20000):
            x += i * i
        used += time.thread_time() - t
        await asyncio.sleep(0)
    return x


async def event_loop_part():
    await asyncio.gather(crunch(BUDGET["crunch"] / 2), crunch(BUDGET["crunch"] / 2))


def pool_task(cpu_s):
    until = time.thread_time() + cpu_s
    x = 0
    while time.thread_time() < until:
        for i in range(2000):
            x += i * i
    return x


def gen_source(until):
    i = 0
    while time.thread_time() < until:
        i += 1
        yield i


def gen_square(items):
    for i in items:
        yield i * i


def gen_consume(cpu_s):
    total = 0
    for v in gen_square(gen_source(time.thread_time() + cpu_s)):
        total += v
    return total


def raiser(i):
    if i % 3:
        raise ValueError(i)
    return i


def catcher(cpu_s):
    until = time.thread_time() + cpu_s
    caught = 0
    while time.thread_time() < until:
        for i in range(300):
            try:
                raiser(i)
            except ValueError:
                caught += 1
    return caught


print("ready", os.getpid(), flush=True)  # its PID: it may run under py-spy
sys.stdin.readline()
threads = [threading.Thread(target=gen_consume, args=(BUDGET["gen_consume"],)),
           threading.Thread(target=catcher, args=(BUDGET["catcher"],))]
for t in threads:
    t.start()
with ThreadPoolExecutor(2) as pool:
    futures = [pool.submit(pool_task, BUDGET["pool_task"] / 2) for _ in range(2)]
    asyncio.run(event_loop_part())
    for f in futures:
        f.result()
for t in threads:
    t.join()
print("done", json.dumps(BUDGET, separators=(",", ":")), flush=True)
sys.stdin.read()
