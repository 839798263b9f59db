"""Inference speed on this CPU: per-crop latency and throughput of RTMPose t/s/m in PyTorch and ONNXRuntime, and
end-to-end frames/s on a real video with the pre/post-processing overhead.

    python benchmarks/inference.py --out inference.json

Random weights (speed does not depend on them). Latency: batch 1, median of --repeat calls after warm-up.
Throughput: batch 32, crops/s. End to end: `Predictor` with the ONNX RTMPose-t on the first --frames frames of the
basketball video, one full-frame box per frame (no detector ships with the project), flip test off and on;
overhead = (time in the predictor - time in the bare ONNXRuntime call) / time in the bare call, i.e. box -> crop ->
normalise before and decode -> inverse affine -> scoring after. Video decoding is timed apart.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from unionpose.commands.models import parse_input_size
from unionpose.export.onnx import export_onnx
from unionpose.infer.backends import OnnxBackend
from unionpose.infer.predictor import Predictor
from unionpose.infer.sources import open_source
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton

VIDEO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "basketball_10s.mp4"


def median_seconds(call, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def backend_speed(backend, input_size: tuple[int, int], repeat: int) -> dict:
    one = np.random.default_rng(0).standard_normal((1, 3, *input_size)).astype(np.float32)
    batch = np.random.default_rng(1).standard_normal((32, 3, *input_size)).astype(np.float32)
    latency = median_seconds(lambda: backend(one), repeat)
    batch_time = median_seconds(lambda: backend(batch), max(3, repeat // 5))
    return {"latency_ms_batch1": round(latency * 1e3, 3), "throughput_crops_per_s_batch32": round(32 / batch_time, 1)}


class TimedBackend:
    """Wraps a backend and adds up the seconds spent inside it."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.decoded = backend.decoded
        self.seconds = 0.0

    def __call__(self, crops: np.ndarray):
        start = time.perf_counter()
        outputs = self.backend(crops)
        self.seconds += time.perf_counter() - start
        return outputs


def end_to_end(onnx_path: Path, video: Path, frames: int, flip_test: bool, threads: int | None) -> dict:
    backend, info = OnnxBackend(onnx_path, threads=threads), load_model_file(onnx_path.with_suffix(".safetensors"))[1]
    timed = TimedBackend(backend)
    predictor = Predictor(TopDownRunner(timed, info, flip_test=flip_test))
    decode_seconds = predict_seconds = 0.0
    count = 0
    source = iter(open_source(str(video), max_frames=frames))
    while True:
        start = time.perf_counter()
        frame = next(source, None)
        decode_seconds += time.perf_counter() - start
        if frame is None:
            break
        start = time.perf_counter()
        predictor(frame.image)
        predict_seconds += time.perf_counter() - start
        count += 1
    return {
        "frames": count, "flip_test": flip_test,
        "frames_per_s_pose": round(count / predict_seconds, 1),
        "frames_per_s_with_video_decoding": round(count / (predict_seconds + decode_seconds), 1),
        "ms_per_frame_onnxruntime_call": round(timed.seconds / count * 1e3, 3),
        "ms_per_frame_pre_and_post_processing": round((predict_seconds - timed.seconds) / count * 1e3, 3),
        "overhead_ratio_to_onnxruntime_call": round((predict_seconds - timed.seconds) / timed.seconds, 3),
        "ms_per_frame_video_decoding": round(decode_seconds / count * 1e3, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="t,s,m", help="comma-separated model sizes (default t,s,m)")
    parser.add_argument("--input", type=parse_input_size, default=(256, 192), metavar="HxW")
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per measurement (default 50)")
    parser.add_argument("--frames", type=int, default=150, help="video frames for the end-to-end run (default 150)")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch and ONNXRuntime (default: theirs)")
    parser.add_argument("--out", type=Path, default=Path("inference.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results = {
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "onnxruntime": ort.__version__, "onnxruntime_threads": args.threads or "default",
                    "load_average_at_start": os.getloadavg()[0]},
        "input_size": list(args.input), "weights": "random (toolbox initialisation)", "models": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            torch.manual_seed(0)
            model = RTMPose(size, 17, args.input).eval()
            model_path = save_model_file(Path(folder) / f"{size}.safetensors", model, get_skeleton("coco17"))
            onnx_path = export_onnx(*load_model_file(model_path), model_path.with_suffix(".onnx"))
            results["models"][size] = {
                "pytorch": backend_speed(TorchBackend(model), args.input, args.repeat),
                "onnxruntime": backend_speed(OnnxBackend(onnx_path, threads=args.threads), args.input, args.repeat),
            }
            print(size, json.dumps(results["models"][size]), flush=True)
            if size == "t":
                results["end_to_end_rtmpose_t_onnx"] = [
                    end_to_end(onnx_path, args.video, args.frames, flip, args.threads) for flip in (False, True)]
                print(json.dumps(results["end_to_end_rtmpose_t_onnx"]), flush=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
