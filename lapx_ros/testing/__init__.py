"""Helpers shared by the tests (test/) and the benchmarks (benchmarks/), in the one place
both import from: ROS processes, a client of the pose node, synthetic depth scenes,
benchmark frames, the scoring of people found, and the benchmarks' harness. The node
never imports this package."""
