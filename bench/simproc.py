"""One simulator process for the benchmark: ``runner simulate`` with an optional shared port.

    .venv/bin/python -m bench.simproc --port 0 --latency-ms 50 [--reuse-port]

Prints the base URL on stdout once the port is bound. With ``--reuse-port`` several processes
listen on one port and the kernel spreads connections between them (``SO_REUSEPORT``).
"""

from __future__ import annotations

import argparse
import sys

from runner.simulator import SimulatorConfig, serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args(argv)
    # The stats keep the last requests' bodies: a short memory keeps the simulator lean.
    config = SimulatorConfig(latency_ms=args.latency_ms, record_limit=16)

    def ready(url: str) -> None:
        print(url, flush=True)

    if args.reuse_port:
        serve_forever(config, port=args.port, ready=ready, reuse_port=True)
    else:
        serve_forever(config, port=args.port, ready=ready)
    sys.exit(0)


if __name__ == "__main__":
    main()
