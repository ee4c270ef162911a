#!/usr/bin/env python3
"""Checks, by trying them, the eco features the bed is built on (a flag listed in
--help proves nothing about what the engine does with it). Run inside a bed namespace
(it only uses that namespace's loopback); lib.sh stops the bed when one is 0.

Usage: probe.py ECO [ENGINE]   prints e.g. "proxy=1 metrics=1 limits=1"
  proxy:   --proxy-protocol strips a PROXY v2 header and echoes the rest
  limits:  --deny applies to the PROXY v2 source (denied source closed, other served)
  metrics: --metrics answers GET /healthz and /readyz with 200
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ECO = sys.argv[1]
ENGINE = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None


def proxy_v2(src, dst="127.0.0.1", sport=40000, dport=5346):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


def start(args, tmp):
    port_file = os.path.join(tmp, "port")
    cmd = [ECO, "serve", "-l", "127.0.0.1:0", "-t", "1", "-q", "--port-file", port_file] + args
    if ENGINE:
        cmd += ["--engine", ENGINE]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if p.poll() is not None:
            return p, None
        if os.path.exists(port_file) and open(port_file).read().strip():
            return p, int(open(port_file).read().strip())
        time.sleep(0.05)
    return p, None


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def exchange(port, data, want):
    """Sends data; returns what came back within 1 s (up to len(want) bytes), b"" on close."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(data)
        got = b""
        try:
            while len(got) < len(want):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return got


def main():
    proxy = limits = metrics = 0
    with tempfile.TemporaryDirectory() as tmp:
        # An eco that refuses a flag exits at start (no port): that feature is 0.
        p, port = start(["--proxy-protocol", "--deny", "10.99.0.1/32"], tmp)
        if port:
            try:
                proxy = int(exchange(port, proxy_v2("10.99.0.2") + b"ping", b"ping") == b"ping")
                if proxy:
                    limits = int(exchange(port, proxy_v2("10.99.0.1") + b"ping", b"ping") == b"")
            except OSError:
                pass
        stop(p)
    with tempfile.TemporaryDirectory() as tmp:
        # A fixed port on this namespace's own loopback: the probe is alone there.
        p, port = start(["--metrics", "127.0.0.1:19100"], tmp)
        if port:
            for _ in range(10):  # the HTTP thread may answer a moment after the echo port
                try:
                    ok = True
                    for path in ("/healthz", "/readyz"):
                        with urllib.request.urlopen(f"http://127.0.0.1:19100{path}", timeout=2) as r:
                            ok = ok and r.status == 200
                    metrics = int(ok)
                    break
                except OSError:
                    time.sleep(0.1)
        stop(p)
    print(f"proxy={proxy} metrics={metrics} limits={limits}")


if __name__ == "__main__":
    main()
