"""Load on `unionpose serve` over loopback: concurrent clients, requests/s, latency, errors, server memory, and the
bare Predictor on the same images for comparison.

    nice -n 10 python benchmarks/serve_load.py --out serve_load.json [--model M.onnx] [--clients 8] [--requests 400]

The server is the `unionpose serve` command in its own process, started here on a free port of 127.0.0.1 and stopped
at the end; nothing else is contacted. The clients are threads of this process, each with one keep-alive connection
(`http.client`), posting the fixture JPEGs round robin until the request budget is spent (bounded in count, and each
request in time). Reported: requests/s, latency p50/p95/max, errors (answers other than 200 and failed requests;
the run is only valid with 0), the server's resident memory (RSS from /proc) after a warm-up at full concurrency
(the allocators reach their working size), at each quarter of the run and at its peak, how many requests each model
call answered, and the bare `Predictor` in one process, one image at a time, on the same bytes: decoding +
prediction (what the server does per request) and prediction alone.
Without --model: a random RTMPose-t (COCO-17, 256x192) exported to ONNX (speed does not depend on the weights).
No boxes are sent, so each request is one full-image crop.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fixtures" / "coco" / "images"
BOUNDARY = "unionpose-load"


def multipart(name: str, data: bytes) -> bytes:
    """A multipart/form-data body with one field, `image`."""
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def random_model(folder: Path) -> Path:
    import torch

    from unionpose.export.onnx import export_onnx
    from unionpose.models import RTMPose, load_model_file, save_model_file
    from unionpose.skeletons import get_skeleton

    torch.manual_seed(0)
    model_file = save_model_file(folder / "rtmpose-t.safetensors", RTMPose("t", 17, (256, 192)), get_skeleton("coco17"))
    return export_onnx(*load_model_file(model_file), folder / "rtmpose-t.onnx")


def start_server(model: Path, port: int, extra: list[str], log: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "unionpose", "serve", "--model", str(model), "--port", str(port),
                                *extra], stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("the server did not answer /healthz within 120 s")


def load(port: int, bodies: list[bytes], clients: int, requests: int, timeout: float) -> dict:
    """`clients` threads share `requests` posts; each request's latency and status."""
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        while True:
            with lock:
                index = next(counter)
            if index >= requests:
                break
            body = bodies[index % len(bodies)]
            start = time.perf_counter()
            try:
                connection.request("POST", "/v1/predict", body,
                                   {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
                problem = f"HTTP {answer.status}"
            except (OSError, http.client.HTTPException) as error:
                ok, problem = False, repr(error)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            seconds = time.perf_counter() - start
            with lock:
                if ok:
                    latencies.append(seconds)
                else:
                    errors.append(problem)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"seconds": round(seconds, 3), "requests_per_s": round(len(latencies) / seconds, 2),
            "latency_ms": {"p50": round(statistics.median(ordered) * 1e3, 1),
                           "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1e3, 1),
                           "max": round(ordered[-1] * 1e3, 1)} if ordered else None,
            "ok": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors))}


def bare_predictor(model: Path, images: list[tuple[str, bytes]], requests: int) -> dict:
    """The Predictor in this process, one image at a time: decoding + prediction, and prediction alone."""
    from unionpose.core.images import decode_image_bytes
    from unionpose.infer.predictor import Predictor

    predictor = Predictor.from_file(model)
    decoded = [decode_image_bytes(data, name) for name, data in images]
    for image in decoded:   # warm-up
        predictor(image)
    start = time.perf_counter()
    for index in range(requests):
        name, data = images[index % len(images)]
        predictor(decode_image_bytes(data, name))
    with_decoding = time.perf_counter() - start
    start = time.perf_counter()
    for index in range(requests):
        predictor(decoded[index % len(decoded)])
    alone = time.perf_counter() - start
    return {"decode_and_predict_per_s": round(requests / with_decoding, 2),
            "predict_only_per_s": round(requests / alone, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model to serve (default: a random RTMPose-t exported to ONNX)")
    parser.add_argument("--images", type=Path, default=IMAGES, help="folder of JPEG images (default: the fixtures)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=100,
                        help="requests at full concurrency before the measured run, unreported (default 100)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one request may take (default 60)")
    parser.add_argument("--server-args", default="", help="extra `unionpose serve` options, e.g. '--max-batch 4'")
    parser.add_argument("--out", type=Path, default=Path("serve_load.json"))
    args = parser.parse_args()
    images = [(path.name, path.read_bytes()) for path in sorted(args.images.glob("*.jpg"))]
    if not images:
        raise SystemExit(f"no .jpg images in {args.images}")
    bodies = [multipart(name, data) for name, data in images]
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or random_model(Path(folder))
        port = free_port()
        server = start_server(model, port, args.server_args.split(), Path(folder) / "server.log")
        try:
            warm = load(port, bodies, args.clients, args.warmup, args.timeout)
            memory_start = rss_mb(server.pid)
            samples = [memory_start]
            done = threading.Event()

            def watch() -> None:   # the server's memory through the run, every 0.2 s
                while not done.wait(0.2):
                    samples.append(rss_mb(server.pid))

            watcher = threading.Thread(target=watch)
            watcher.start()
            run = load(port, bodies, args.clients, args.requests, args.timeout)
            done.set()
            watcher.join()
            memory_end = rss_mb(server.pid)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            queue = next(iter(json.loads(connection.getresponse().read())["models"].values()))
        finally:
            server.terminate()
            server.wait(timeout=30)
        bare = bare_predictor(model, images, args.requests)
    report = {
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "load_average_at_start": os.getloadavg()[0]},
        "model": str(args.model) if args.model else "random RTMPose-t, COCO-17, 256x192, ONNX",
        "images": [name for name, _ in images], "clients": args.clients, "requests": args.requests,
        "server_args": args.server_args, "warm_up_requests": args.warmup, "warm_up_errors": warm["errors"],
        "server": run,
        "server_rss_mb": {"start": memory_start, "quarter": samples[len(samples) // 4],
                          "half": samples[len(samples) // 2], "three_quarters": samples[3 * len(samples) // 4],
                          "end": memory_end, "peak": max(samples)},
        "batching": {"model_calls": queue["model_calls"], "requests": queue["requests"],
                     "requests_per_model_call": round(queue["requests"] / max(queue["model_calls"], 1), 2)},
        "bare_predictor": bare,
        "server_vs_bare_decode_and_predict": round(run["requests_per_s"] / bare["decode_and_predict_per_s"], 3),
        "server_vs_bare_predict_only": round(run["requests_per_s"] / bare["predict_only_per_s"], 3),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
