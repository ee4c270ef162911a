#!/usr/bin/env python3
"""A plain Python asyncio echo load generator: the yardstick eco bench's own capacity is
compared with (docs/bench-tool.md). Closed loop, like `eco bench` without --rate:
each of --conns connections sends one --size message, waits for the whole echo,
checks it, sends the next. Prints round trips per second and latency percentiles.

    python3 bench/tools/asyncio_echo_bench.py 127.0.0.1:5346 --conns 50 --duration 5
"""
import argparse
import asyncio
import sys
import time


async def client(host, port, size, stop_at, warm_until, lat, counts, conn_id):
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        import socket

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    seq = 0
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            # Message carries the connection and sequence, like eco bench's pattern.
            head = conn_id.to_bytes(4, "little") + seq.to_bytes(8, "little")
            msg = (head + bytes(max(0, size - 12)))[:size]
            writer.write(msg)
            echo = await reader.readexactly(size)
            done = time.perf_counter()
            if echo != msg:
                counts["mismatch"] += 1
            if done >= warm_until:
                lat.append(done - now)
            seq += 1
    except (asyncio.IncompleteReadError, ConnectionError):
        counts["errors"] += 1
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("address", nargs="?", default="127.0.0.1:5346")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--uvloop", action="store_true", help="use uvloop if installed")
    a = ap.parse_args()
    host, _, port = a.address.rpartition(":")
    if a.uvloop:
        import uvloop  # noqa: F401  (optional)

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    start = time.perf_counter()
    warm_until = start + a.warmup
    stop_at = warm_until + a.duration
    lat, counts = [], {"mismatch": 0, "errors": 0}
    await asyncio.gather(*(client(host, int(port), a.size, stop_at, warm_until, lat, counts, i) for i in range(a.conns)))
    lat.sort()
    n = len(lat)

    def pct(p):
        return lat[min(n - 1, int(p / 100 * n))] * 1e6 if n else 0.0

    print(f"asyncio: {a.conns} conns, {a.size} B, {a.duration:g} s: {n / a.duration:.0f} rt/s  "
          f"p50 {pct(50):.1f} us  p99 {pct(99):.1f} us  mismatches {counts['mismatch']}  errors {counts['errors']}")
    return 1 if counts["mismatch"] or counts["errors"] else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
