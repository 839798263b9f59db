"""The PyTorch pose backend: an in-memory RTMPose (or any module with its outputs) behind the backend call."""
from __future__ import annotations

import numpy as np
import torch


class TorchBackend:
    """A PyTorch RTMPose (or any module with the same outputs), in eval mode, without autograd."""

    decoded = False

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available to this PyTorch ({torch.__version__})")
        self.model = model.eval().to(self.device)

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        """(simcc_x, simcc_y), and simcc_z for a model with a depth head."""
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(crops)).to(self.device))
        return tuple(output.float().cpu().numpy() for output in logits)
