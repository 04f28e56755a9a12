"""Published ResNet50 training speeds per GPU model and precision: what a healthy node reaches.

The figures are NVIDIA DeepLearningExamples' ResNet50 v1.5 for PyTorch (README, section
"Training performance results", pytorch-21.03 NGC container, ImageNet through DALI,
`--mode benchmark_training`):
https://github.com/NVIDIA/DeepLearningExamples/tree/master/PyTorch/Classification/ConvNets/resnet50v1.5

Used for two things: the demand side of the feed check (how many img/s the GPUs will ask of
the input pipeline) and the expected figure of `larsbench doctor`'s training-speed check.
GPUs that the table does not list (H100, H200, L40S, ...) have no figure: callers say so
instead of guessing. Mixed precision there is fp16 with a loss scaler; larsbench's bf16 is
matched to the same figure (same tensor-core rate on A100/H100), marked as approximate.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = (
    "NVIDIA DeepLearningExamples, PyTorch ResNet50 v1.5 README, training performance "
    "(pytorch-21.03 NGC container)"
)


@dataclass(frozen=True)
class ReferenceSpeed:
    """One row of the published table: img/s of a whole node at 1 and at 8 GPUs."""

    gpu: str  # the GPU as the source names it
    precision: str  # the source's column: "TF32", "FP32" or "mixed precision"
    images_per_sec_1: float
    images_per_sec_8: float
    approximate: bool = False  # True where larsbench's amp mode is matched to a near column
    source: str = SOURCE

    @property
    def per_gpu_at_8(self) -> float:
        return self.images_per_sec_8 / 8

    @property
    def scaling_at_8(self) -> float:
        """Strong scaling of the published run: 8-GPU img/s over 8 x the 1-GPU img/s."""
        return self.images_per_sec_8 / (8 * self.images_per_sec_1)


# (name fragment, precision column) -> (img/s on 1 GPU, img/s on 8 GPUs)
_TABLE: dict[tuple[str, str], tuple[str, float, float]] = {
    ("A100", "TF32"): ("A100 80GB (DGX A100)", 938, 7248),
    ("A100", "mixed precision"): ("A100 80GB (DGX A100)", 2470, 16621),
    ("V100-32GB", "FP32"): ("V100 32GB (DGX-1)", 356, 2766),
    ("V100-32GB", "mixed precision"): ("V100 32GB (DGX-1)", 1156, 8056),
    ("V100", "FP32"): ("V100 16GB (DGX-1)", 367, 2855),
    ("V100", "mixed precision"): ("V100 16GB (DGX-1)", 1200, 8322),
}


def _family(gpu_name: str) -> str | None:
    """The table's key for an NVML device name ("NVIDIA A100-SXM4-80GB", "Tesla V100-SXM2-32GB")."""
    name = gpu_name.upper().replace(" ", "")
    if "A100" in name:
        return "A100"
    if "V100" in name:
        return "V100-32GB" if "32GB" in name else "V100"
    return None


def _column(family: str, amp: str) -> tuple[str, bool]:
    """The published column for larsbench's `train.amp` ("off", "fp16", "bf16")."""
    if amp == "fp16":
        return "mixed precision", False
    if amp == "bf16":
        return "mixed precision", True
    # amp off: PyTorch runs convolutions in TF32 on Ampere by default (cudnn.allow_tf32).
    return ("TF32" if family == "A100" else "FP32"), False


def reference_speed(gpu_name: str, amp: str) -> ReferenceSpeed | None:
    """The published ResNet50 training speed for this GPU model and amp mode, or None when the
    table has no row for the GPU (the caller reports "no published figure")."""
    family = _family(gpu_name)
    if family is None:
        return None
    precision, approximate = _column(family, amp)
    if (family, precision) not in _TABLE:
        return None
    gpu, one, eight = _TABLE[(family, precision)]
    return ReferenceSpeed(gpu, precision, one, eight, approximate=approximate)
