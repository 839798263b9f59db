"""RTMPose models: CSPNeXt backbone, RTMCC head, the t/s/m/l zoo, toolbox weights, the UnionPose model and backbone
files, and starting a model from released weights."""
from unionpose.models.backbone_file import BackboneFile, read_backbone_file, save_backbone_file
from unionpose.models.complexity import Complexity, count_gflops, count_parameters, model_complexity
from unionpose.models.initialise import InitRecord, initialise_model
from unionpose.models.model_file import load_model_file, read_model_info, save_model_file
from unionpose.models.rtmpose import MODEL_SIZES, ModelSize, RTMPose, model_size
from unionpose.models.toolbox_weights import (
    ToolboxArchitecture,
    check_toolbox_architecture,
    convert_toolbox_state_dict,
    infer_toolbox_architecture,
    infer_toolbox_size,
    load_toolbox_model,
    read_toolbox_state_dict,
)

__all__ = [
    "MODEL_SIZES", "BackboneFile", "Complexity", "InitRecord", "ModelSize", "RTMPose", "ToolboxArchitecture",
    "check_toolbox_architecture", "convert_toolbox_state_dict", "count_gflops", "count_parameters",
    "infer_toolbox_architecture", "infer_toolbox_size", "initialise_model", "load_model_file", "load_toolbox_model",
    "model_complexity", "model_size", "read_backbone_file", "read_model_info", "read_toolbox_state_dict",
    "save_backbone_file", "save_model_file",
]
