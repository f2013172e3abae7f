#!/usr/bin/env bash
# The message round trip (what `make demo` ran before the node existed): one process
# publishes sample HumanPoseArray messages, a second one prints what arrives over DDS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/ros_env.sh
exec .venv/bin/python examples/roundtrip_demo.py "$@"
