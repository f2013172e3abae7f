"""Input size chosen by measurement (issue 25 item 3): one network, exported at several sizes.

A network trained at several input sizes (lapx-train --extra-input-sizes) runs at any size
whose sides divide by 4 and reach its smallest side (the hourglass pools four times below
the stride-4 stem). Each size is exported (lapx-export --input-size) and run through
benchmarks/peers.py beside MoveNet Lightning and Thunder in one interleaved run: accuracy
on the COCO sliver's val2017 people, the held-out fashion tenth and LSPET validation (the
node's whole-image search), and ms per crop, as a ratio to Lightning's measured in the same
run. The table goes to stdout (and MODEL.md by hand).

    .venv/bin/python -m scripts.input_sizes CHECKPOINT [--sizes 96x128,120x160,144x192] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lapx_ros import export as export_cli

DATA = Path("../shared/data")
DEFAULT_SIZES = "96x128,120x160,144x192,128x128,192x256"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated WxH")
    p.add_argument("--out", type=Path, default=Path("runs/input_sizes"))
    p.add_argument("--limit", type=int, default=0, help="first N images of each set (a quick look)")
    p.add_argument("--precision", default="auto", choices=("auto", "f32", "bf16"), help="the lapx files' precision")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lsp = ["--lsp-images", str(DATA / "lspet" / "images"), "--lsp-joints", str(DATA / "lspet" / "joints.mat")]
    files = []
    for size in args.sizes.split(","):
        path = args.out / f"lapx_{size}.onnx"
        if export_cli.main([args.checkpoint, str(path), "--input-size", size, "--crops", "4", *lsp]) != 0:
            print(f"input_sizes: export at {size} failed", file=sys.stderr)
            return 1
        files.append(path)
    results = args.out / "peers.json"
    command = [sys.executable, "-m", "benchmarks.peers", *map(str, files), "--skip", "yolo,mediapipe",
               "--json-out", str(results), "--lapx-precision", args.precision]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if subprocess.run(command).returncode != 0:
        return 1
    if args.limit:
        return 0
    print(render(json.loads(results.read_text())))
    return 0


def render(result: dict) -> str:
    systems = result["systems"]
    lightning = next(v["ms"]["crop_or_frame"] for k, v in systems.items() if "lightning" in k.lower())
    lines = [f"Machine: {json.dumps(result['machine'])}; lapx precision: "
             f"{', '.join(sorted({s.get('precision', '?') for s in systems.values()}))}", "",
             "| system | COCO val limb OKS-hit / median error | fashion val limb OKS-hit | LSPET val PCKh@0.5 | "
             "ms per crop | x Lightning |", "|---|---|---|---|---|---|"]
    for name, s in systems.items():
        coco, fashion, lsp = s.get("coco", {}), s.get("fashion", {}), s.get("lsp", {})
        ms, nan = s["ms"]["crop_or_frame"], float("nan")
        lines.append(f"| {name} ({s.get('precision', '')}) | {coco.get('limb_oks_hit', nan):.3f} / "
                     f"{coco.get('median_error', nan):.3f} | {fashion.get('limb_oks_hit', nan):.3f} | "
                     f"{lsp.get('pckh', nan):.3f} | {ms:.1f} | {ms / lightning:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
