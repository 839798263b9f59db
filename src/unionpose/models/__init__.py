"""RTMPose models: CSPNeXt backbone, RTMCC head, the t/s/m/l zoo, toolbox weights and the UnionPose model file."""
from unionpose.models.complexity import Complexity, count_gflops, count_parameters, model_complexity
from unionpose.models.model_file import load_model_file, read_model_info, save_model_file
from unionpose.models.rtmpose import MODEL_SIZES, ModelSize, RTMPose, model_size
from unionpose.models.toolbox_weights import (
    ToolboxArchitecture,
    check_toolbox_architecture,
    convert_toolbox_state_dict,
    infer_toolbox_architecture,
    load_toolbox_model,
    read_toolbox_state_dict,
)

__all__ = [
    "MODEL_SIZES", "Complexity", "ModelSize", "RTMPose", "ToolboxArchitecture",
    "check_toolbox_architecture", "convert_toolbox_state_dict", "count_gflops", "count_parameters",
    "infer_toolbox_architecture", "load_model_file", "load_toolbox_model", "model_complexity", "model_size",
    "read_model_info", "read_toolbox_state_dict", "save_model_file",
]
