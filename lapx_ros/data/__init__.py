"""Labelled pose data: dataset readers, crops, augmentation and heatmap targets."""
