#!/usr/bin/env python3
"""Worst-case requests against a running service while /healthz is probed.

Sends two requests per second at the limits (every party at --max-names names,
--max-parties parties, names such as "Mohammed Ali N" that retrieve many
candidates) for --duration seconds, probes /healthz every 10 ms meanwhile, and
prints healthz p50/p99/max and the time of the worst-case requests. Loopback
only; bounded; stops by itself.

    portcullis serve --policies DIR --records off --listen 127.0.0.1:8788 &
    scripts/worst_case_load.py --url http://127.0.0.1:8788 --duration 30
"""

import argparse
import json
import threading
import time
import urllib.request


def worst_case(names, parties, seed):
    def aliases(base):
        return [f"Mohammed Ali {base + i}" for i in range(names - 1)]

    owners = [
        {"name": f"Muhammad Ali {seed}-{o}", "aliases": aliases(100_000 * (o + 1) + seed)}
        for o in range(parties - 1)
    ]
    return {
        "action": "open_account",
        "customer": {
            "id": f"c{seed}",
            "name": "Mohammed Ali",
            "aliases": aliases(seed),
            "beneficial_owners": owners,
        },
    }


def post(url, body, timeout):
    req = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json"}, method="POST"
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.monotonic() - started


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8788")
    ap.add_argument("--duration", type=float, default=30)
    ap.add_argument("--rate", type=float, default=2, help="worst-case requests per second")
    ap.add_argument("--max-names", type=int, default=50)
    ap.add_argument("--max-parties", type=int, default=100)
    args = ap.parse_args()
    if not args.url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
        raise SystemExit("loopback only")

    stop = time.monotonic() + args.duration
    health, work, lock = [], [], threading.Lock()

    def probe():
        while time.monotonic() < stop:
            try:
                _, took = post_get(args.url + "/healthz")
                health.append(took)
            except OSError:
                health.append(float("inf"))
            time.sleep(0.01)

    def post_get(url):
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        return r.status, time.monotonic() - started

    def one(seed):
        body = json.dumps(worst_case(args.max_names, args.max_parties, seed)).encode()
        status, took = post(args.url + "/v1/decide", body, timeout=60)
        with lock:
            work.append((status, took))

    prober = threading.Thread(target=probe)
    prober.start()
    senders, seed, next_at = [], 0, time.monotonic()
    while next_at < stop:
        time.sleep(max(0.0, next_at - time.monotonic()))
        t = threading.Thread(target=one, args=(seed,))
        t.start()
        senders.append(t)
        seed += 1
        next_at += 1 / args.rate
    prober.join()
    for t in senders:
        t.join(timeout=90)

    h = sorted(health)
    print(f"healthz probes: {len(h)}  p50 {percentile(h, 50)*1e3:.2f} ms  "
          f"p99 {percentile(h, 99)*1e3:.2f} ms  max {h[-1]*1e3:.2f} ms")
    statuses = {}
    for s, _ in work:
        statuses[s] = statuses.get(s, 0) + 1
    w = sorted(t for _, t in work)
    print(f"worst-case requests: {len(w)} {statuses}  p50 {percentile(w, 50):.2f} s  "
          f"max {w[-1] if w else float('nan'):.2f} s")


if __name__ == "__main__":
    main()
