"""Optional parts of voxemo and the pip extra that installs each.

The base install predicts with an ONNX model; training, the service, the microphone, the eGeMAPS baseline and Ray
clusters need libraries that a user who only predicts should not have to install. A command that reaches for a
missing one says, in one line, which extra brings it.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from voxemo.core.errors import VoxemoError

#: top-level import name -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "torch": "train", "onnx": "train", "onnxscript": "train", "sklearn": "train", "librosa": "train",
    "audiomentations": "train", "pyloudnorm": "train", "matplotlib": "plot",
    "fastapi": "serve", "fastapi_offline": "serve", "starlette": "serve", "uvicorn": "serve", "multipart": "serve",
    "websockets": "serve",
    "sounddevice": "live",
    "opensmile": "baseline",
    "ray": "ray", "pyarrow": "ray",
}


class MissingExtraError(VoxemoError, ImportError):
    """An optional library is not installed; the message names the extra that installs it."""


def missing_extra_message(module: str, purpose: str = "this") -> str | None:
    """The one-line message for a missing ``module`` (a dotted name is fine), or None if no extra provides it.

    >>> missing_extra_message("uvicorn.main", "voxemo serve")
    "voxemo serve needs uvicorn, which is not installed: pip install 'voxemo[serve]'"
    """
    top = module.split(".")[0]
    extra = EXTRA_OF.get(top)
    if extra is None:
        return None
    # the train extra brings torch, whose PyPI build is the CUDA one (gigabytes of nvidia packages)
    cpu = (" (on a machine without a GPU, first: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
           if top == "torch" or extra == "train" else "")
    return f"{purpose} needs {top}, which is not installed: pip install 'voxemo[{extra}]'{cpu}"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra to install.

    Parameters
    ----------
    module : str
        The import name, e.g. ``"torch"``.
    purpose : str
        What needs it, as the start of a sentence: ``"voxemo train"``, ``"the torch backend"``.
    """
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc.name or module, purpose)
        if message is None:
            raise
        raise MissingExtraError(message) from None
