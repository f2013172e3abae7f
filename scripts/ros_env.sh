# Sourced by scripts/test.sh, scripts/demo and scripts/roundtrip.sh: ROS 2 settings for a run on this
# machine only. Each variable can be overridden from outside.
_lapx_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# discovery stays on loopback
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
# a domain of its own per run (1..101), so parallel runs never see each other
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( $$ % 101 + 1 ))}"
# shared memory with a large segment + loopback UDP (config/fastdds_shm.xml)
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_lapx_root/config/fastdds_shm.xml}"
# let the ROS wheels compute their library path for this .venv
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
unset _lapx_root
