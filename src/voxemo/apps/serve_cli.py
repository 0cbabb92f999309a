"""``voxemo serve``: its arguments (the service's limits and timeouts, :class:`voxemo.apps.service.ServiceConfig`)
and the one library call it makes (kept beside :mod:`voxemo.apps.cli`, which registers it)."""

from __future__ import annotations

import argparse

from voxemo.apps.arguments import count, port, positive, positive_int

BACKEND_HELP = ("inference runtime (default auto: the model folder's model.onnx with ONNX Runtime when it was "
                "exported from its weights, else torch)")


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="HTTP service and web page: POST /predict, /timeline, GET /health, /docs")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=port, default=8000, help="port (default 8000)")
    s.add_argument("--model", help="model folder (default: the pretrained model shipped with voxemo)")
    s.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto", help=BACKEND_HELP)
    s.add_argument("--workers", type=positive_int, default=2, help="inference threads (default 2)")
    s.add_argument("--queue", type=count, default=16, help="uploads that may wait for a worker before 503 (default 16)")
    s.add_argument("--max-upload-mb", type=positive, default=20.0, help="largest upload in MB, else 413 (default 20)")
    s.add_argument("--max-seconds", type=positive, default=300.0,
                   help="longest audio in seconds, else 422 (default 300)")
    s.add_argument("--read-timeout", type=positive, default=10.0,
                   help="seconds an upload may pause between two parts of its body, else 408 (default 10)")
    s.add_argument("--body-timeout", type=positive, default=60.0,
                   help="seconds an upload's whole body may take, else 408 (default 60)")
    s.add_argument("--per-client", type=positive_int, default=4,
                   help="uploads one client address may be sending at once, else 429 (default 4)")
    s.add_argument("--stalled-after", type=positive, default=2.0,
                   help="seconds without progress after which an upload gives its place to a new one from the same "
                        "address when that address is at --per-client (default 2)")
    s.add_argument("--header-timeout", type=positive, default=10.0,
                   help="seconds a client has to send a request's headers, else the connection is closed (default 10)")
    s.add_argument("--ws-idle-timeout", type=positive, default=30.0,
                   help="seconds a /listen session may go without a message, else it is closed (default 30)")
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from voxemo.apps.service import serve

    serve(args.host, args.port, model=args.model, backend=args.backend, workers=args.workers,
          queue=args.queue, max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds,
          read_timeout=args.read_timeout, body_timeout=args.body_timeout, per_client=args.per_client,
          stalled_after=args.stalled_after, header_timeout=args.header_timeout, ws_idle_timeout=args.ws_idle_timeout)
    return 0
