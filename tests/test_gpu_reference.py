"""The published speed table: NVML names map to the right row and amp mode to the right column."""

import pytest

from larsbench.gpu_reference import reference_speed


@pytest.mark.parametrize(
    ("name", "amp", "one", "eight", "approx"),
    [
        ("NVIDIA A100-SXM4-80GB", "fp16", 2470, 16621, False),
        ("NVIDIA A100-SXM4-40GB", "off", 938, 7248, False),
        ("NVIDIA A100 80GB PCIe", "bf16", 2470, 16621, True),
        ("Tesla V100-SXM2-32GB", "fp16", 1156, 8056, False),
        ("Tesla V100-SXM2-16GB", "off", 367, 2855, False),
    ],
)
def test_row_and_column(name: str, amp: str, one: float, eight: float, approx: bool) -> None:
    ref = reference_speed(name, amp)
    assert ref is not None
    assert (ref.images_per_sec_1, ref.images_per_sec_8, ref.approximate) == (one, eight, approx)
    assert "DeepLearningExamples" in ref.source


def test_unlisted_gpu_has_no_figure() -> None:
    assert reference_speed("NVIDIA H200", "bf16") is None
    assert reference_speed("cpu", "off") is None


def test_derived_figures() -> None:
    ref = reference_speed("NVIDIA A100-SXM4-80GB", "fp16")
    assert ref is not None
    assert ref.per_gpu_at_8 == pytest.approx(16621 / 8)
    assert ref.scaling_at_8 == pytest.approx(16621 / (8 * 2470))
