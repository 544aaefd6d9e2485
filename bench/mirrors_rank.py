"""Mirror measurement: wall time of measuring many mirrors at different concurrency levels.

Serves N simulated mirrors from one loopback HTTP server: mirror i answers after a delay between 20 and
400 ms and sends a 256 KiB core.db at full speed; every tenth one hangs after reading the request. Prints,
per concurrency level, the wall time, how many answered, and the longest single request (bounded by the
deadline however many hang).

    .venv/bin/python bench/mirrors_rank.py [--mirrors 40] [--deadline 2]
"""

from __future__ import annotations

import argparse
import http.server
import threading
import time

from archami.mirrors import Mirror, Timeouts, measure, rank

BODY = bytes(256 * 1024)


class Handler(http.server.BaseHTTPRequestHandler):
    stop = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        index = int(self.path.split("/")[1].removeprefix("m"))
        if index % 10 == 9:
            self.stop.wait(30)
            return
        time.sleep(0.02 + (index * 37 % 20) * 0.02)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mirrors", type=int, default=40)
    parser.add_argument("--deadline", type=float, default=2.0)
    args = parser.parse_args()
    # A backlog for every concurrent connect: the default 5 makes the server, not the client, the bottleneck.
    http.server.ThreadingHTTPServer.request_queue_size = 128
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    mirrors = [Mirror(f"http://127.0.0.1:{port}/m{i}/", "http") for i in range(args.mirrors)]
    print(f"{args.mirrors} mirrors ({args.mirrors // 10} hanging), deadline {args.deadline:g}s")
    print(f"{'concurrency':>11} {'wall s':>8} {'answered':>8} {'longest s':>9} {'best':>6}")
    for concurrency in (1, 4, 8, 16, 32):
        started = time.monotonic()
        results = measure(mirrors, timeouts=Timeouts(connect=1.0, deadline=args.deadline), concurrency=concurrency)
        wall = time.monotonic() - started
        longest = max(m.seconds or 0.0 for m in results)
        best = rank(results)[0].url.rsplit("/", 2)[-2]
        errors = sorted({m.error for m in results if not m.ok})
        print(f"{concurrency:>11} {wall:>8.2f} {sum(m.ok for m in results):>8} {longest:>9.2f} {best:>6}  {errors}")
    Handler.stop.set()
    server.shutdown()


if __name__ == "__main__":
    main()
