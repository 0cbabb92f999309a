"""Build the voice encoder ONNX file voxemo ships, from the pinned PyPI wheel that carries Resemblyzer's weights.

    pip install --no-deps resemblyzer==0.1.4   # wheel SHA-256 8f12eb2f...; only its pretrained.pt is read
    python experiments/build_voice_encoder.py  # writes src/voxemo/models/encoders/resemblyzer-voice.onnx

After rebuilding the shipped file, put its SHA-256 into ``voxemo.inference.encoders.ENCODERS``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from voxemo.nn.voice import build_encoder, export_encoder

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "voxemo" / "models" / "encoders" / "resemblyzer-voice.onnx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="Resemblyzer's pretrained.pt (default: the installed package's)")
    ap.add_argument("--out", default=str(SHIPPED))
    args = ap.parse_args()
    out = export_encoder(build_encoder(args.weights), args.out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, sha256 {digest}")


if __name__ == "__main__":
    main()
