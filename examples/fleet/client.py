"""The demo fleet's client: asks the web server for a page every 0.8 s.
Usage: client.py PORT"""

import sys
import time
import urllib.request

while True:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/") as reply:
        print("got", reply.read().decode().strip(), flush=True)
    time.sleep(0.8)
