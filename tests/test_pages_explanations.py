"""Figures the explanations compute from cited specifications: PCIe limits and on-chip bandwidth per FLOP."""

from __future__ import annotations

import math

from gpucnn.pages.bandwidth import PCIE_GEN4, PCIE_GEN5, PcieLink


def test_pcie_one_way_limit_applies_the_line_encoding() -> None:
    link = PcieLink(5, 32.0)
    assert math.isclose(link.one_way_bytes_per_s, 32e9 * 16 * 128 / 130 / 8)
    assert math.isclose(PCIE_GEN5.one_way_bytes_per_s, 2 * PCIE_GEN4.one_way_bytes_per_s)
    assert math.isclose(PcieLink(5, 32.0, lanes=8).one_way_bytes_per_s, link.one_way_bytes_per_s / 2)


def test_lanes_count_physical_cores_and_sms() -> None:
    import dataclasses

    from gpucnn.hardware import AcceleratorInfo, Peak, detect
    from gpucnn.pages.gpu import FP32_LANES_PER_SM, cpu_lanes, gpu_lanes

    hw = detect()
    cpu = dataclasses.replace(hw.cpu, usable_cores=4, max_clock_ghz=2.0,
                              peak_fp32=Peak(4 * 2.0e9 * 32, "FLOP/s", "test", True))
    assert cpu_lanes(dataclasses.replace(hw, cpu=cpu)) == (4, 16)
    assert cpu_lanes(dataclasses.replace(hw, cpu=dataclasses.replace(cpu, usable_cores=None))) is None
    acc = AcceleratorInfo(device_type="cuda", backend="CUDA", name="x", count=1, memory_bytes=None,
                          capability="8.0", multiprocessors=108, l2_bytes=None, driver=None, runtime=None,
                          cudnn=None, tf32_matmul=None, mig=None, peaks=None)
    assert gpu_lanes(acc) == 108 * FP32_LANES_PER_SM["8.0"]
    assert gpu_lanes(dataclasses.replace(acc, capability="12.0")) is None  # unknown: no guess


def test_conv_kernels_are_sorted_into_cudnns_algorithm_families() -> None:
    from gpucnn.pages.cnn import conv_algorithm

    assert conv_algorithm("sm80_xmma_fprop_implicit_gemm_f32f32_f32f32_f32_nchwkcrs_nchw_tilesize32x32x8") \
        == "implicit_gemm"
    assert conv_algorithm("void implicit_convolve_sgemm<float, float, 1024, 5, 5, 3, 3, 3, 1, false>") == "implicit_gemm"
    assert conv_algorithm("void fft2d_r2c_32x32<float, false, 1u, false>(float2*, float const*)") == "fft"
    assert conv_algorithm("sm80_xmma_gemm_cf32cf32_f32f32_cf32_tn_n_tilesize32x32x8") == "fft"
    assert conv_algorithm("void wgrad_alg0_engine<float, 128, 5, 5, 3, 3, 3, false, 512>") == "wgrad"
    assert conv_algorithm("winograd_nonfused_fprop") == "winograd"
    # a weight gradient computed by implicit GEMM is a gradient kernel, as is a data gradient
    assert conv_algorithm("sm80_xmma_wgrad_implicit_gemm_indexed_f32f32_tilesize64x64x8") == "wgrad"
    assert conv_algorithm("sm80_xmma_dgrad_implicit_gemm_f32f32_tilesize64x32x8") == "wgrad"
    # a real-valued GEMM and a pooling kernel are not convolution algorithms
    assert conv_algorithm("sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize32x32x8") is None
    assert conv_algorithm("void at::native::max_pool_backward_nchw<float, float>") is None


