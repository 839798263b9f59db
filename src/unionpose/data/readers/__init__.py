"""Dataset readers: each turns one annotation format into `Instance`s in the dataset's native skeleton."""
from unionpose.data.readers.coco import FLAVOURS, ImageRecord, read_coco, read_image_table
from unionpose.data.readers.detections import Detection, read_detections
from unionpose.data.readers.mpii import read_mpii
from unionpose.data.readers.report import ReadReport

__all__ = [
    "FLAVOURS", "Detection", "ImageRecord", "ReadReport", "read_coco", "read_detections", "read_image_table",
    "read_mpii",
]
