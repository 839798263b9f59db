"""Shared test fixtures: where the real data lives, and a skip with a clear reason when it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
FIXTURES = DATA / "fixtures"
REFERENCE = SHARED / "reference"


def require(path: Path) -> Path:
    """Return `path`, or skip the test naming the missing file (the shared data is read-only and may be absent)."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (expected ../shared beside the repository)")
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    return require(FIXTURES)


@pytest.fixture
def reference_dir() -> Path:
    return require(REFERENCE)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run tiny models: a second intra-op thread gains nothing and, on shared cores, slows them many times."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """An untrained RTMPose-t model file (COCO-17, 128x96): for tests of the plumbing around a model, not its accuracy.
    Torch is imported here, not at the top, so torch-free tests can share this file."""
    import torch

    from unionpose.models import RTMPose, save_model_file
    from unionpose.skeletons import get_skeleton

    torch.manual_seed(0)
    return save_model_file(tmp_path_factory.mktemp("model") / "t.safetensors", RTMPose("t", 17, (128, 96)),
                           get_skeleton("coco17"))


@pytest.fixture(scope="module")
def onnx_file(model_file: Path) -> Path:
    """`model_file` exported to ONNX beside it."""
    from unionpose.export.onnx import export_onnx
    from unionpose.models import load_model_file

    return export_onnx(*load_model_file(model_file), model_file.with_suffix(".onnx"))
