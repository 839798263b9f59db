"""UnionPose: one fast top-down pose model for the union of the keypoints of several datasets and teachers."""

__version__ = "0.1.0"
