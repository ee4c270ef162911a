"""The peer comparison harness behind bench/run_peers.py (Python 3 standard library only)."""
