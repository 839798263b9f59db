"""`unionpose serve`: a local web page and an HTTP API for one or more pose models."""
from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

HELP = "a web page and an HTTP API for pose models (needs the 'serve' extra)"
LOOPBACK = "127.0.0.1"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from unionpose.apps.serve.limits import ServeLimits
    from unionpose.infer.detector import LAYOUTS

    defaults = ServeLimits()
    parser = subparsers.add_parser(
        "serve", help=HELP,
        description="Serve pose models on http://HOST:PORT/: a page to drop images or a short video on and see the "
                    "poses (two models side by side), POST /v1/predict, GET /v1/models, GET /healthz, docs at /docs.")
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]FILE",
                        help="a UnionPose model file (.safetensors) or our ONNX export; repeat to serve several (the "
                             "first is the default; NAME defaults to the file's stem)")
    parser.add_argument("--host", default=LOOPBACK,
                        help=f"address to listen on (default {LOOPBACK}: this machine only; there is no "
                             "authentication, so think before opening it to a network)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    boxes = parser.add_argument_group("person boxes (default: the request's boxes, else the whole image)")
    boxes.add_argument("--detector", type=Path, help="an ONNX person detector, for requests without boxes")
    boxes.add_argument("--detector-layout", choices=LAYOUTS, default="rtmdet",
                       help="input/output layout of the detector export (default rtmdet)")
    boxes.add_argument("--box-threshold", type=float, default=0.3, help="minimum detection score (default 0.3)")
    model = parser.add_argument_group("model")
    model.add_argument("--flip-test", action="store_true", help="average with the mirrored crop (2x the compute)")
    model.add_argument("--batch-size", type=int, default=32, help="crops per model call (default 32)")
    model.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-upload-mb", type=float, default=defaults.max_upload_bytes / 2 ** 20,
                        help=f"largest request body in MiB (default {defaults.max_upload_bytes / 2 ** 20:g})")
    limits.add_argument("--max-megapixels", type=float, default=defaults.max_pixels / 1e6,
                        help=f"largest image, read from its header before decoding (default "
                             f"{defaults.max_pixels / 1e6:g})")
    limits.add_argument("--max-batch", type=int, default=defaults.max_batch,
                        help=f"requests answered by one model call (default {defaults.max_batch})")
    limits.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms,
                        help=f"how long a request waits for others to join its batch "
                             f"(default {defaults.max_wait_ms:g})")
    limits.add_argument("--max-queue", type=int, default=defaults.max_queue,
                        help=f"requests waiting per model before 503 (default {defaults.max_queue})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.core.errors import MissingDependencyError

    try:
        import uvicorn

        from unionpose.apps.serve.app import create_app
    except ImportError as error:
        raise MissingDependencyError(f"unionpose serve needs the 'serve' extra: pip install 'unionpose[serve]' "
                                     f"({error})") from None
    from unionpose.apps.serve.limits import ServeLimits
    from unionpose.apps.serve.models import load_models
    from unionpose.infer.detector import OnnxPersonDetector

    detector = (OnnxPersonDetector(args.detector, args.detector_layout, args.box_threshold)
                if args.detector else None)
    models = load_models(args.model, detector, args.flip_test, args.device, args.batch_size)
    limits = ServeLimits(max_upload_bytes=int(args.max_upload_mb * 2 ** 20), max_pixels=int(args.max_megapixels * 1e6),
                         max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue)
    app = create_app(models, limits, detector=args.detector.name if args.detector else None)
    if not is_loopback(args.host):
        print(f"unionpose serve: warning: listening on {args.host}; anyone who can reach it can use the models "
              "(no authentication)", file=sys.stderr)
    print(f"serving {', '.join(model.name for model in models)} on http://{args.host}:{args.port}/ "
          f"(API docs at /docs; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) reaches this machine only."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False
