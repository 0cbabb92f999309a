"""The calibration section of an evaluation's ``report.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def calibration_markdown(cal: Mapping[str, Any], fold_names: Sequence[str]) -> list[str]:
    """The report.md section for an :func:`evaluate_folds` summary (lines)."""
    p = cal["pooled"]
    if "after" not in p:
        b = p["before"]
        return ["## Calibration\n", f"Uncalibrated ({cal['method']}): ECE {b['ece']:.3f} ({cal['n_bins']} bins), "
                f"NLL {b['nll']:.3f}, Brier {b['brier']:.3f}.\n", "![reliability](reliability.png)\n"]
    lines = ["## Calibration\n",
             f"Method: {cal['method']} (window logits scaled, then averaged per clip). ECE uses "
             f"{cal['n_bins']} equal-width confidence bins. Accuracy is unchanged (the most probable class never "
             "changes).\n",
             "| | ECE | NLL | Brier |", "|---|---|---|---|",
             *(f"| {name} | {p[name]['ece']:.3f} | {p[name]['nll']:.3f} | {p[name]['brier']:.3f} |"
               for name in ("before", "after")),
             "", "| fold | T | ECE before | ECE after | NLL before | NLL after |", "|---|---|---|---|---|---|"]
    for name, f in zip(fold_names, cal["folds"]):
        lines.append(f"| {name} | {f['temperature']:.3f} | {f['before']['ece']:.3f} | {f['after']['ece']:.3f} | "
                     f"{f['before']['nll']:.3f} | {f['after']['nll']:.3f} |")
    lines += [f"\nT fitted on all folds' test predictions together: {cal['temperature']:.3f}.\n",
              "![reliability](reliability.png)\n"]
    return lines
