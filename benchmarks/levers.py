"""The speed levers of the network on this CPU, measured side by side (issue 17).

Each variant is the shipped model changed in one way; all are timed interleaved (batch 1,
one call after another, OpenVINO as the node runs it) so that drift hits them alike, and
each is compiled in a process of its own to read its memory:

- ``shipped``: `models/*.onnx` as the node loads it (precision auto);
- ``threads_1``: the same with one inference thread;
- ``int8``: static int8 (QDQ) quantisation of the same file (`lapx-export --int8`'s code,
  calibrated on 64 LSPET training crops);
- ``two_stages``: the network cut after its second hourglass (stage 2's heatmaps of the same
  weights; `lapx-eval --stage 2` scores that);
- ``input_128x96``: the same network at a 3:4 input of 128x96 (untrained weights: the time
  does not depend on them);
- ``openvino_cache``: the shipped file compiled through OpenVINO's model cache (a second
  load reads the compiled blob: start time and memory).

Accuracy of each lever comes from lapx-eval and MODEL.md, not from here.

    .venv/bin/python -m benchmarks.levers --pause-pattern 'lapx_ros[.]train'
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lapx_ros.testing import harness

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "levers_results.json"


def make_variants(shipped: Path, data: Path, folder: Path) -> dict:
    """{name: (onnx file, threads, extra OpenVINO config)} written into ``folder``."""
    import onnx
    import torch
    from onnx.utils import Extractor

    from lapx_ros.data.lsp import parse_range
    from lapx_ros.export import quantize_int8, read_onnx_metadata, real_crops
    from lapx_ros.model.lapx import build_lapx

    meta = read_onnx_metadata(shipped)
    variants = {"shipped": (shipped, 2, {}), "threads_1": (shipped, 1, {})}
    int8 = folder / "int8.onnx"
    crops = real_crops(meta, data / "images", data / "joints.mat", parse_range("1-9000"), 64)
    quantize_int8(shipped, int8, crops, meta)
    variants["int8"] = (int8, 2, {})
    model = onnx.shape_inference.infer_shapes(onnx.load(str(shipped)))
    second = next(n.input[0] for n in model.graph.node if n.name == "/stages.1/remap_heatmaps/Conv")
    two = folder / "two_stages.onnx"
    onnx.save(Extractor(model).extract_model([meta.input_name], [second]), str(two))
    variants["two_stages"] = (two, 2, {})
    narrow = folder / "input_128x96.onnx"
    torch.onnx.export(build_lapx().eval(), torch.zeros(1, 3, 128, 96), str(narrow),
                      input_names=[meta.input_name], output_names=[meta.output_name],
                      opset_version=17, dynamo=False)
    variants["input_128x96"] = (narrow, 2, {})
    variants["openvino_cache"] = (shipped, 2, {"CACHE_DIR": str(folder / "ov_cache")})
    return variants


def worker(path: str, threads: int, extra: dict, calls: int) -> None:
    """Child process: compile, report load time and memory, then time calls on stdin's go."""
    from lapx_ros.runtime.backend import import_openvino

    ov = import_openvino()
    t0 = time.perf_counter()
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, **extra}
    if "CACHE_DIR" in extra:  # compile from the file's path, so a cached blob can be used
        compiled = core.compile_model(path, "CPU", config)
    else:
        compiled = core.compile_model(core.read_model(path), "CPU", config)
    request = compiled.create_infer_request()
    shape = [1] + [d.get_length() if d.is_static else 1 for d in list(compiled.inputs[0].get_partial_shape())[1:]]
    x = np.random.default_rng(0).random(shape, np.float32)
    for _ in range(5):
        request.infer({0: x})
    load_s = time.perf_counter() - t0
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    print("READY " + json.dumps({"load_s": load_s, "rss_mb": harness.rss_mb(os.getpid()), "precision": precision}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        times = []
        for _ in range(calls):
            t = time.perf_counter()
            request.infer({0: x})
            times.append((time.perf_counter() - t) * 1000.0)
        print("RESULT " + json.dumps(times), flush=True)


def measure(variants: dict, repeats: int, calls: int, pauser) -> dict:
    procs = {}
    out = {}
    try:
        for name, (path, threads, extra) in variants.items():
            if "CACHE_DIR" in extra:  # fill the cache first: the measured process reads it
                subprocess.run([sys.executable, "-m", "benchmarks.levers", "--worker", str(path), str(threads),
                                json.dumps(extra), "0"], input="", text=True, capture_output=True, check=True)
            p = subprocess.Popen([sys.executable, "-m", "benchmarks.levers", "--worker", str(path), str(threads),
                                  json.dumps(extra), str(calls)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            ready = json.loads(p.stdout.readline().split(" ", 1)[1])
            procs[name] = p
            out[name] = {**ready, "threads": threads, "ms": []}
        with pauser.paused():
            for _ in range(repeats):  # interleaved
                for name, p in procs.items():
                    p.stdin.write("go\n")
                    p.stdin.flush()
                    out[name]["ms"].append(json.loads(p.stdout.readline().split(" ", 1)[1]))
    finally:
        for p in procs.values():
            p.kill()
    for entry in out.values():
        per_repeat = [float(np.median(r)) for r in entry.pop("ms")]
        entry["ms_p50"] = float(np.median(per_repeat))
        entry["ms_p50_spread"] = [min(per_repeat), max(per_repeat)]
    return out


def render(run: dict) -> str:
    m = run["machine"]
    base = run["variants"]["shipped"]["ms_p50"]
    lines = ["## Speed levers of the network (issue 17)", "",
             f"Written by `benchmarks/levers.py` at commit {run['commit']} on {run['date']}: "
             f"{m.get('cpu_model')} ({m.get('cpus')} cores; {', '.join(m.get('cpu_flags', []))}), "
             f"OpenVINO as the node runs it, batch 1, medians of {run['repeats']} interleaved blocks of "
             f"{run['calls']} calls. Memory: the process's RSS after compiling and 5 calls. Other work "
             f"paused while timing: {run['paused']}.", "",
             "| variant | ran | ms per call (spread) | vs shipped | load s | RSS MB |", "|---|---|---|---|---|---|"]
    for name, v in run["variants"].items():
        ran = ("int8 convolutions (QDQ), " if name == "int8" else "") + v["precision"]
        lines.append(f"| {name} | {ran}, {v['threads']} thread(s) | {v['ms_p50']:.1f} "
                     f"({v['ms_p50_spread'][0]:.1f}-{v['ms_p50_spread'][1]:.1f}) | {v['ms_p50'] / base:.2f}x | "
                     f"{v['load_s']:.2f} | {v['rss_mb']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="default: the shipped models/*.onnx")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lspet")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--calls", type=int, default=40)
    p.add_argument("--pause-pattern", help="regex of command lines to SIGSTOP while timing")
    args = p.parse_args(argv)
    from lapx_ros.runtime.engine import default_model_path

    shipped = args.model or Path(default_model_path())
    if not (args.data / "joints.mat").is_file():
        raise SystemExit(f"LSPET not found under {args.data} (int8 calibration needs it): pass --data")
    pauser = harness.Pauser(pattern=args.pause_pattern, log=print)
    with tempfile.TemporaryDirectory() as tmp:
        variants = make_variants(shipped, args.data, Path(tmp))
        try:
            results = measure(variants, args.repeats, args.calls, pauser)
        finally:
            pauser.resume()
    run = {"machine": harness.machine_info(), "commit": harness.git_commit(REPO), "date": time.strftime("%Y-%m-%d"),
           "repeats": args.repeats, "calls": args.calls, "paused": pauser.enabled, "variants": results}
    RESULTS.write_text(json.dumps(run, indent=2) + "\n")
    text = render(run)
    harness.write_section(HERE / "RESULTS.md", "Speed levers", "benchmarks/levers.py", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
