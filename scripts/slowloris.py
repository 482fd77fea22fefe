#!/usr/bin/env python3
"""Opens many connections that send part of a request head and stall, then
measures GET /healthz on fresh connections while they are open. Loopback only;
stops by itself (about a minute at most).

    python3 scripts/slowloris.py [HOST:PORT] [CONNECTIONS] [PROBES]
"""
import asyncio
import resource
import sys
import time


async def healthz(host, port):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.startswith(b"HTTP/1.1 200")


async def main():
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8700"
    wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    probes = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    host, port = address.rsplit(":", 1)
    assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    target = min(wanted, hard - 64)
    print(f"open files limit {hard}: opening {target} stalled connections")
    started = time.monotonic()
    flood, failed = [], 0
    for _ in range(target):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
            w.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            flood.append((r, w))
        except Exception:
            failed += 1
    print(f"opened {len(flood)} ({failed} failed) in {time.monotonic() - started:.1f}s")
    latencies, errors = [], 0
    for _ in range(probes):
        t = time.monotonic()
        try:
            ok = await asyncio.wait_for(healthz(host, int(port)), 10)
        except Exception:
            ok = False
        if ok:
            latencies.append(time.monotonic() - t)
        else:
            errors += 1
        await asyncio.sleep(0.1)
    latencies.sort()
    pick = lambda q: latencies[round((len(latencies) - 1) * q)] * 1000 if latencies else float("nan")
    print(f"/healthz: {len(latencies)} answered 200, {errors} failed; "
          f"p50 {pick(0.5):.2f} ms, p90 {pick(0.9):.2f} ms, max {pick(1.0):.2f} ms")
    still = sum(1 for r, _ in flood if not r.at_eof())
    print(f"still open: about {still} of {len(flood)} stalled connections "
          f"after {time.monotonic() - started:.1f}s")
    for _, w in flood:
        w.close()


asyncio.run(main())
