"""Inference and pose logic without ROS: engines, crops, tracking, smoothing."""
