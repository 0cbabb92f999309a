"""voxemo: speech emotion recognition with honest, speaker-independent evaluation.

The package is built in floors, each importing only from the floors below it (``docs/architecture.md``):
``core`` → ``dsp`` → ``io`` → ``corpus`` → ``nn`` → ``inference`` → ``experiment`` → ``reports`` → ``workflows``
→ ``apps``. This module re-exports the public API; each name is imported when first used, so ``import voxemo``
(and the command line) stays fast and prediction never imports torch.

>>> import voxemo
>>> voxemo.EMOTIONS[:4]
('neutral', 'calm', 'happy', 'sad')
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from voxemo.core.version import __version__

#: public name -> the module that defines it
_API = {
    "EMOTIONS": "voxemo.core.labels", "TAXONOMY": "voxemo.core.labels",
    "AudioConfig": "voxemo.core.config", "Config": "voxemo.core.config", "FeatureConfig": "voxemo.core.config",
    "ModelConfig": "voxemo.core.config", "TrainConfig": "voxemo.core.config", "AugmentConfig": "voxemo.core.config",
    "AdaptationError": "voxemo.core.errors", "AudioError": "voxemo.core.errors", "ConfigError": "voxemo.core.errors",
    "CorpusError": "voxemo.core.errors", "NoSpeechError": "voxemo.core.errors",
    "DownloadError": "voxemo.core.errors", "ModelError": "voxemo.core.errors", "VoxemoError": "voxemo.core.errors",
    "Utterance": "voxemo.core.records",
    "read_manifest": "voxemo.io.manifest", "write_manifest": "voxemo.io.manifest",
    "load_corpus": "voxemo.corpus", "load_ravdess": "voxemo.corpus",
    "Classifier": "voxemo.inference.classifier", "EmotionClassifier": "voxemo.inference.torch_backend",
    "OnnxClassifier": "voxemo.inference.onnx_backend", "load_model": "voxemo.inference.loading",
    "export_onnx": "voxemo.inference.torch_backend",
    "EmotionStream": "voxemo.inference.stream", "timeline": "voxemo.inference.timeline",
    "predict_batch": "voxemo.inference.batch", "AdaptOptions": "voxemo.inference.selfadapt",
}

__all__ = [
    "AdaptOptions", "AdaptationError", "AudioConfig", "AudioError", "AugmentConfig", "Classifier", "Config",
    "ConfigError", "CorpusError", "DownloadError", "EMOTIONS", "EmotionClassifier", "EmotionStream", "FeatureConfig",
    "ModelConfig", "ModelError", "NoSpeechError", "OnnxClassifier", "TAXONOMY", "TrainConfig", "Utterance",
    "VoxemoError", "__version__", "export_onnx", "load_corpus", "load_model", "load_ravdess", "predict_batch",
    "read_manifest", "timeline", "write_manifest"
]

if TYPE_CHECKING:
    from voxemo.core.config import AudioConfig, AugmentConfig, Config, FeatureConfig, ModelConfig, TrainConfig
    from voxemo.core.errors import (
        AdaptationError,
        AudioError,
        ConfigError,
        CorpusError,
        DownloadError,
        ModelError,
        NoSpeechError,
        VoxemoError,
    )
    from voxemo.core.labels import EMOTIONS, TAXONOMY
    from voxemo.core.records import Utterance
    from voxemo.corpus import load_corpus, load_ravdess
    from voxemo.inference.batch import predict_batch
    from voxemo.inference.classifier import Classifier
    from voxemo.inference.loading import load_model
    from voxemo.inference.onnx_backend import OnnxClassifier
    from voxemo.inference.selfadapt import AdaptOptions
    from voxemo.inference.stream import EmotionStream
    from voxemo.inference.timeline import timeline
    from voxemo.inference.torch_backend import EmotionClassifier, export_onnx
    from voxemo.io.manifest import read_manifest, write_manifest


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'voxemo' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
