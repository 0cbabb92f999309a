"""The same numbers on any x86-64 CPU: the SIMD kernels that numpy and torch choose are pinned to the AVX2 level.

numpy, torch (ATen), oneDNN and MKL each pick their kernels by the CPU they run on, and kernels for different
instruction sets round differently in the last bit. Measured on this project's machine (an AVX-512 CPU): the log-mel
features of 150 RAVDESS clips differ, even after the float16 rounding of the feature cache, between numpy's
AVX-512 and AVX2 kernels, and three epochs of a small CNN end with other weights under ATen's AVX-512 and AVX2
kernels. A training run is a long chain of such roundings, so the same command with the same seed chose another
output-bias variant and scored otherwise on a host with another CPU. With the kernels pinned to AVX2, which every
x86-64 CPU of the last decade has, the numbers depend on the code, the data and the seed, not on the host.

The pins are environment variables that the libraries read when they load (numpy) or first compute (torch),
so :func:`pin_cpu_kernels` must run before numpy is imported: ``voxemo``'s command line does it first thing, and
worker processes inherit the environment. A variable the user has set is left as it is.
"""

from __future__ import annotations

import os
import platform
import sys

#: environment variable -> value: numpy's AVX-512 dispatch off (numpy 2 and numpy 1 names; names a version does
#: not know are ignored), ATen, oneDNN and MKL (conditional numerical reproducibility) at AVX2
PINS: dict[str, str] = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
}


def pin_cpu_kernels() -> dict[str, str]:
    """Pin numpy's and torch's kernels to the AVX2 level (x86-64 only; elsewhere nothing changes).

    Returns the variables this call set (those already set are kept). Call it before numpy is imported;
    a pin for a library that is already loaded would not take effect, so this returns ``{}`` then too.
    """
    if platform.machine().lower() not in ("x86_64", "amd64") or "numpy" in sys.modules:
        return {}
    set_now = {k: v for k, v in PINS.items() if k not in os.environ}
    os.environ.update(set_now)
    return set_now
