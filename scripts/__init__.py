"""Research and set-up scripts. Those that import lapx_ros run from the repository root
as ``.venv/bin/python -m scripts.NAME``, so that they use this checkout's lapx_ros."""
