"""Teachers: frozen pose models and experts whose predictions, mapped by keypoint name, the student distils."""
from unionpose.teachers.base import StudentSpace, Teacher, TeacherOutput, file_identity
from unionpose.teachers.cache import (
    CachedTeacher,
    TeacherCache,
    build_teacher_cache,
    check_teacher_cache,
    data_identity,
    load_teacher_cache,
    open_cached_teacher,
    save_teacher_cache,
)
from unionpose.teachers.checkpoint import CheckpointTeacher
from unionpose.teachers.coordinates import CoordinateTeacher, coordinates_to_output, soft_simcc_targets
from unionpose.teachers.logit_teacher import LogitTeacher
from unionpose.teachers.onnx import OnnxTeacher
from unionpose.teachers.resample import BinResampler, renormalise, resize_crops
from unionpose.teachers.spec import TeacherSpec, build_teacher

__all__ = [
    "BinResampler", "CachedTeacher", "CheckpointTeacher", "CoordinateTeacher", "LogitTeacher", "OnnxTeacher",
    "StudentSpace", "Teacher", "TeacherCache", "TeacherOutput", "TeacherSpec", "build_teacher", "build_teacher_cache",
    "check_teacher_cache", "coordinates_to_output", "data_identity", "file_identity", "load_teacher_cache",
    "open_cached_teacher", "renormalise", "resize_crops", "save_teacher_cache", "soft_simcc_targets",
]
