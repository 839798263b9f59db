"""Inference: the Predictor, image/video sources, tracking, output writers and drawing."""
