"""Predict over a whole source into output files, with a progress bar and a summary of what was skipped."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from unionpose.core.atomic import write_text_atomic
from unionpose.core.output_paths import OutputFolder, check_output_folder
from unionpose.infer.predictor import Predictor
from unionpose.infer.smoothing import TrackSmoother
from unionpose.infer.sources import ImageSource, VideoSource
from unionpose.infer.stream import BoxLookup, predict_stream
from unionpose.infer.tracking import PoseTracker
from unionpose.infer.writers import OUTPUT_NAMES, open_writers


def predict_source(predictor: Predictor, source: ImageSource | VideoSource, out: str | Path, formats: list[str],
                   boxes_for: BoxLookup | None = None, detect_every: int = 1, track: bool | None = None,
                   track_metric: str = "oks", smooth: bool = False, draw_threshold: float = 0.3,
                   progress: bool = True, description: str = "", overwrite: bool = False,
                   inputs: Iterable[str | Path] = ()) -> dict:
    """Run `predictor` over every frame of `source`, write `formats` under `out`, and return (and write as
    summary.json) the counts: frames, people, frames/s, and each skipped frame with its reason.

    Tracking is on for videos and webcams unless `track` says otherwise; smoothing needs tracking.
    `out` must be empty or new, unless `overwrite`: then the outputs of an earlier run there are removed first (the
    names in OUTPUT_NAMES, nothing else). No output ever replaces one of `inputs` or of the source's images.
    """
    out = Path(out)
    inputs = [*inputs, *(source.paths if isinstance(source, ImageSource) else
                         [source.target] if source.kind == "video" else [])]
    check_output_folder(out, overwrite=overwrite, replaces=OUTPUT_NAMES, inputs=inputs)
    is_video = source.kind in ("video", "webcam")
    track = is_video if track is None else track
    skeleton = predictor.skeleton
    tracker = PoseTracker(skeleton.sigmas, track_metric) if track or smooth else None
    smoother = TrackSmoother() if smooth else None
    header = {"source": description, "keypoint_names": list(skeleton.names), "coordinates": "image pixels (x, y)",
              "flip_test": predictor.runner.flip_test}
    writers = open_writers(out, formats, skeleton, header, video_fps=source.fps if is_video else None,
                           threshold=draw_threshold, names=OutputFolder(out, inputs))
    frames = people = 0
    interrupted = finished = False
    start = time.perf_counter()
    bar = tqdm(total=len(source) or None, unit="frame", disable=not progress, desc=description or None)
    try:
        for frame, poses in predict_stream(predictor, source, boxes_for, detect_every, tracker, smoother):
            for writer in writers:
                writer.write(frame, poses)
            frames += 1
            people += len(poses)
            bar.update(1)
        finished = True
    except KeyboardInterrupt:   # how a webcam stream ends: keep what was written, and say so
        interrupted = finished = True
    finally:
        bar.close()
        for writer in writers:
            writer.close(keep=finished)      # a failed run leaves no half-written stream files
    seconds = time.perf_counter() - start
    summary = {
        "source": description, "frames": frames, "people": people, "interrupted": interrupted,
        "seconds": round(seconds, 3),
        "frames_per_second": round(frames / seconds, 2) if seconds > 0 else None,
        "skipped": [{"name": name, "reason": reason} for name, reason in source.skipped],
        "outputs": sorted(str(p.relative_to(out)) for p in out.iterdir()),
        "keypoint_names": list(skeleton.names),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
    return summary
