import os

# OpenMP threads that spin while they wait make torch many times slower when the machine is
# shared (measured: a tiny-model training step 1.9 s passive against 15-17 s spinning, 2 threads,
# load 5 on 2 cores). Set before torch is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .cli import app  # noqa: E402

app()
