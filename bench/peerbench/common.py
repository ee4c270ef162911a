"""Paths and logging shared by the harness modules."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
PEERS_SRC = REPO / 'bench' / 'peers'


def log(msg):
    print(msg, file=sys.stderr, flush=True)
