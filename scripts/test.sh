#!/usr/bin/env bash
# Runs the test suite in .venv (after scripts/setup.sh). Extra arguments go to pytest.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/ros_env.sh
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
# no arguments: the testpaths of pytest.ini (test/)
.venv/bin/python -m pytest "$@" </dev/null
rc=$?
if [[ $rc == 5 ]]; then
  echo "[test] pytest collected no tests: counted as a failure" >&2
  exit 1
fi
exit $rc
