"""Benchmark worker: the network alone per backend (batch 1 and 3), and the node's
pipeline in this process (crop, inference, decode, tracking; no ROS) on the benchmark
frames. Started by benchmarks/run.py.

Protocol: loads everything, prints READY, waits for a line on stdin (the caller
pauses other processes meanwhile), measures, prints RESULT <json>.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from lapx_ros.testing.harness import percentiles
from lapx_ros.testing.scenes import load_scenes, sequence_index


def load_backends(model: str, checkpoint: str | None, threads: int, wanted) -> dict:
    """{name: (run(batch) -> heatmaps, description, engine or None)}."""
    from lapx_ros.runtime.backend import openvino_available
    from lapx_ros.runtime.engine import create_engine

    out = {}
    settings = {"onnxruntime": ("onnxruntime", "auto"), "openvino_f32": ("openvino", "f32"),
                "openvino_bf16": ("openvino", "bf16")}
    meta = None
    for name, (backend, precision) in settings.items():
        if name not in wanted or (backend == "openvino" and not openvino_available()):
            continue
        e = create_engine(model, backend, threads, precision)
        if precision not in ("auto", e.precision):  # e.g. bf16 asked on a CPU without it
            print(f"{name}: skipped, the engine ran {e.description}", file=sys.stderr)
            continue
        out[name] = (e.infer, e.description, e)
        meta = e.metadata
    if "pytorch_eager" in wanted:
        import torch

        from lapx_ros.checkpoint import load_model
        from lapx_ros.export import read_onnx_metadata
        from lapx_ros.model import LapxConfig, LapxNet

        torch.set_num_threads(threads)
        if checkpoint:
            net, _ = load_model(checkpoint)
        else:  # the same network from the file's metadata: its weights do not change the speed
            net = LapxNet(LapxConfig.from_dict(read_onnx_metadata(model).extra["model_config"])).eval()

        def run(batch, net=net):
            with torch.inference_mode():
                out = net(torch.from_numpy(batch))
            out = out[-1] if isinstance(out, (list, tuple)) else out
            return out.numpy()

        out["pytorch_eager"] = (run, f"torch {torch.__version__} eager (fp32, {threads} threads)", None)
    return out, meta


def real_batches(meta, scenes) -> dict:
    """Normalised crops of the 3-person frames' people: batch 1 and batch 3."""
    from lapx_ros.geometry import box_to_center_size
    from lapx_ros.geometry import CropBatcher

    batcher = CropBatcher(meta)
    frames, boxes, _ = scenes["3_persons"]
    regions = [box_to_center_size(b, batcher.aspect_ratio, 1.25) for b in boxes[0]]
    batch3, _ = batcher(frames[0], regions)
    return {"batch1": np.ascontiguousarray(batch3[:1]), "batch3": batch3}


def time_calls(fn, arg, runs: int, warmup: int, budget_s: float = 4.0, min_runs: int = 5) -> list[float]:
    """``runs`` timed calls, fewer (at least ``min_runs``) when they exceed ``budget_s``."""
    for _ in range(warmup):
        fn(arg)
    times = []
    start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(arg)
        times.append((time.perf_counter() - t0) * 1000.0)
        if len(times) >= min_runs and time.perf_counter() - start > budget_s:
            break
    return times


def pipeline_times(engine, scenes, scenario: str, frames_count: int, hold: int, warmup: int,
                   budget_s: float = 4.0) -> list[float]:
    """ms per frame of PosePipeline.process as the node calls it (default parameters)."""
    from lapx_ros.ros.params import NodeConfig, pipeline_config
    from lapx_ros.runtime.estimator import PoseEstimator
    from lapx_ros.runtime.pipeline import PosePipeline

    frames, boxes, _ = scenes[scenario]
    mode = "single" if scenario == "1_person" else "boxes"
    calls = []

    def counted(batch):
        calls.append(len(batch))
        return engine.infer(batch)

    # the estimator keeps the engine's infer when it is built: count from the start
    counting = type("Counted", (), {"infer": staticmethod(counted), "metadata": engine.metadata})()
    pipe = PosePipeline(PoseEstimator(counting), pipeline_config(NodeConfig(mode=mode)))
    times = []
    start = time.perf_counter()
    for n in range(warmup + frames_count):
        if len(times) >= 10 and time.perf_counter() - start > budget_s:
            break
        k = sequence_index(n, len(frames), hold)
        frame = frames[k].copy()  # the node gets a fresh array per message
        t0 = time.perf_counter()
        pipe.process(frame, n / 30.0, boxes[k] if mode == "boxes" else None)
        if n >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
        else:
            calls.clear()
    return times, len(calls) / max(1, len(times)), sum(calls) / max(1, len(times))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint")
    p.add_argument("--scenes", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runs", type=int, default=30, help="timed calls per backend, batch and repeat")
    p.add_argument("--pipeline-frames", type=int, default=60)
    p.add_argument("--budget", type=float, default=3.0, help="seconds at most per timed block (>= 5 calls)")
    p.add_argument("--hold", type=int, default=15)
    p.add_argument("--backends", default="onnxruntime,openvino_f32,openvino_bf16,pytorch_eager")
    p.add_argument("--no-wait", action="store_true", help="measure at once (no READY/stdin handshake)")
    args = p.parse_args()

    scenes = load_scenes(args.scenes)
    backends, meta = load_backends(args.model, args.checkpoint, args.threads, args.backends.split(","))
    batches = real_batches(meta, scenes)
    for fn, _, _ in backends.values():  # first calls (lazy allocations) before the handshake
        for b in batches.values():
            fn(b)
    if not args.no_wait:
        print("READY", flush=True)
        sys.stdin.readline()

    raw = {name: {"batch1": [], "batch3": []} for name in backends}
    for _ in range(args.repeats):  # repeats interleave backends, so drift hits all alike
        for name, (fn, _, _) in backends.items():
            for bname, batch in batches.items():
                times = time_calls(fn, batch, args.runs, warmup=2, budget_s=args.budget)
                raw[name][bname].append({**percentiles(times), "calls": len(times)})
    pipeline = {}
    for _ in range(args.repeats):
        for name, (_, _, engine) in backends.items():
            if engine is None:
                continue
            for scenario in ("1_person", "3_persons"):
                t, calls, crops = pipeline_times(engine, scenes, scenario, args.pipeline_frames, args.hold,
                                                 warmup=5, budget_s=args.budget)
                pipeline.setdefault(name, {}).setdefault(scenario, []).append(
                    {**percentiles(t), "network_calls_per_frame": calls, "crops_per_frame": crops})
    result = {
        "input": f"{meta.input_width}x{meta.input_height}",
        "backends": {name: desc for name, (_, desc, _) in backends.items()},
        "model_only": raw,
        "pipeline": pipeline,
    }
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
