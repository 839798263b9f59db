"""The synthetic people benchmark: procedural figures in cluttered scenes, written as COCO-17 and MPII-16 datasets."""
