"""Peer: the tutorial's echo server (socket, bind, listen, accept ONE client,
recv(1024)/sendall until the client closes, then exit). Benchmark reference
only, not part of eco. Kept as the tutorial wrote it, except that the port
comes from the command line and the "Connected by" line goes to stderr.

It serves exactly one client and then exits: the harness runs it only in
one-connection scenarios and starts a fresh copy for every run.

    python3 python_oneclient.py PORT
"""
import socket
import sys

HOST = '127.0.0.1'
PORT = int(sys.argv[1])

with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # so back-to-back runs can rebind
    s.bind((HOST, PORT))
    s.listen()
    (csocket, caddress) = s.accept()
    with csocket:
        print("Connected by : ", caddress, file=sys.stderr)
        while True:
            data = csocket.recv(1024)
            if not data:
                break
            csocket.sendall(data)
