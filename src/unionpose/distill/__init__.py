"""Training objectives: the conditional KL-discrete ground-truth loss; distillation builds on the same seam."""
from unionpose.distill.objective import GroundTruthObjective
from unionpose.distill.simcc_loss import kl_discrete_loss

__all__ = ["GroundTruthObjective", "kl_discrete_loss"]
