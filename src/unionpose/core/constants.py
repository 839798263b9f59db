"""Numbers the whole library agrees on, named once. docs/conventions.md says where each comes from."""
from __future__ import annotations

# RTMPose normalises its RGB input with ImageNet's mean and standard deviation, in 0-255 pixel units.
IMAGE_MEAN_RGB = (123.675, 116.28, 103.53)
IMAGE_STD_RGB = (58.395, 57.12, 57.375)

# A person box is padded by 25 % before cropping, so that limbs at its border keep some context.
BOX_PADDING = 1.25

# SimCC bins per crop pixel in every RTMPose recipe (a 256x192 crop has 384 x-bins and 512 y-bins).
SIMCC_SPLIT_RATIO = 2.0

# RTMPose's KL-discrete loss compares softmax(10 * target) with softmax(10 * logits): a factor on the logits, i.e. an
# inverse temperature (the recipes call it `beta`). DWPose's logit distillation uses the same factor.
KL_LOGIT_SCALE = 10.0
