#!/usr/bin/env bash
# `make demo`: for now the message round trip (one process publishes HumanPoseArray
# messages, a second one prints what arrives). Becomes the node demo later.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/ros_env.sh
exec .venv/bin/python examples/roundtrip_demo.py "$@"
