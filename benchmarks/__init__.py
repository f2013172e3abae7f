"""Benchmarks of the node and the network, each a module run from the repository root:
``.venv/bin/python -m benchmarks.NAME`` (so that this checkout's lapx_ros is measured).
Their shared harness and frames live in ``lapx_ros.testing``."""
