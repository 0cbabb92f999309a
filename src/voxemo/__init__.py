"""voxemo: speech emotion recognition with honest, speaker-independent evaluation.

>>> import voxemo
>>> voxemo.EMOTIONS[:4]
('neutral', 'calm', 'happy', 'sad')
"""

from importlib.metadata import PackageNotFoundError, version

from .config import AudioConfig, Config, FeatureConfig, ModelConfig, TrainConfig
from .corpus import load_corpus, load_ravdess
from .errors import AudioError, ConfigError, CorpusError, DownloadError, ModelError, VoxemoError
from .labels import EMOTIONS, TAXONOMY
from .predict import EmotionClassifier, load_model
from .records import Utterance, read_manifest, write_manifest

try:
    __version__ = version("voxemo")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "EMOTIONS", "TAXONOMY", "AudioConfig", "AudioError", "Config", "ConfigError", "CorpusError", "DownloadError",
    "EmotionClassifier", "FeatureConfig", "ModelConfig", "ModelError", "TrainConfig", "Utterance", "VoxemoError",
    "load_corpus", "load_model", "load_ravdess", "read_manifest", "write_manifest", "__version__",
]
