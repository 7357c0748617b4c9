"""The demo fleet's worker: does a little work, then crashes (exit 3), so
the supervisor restarts it with a growing backoff."""

import os
import time

print(f"worker {os.getpid()} starting a batch", flush=True)
for step in (1, 2, 3):
    time.sleep(0.5)
    print(f"processed item {step}", flush=True)
print("out of memory (pretend)", flush=True)
raise SystemExit(3)
