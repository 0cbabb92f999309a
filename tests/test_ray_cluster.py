"""Both ``--engine ray`` entry points on a two-node Ray cluster simulated on this machine
(``ray.cluster_utils.Cluster``, one CPU per node): predictions and evaluation metrics identical to the local engine,
also when a worker is killed mid-run, and the resume path."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced, voxemo_records
from voxemo.apps.cli import main
from voxemo.core.config import AudioConfig, Config, ModelConfig, TrainConfig
from voxemo.core.labels import EMOTIONS
from voxemo.dsp.features import extract
from voxemo.experiment.evaluate import evaluate
from voxemo.experiment.results import Evaluation
from voxemo.inference.batch import predict_batch
from voxemo.io.discovery import expand_inputs

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]  # it trains (tiny) models


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """A head node and a worker node, one CPU each, and this process connected to them as the driver."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level=logging.WARNING)
    yield c
    ray.shutdown()
    c.shutdown()


def _pids(title: bytes) -> list[int]:
    """Process ids whose title starts with ``title`` (Ray titles a worker by what it runs: ``ray::BatchActor``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(11)
    for i in range(80):
        sf.write(str(root / f"clip{i:03d}.wav"), voiced(0.4, 8000, rng, f0=100 + (i % 8) * 25), 8000,
                 subtype="PCM_16")
    (root / "broken.wav").write_bytes(b"RIFF, and then nothing")
    return root


def test_predict_on_two_nodes_matches_local_and_resumes(cluster: object, folder: Path, tmp_path: Path) -> None:
    assert sum(n["Alive"] for n in ray.nodes()) == 2
    local, remote = tmp_path / "local.csv", tmp_path / "ray.csv"
    predict_batch([folder], fmt="csv", output=local, jobs=1)
    summary = predict_batch([folder], fmt="csv", output=remote, jobs=2, engine="ray")
    assert summary.failed == 1 and remote.read_bytes() == local.read_bytes()

    # resume: the first 50 rows (and the header) survive a stop; the rest is done once
    lines = remote.read_text().splitlines(keepends=True)
    remote.write_text("".join(lines[:51]) + lines[51][:10])  # and a row cut off by the kill
    summary = predict_batch([folder], fmt="csv", output=remote, jobs=2, engine="ray", resume=True)
    assert summary.skipped == 50 and remote.read_bytes() == local.read_bytes()


def test_predict_survives_a_killed_worker_on_the_cluster(cluster: object, folder: Path) -> None:
    from voxemo.inference.distributed import ray_stream
    from voxemo.inference.worker import WorkerSettings

    items = list(expand_inputs([folder])) * 4
    reference = [r.to_dict() for r in ray_stream(iter(items[: len(items) // 4]), WorkerSettings(), jobs=2)] * 4
    results = []
    for result in ray_stream(iter(items), WorkerSettings(), jobs=2, chunk=4):
        results.append(result.to_dict())
        if len(results) == 12:
            os.kill(_pids(b"ray::BatchActor")[-1], signal.SIGKILL)
    assert results == reference  # every input once, in order, with the same result


def _tiny_evaluation(runner: object = None, on_first_fold: object = None) -> Evaluation:
    rng = np.random.default_rng(0)
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4,)),
                 train=TrainConfig(epochs=3, batch_size=16, val_speakers=2))
    recs = voxemo_records(12, clips_per_speaker=7)
    specs = [extract(voiced(0.5, 16000, rng, f0=100 + 20 * EMOTIONS.index(r.emotion)), 16000, cfg.audio,
                     cfg.features) for r in recs]
    return evaluate(recs, specs, cfg, "actor-6fold", jobs=2, progress=False, runner=runner)  # type: ignore[arg-type]


def _same(a: Evaluation, b: Evaluation) -> None:
    assert a.summary.to_dict() == b.summary.to_dict()
    for x, y in zip(a.folds, b.folds):
        assert np.array_equal(x.probs, y.probs)  # bit for bit
        assert [{k: v for k, v in h.items() if k != "seconds"} for h in x.history or ()] == \
            [{k: v for k, v in h.items() if k != "seconds"} for h in y.history or ()]
    assert np.array_equal(a.confusion, b.confusion)


def test_evaluate_on_two_nodes_gives_the_local_metrics_even_when_a_fold_worker_dies(cluster: object) -> None:
    import threading

    from voxemo.experiment.distributed import ray_fold_runner

    local = _tiny_evaluation()
    _same(local, _tiny_evaluation(ray_fold_runner()))

    killed: list[int] = []

    def kill_a_fold_worker() -> None:  # as soon as a fold runs, kill its process once: Ray runs the fold again
        for _ in range(3000):
            pids = _pids(b"ray::_fit_shared")
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            threading.Event().wait(0.01)

    killer = threading.Thread(target=kill_a_fold_worker)
    killer.start()
    try:
        again = _tiny_evaluation(ray_fold_runner())
    finally:
        killer.join()
    assert killed
    _same(local, again)


def test_cli_evaluate_engine_ray_writes_the_local_report(cluster: object, fake_ravdess, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data = fake_ravdess(actors=(1, 2, 3, 4, 5, 6))
    tiny = ["--epochs", "2", "--set", "model.channels=[4]", "--set", "augment.copies=0", "--set",
            "train.val_speakers=1", "--set", "train.batch_size=16", "--set", "audio.duration=1.0"]
    metrics = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        assert main(["-q", "evaluate", str(data), "--protocol", "actor-6fold", "--jobs", "1", "--out", str(out),
                     "--engine", engine, *tiny]) == 0
        metrics[engine] = json.loads((out / "metrics.json").read_text())
    assert _timeless(metrics["ray"]) == _timeless(metrics["local"])


def _timeless(x: object) -> object:
    """``x`` without its ``seconds`` entries (wall times), at any depth."""
    if isinstance(x, dict):
        return {k: _timeless(v) for k, v in x.items() if k != "seconds"}
    return [_timeless(v) for v in x] if isinstance(x, list) else x


def test_ablation_grid_on_the_cluster_gives_the_local_rows(cluster: object, fake_ravdess, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``experiments/ablation.py --engine ray --seeds``: rows x seeds side by side on the cluster, each row's metrics
    those of the local run."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ablation", Path(__file__).parents[1] / "experiments" / "ablation.py")
    assert spec and spec.loader
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    tiny = ["audio.duration=1.0", "model.channels=[4]", "train.epochs=1", "augment.copies=0", "train.val_speakers=1"]
    monkeypatch.setattr(ablation, "ROWS", {"tiny": tiny})
    monkeypatch.setenv("VOXEMO_HOME", str(tmp_path / "home"))
    data = fake_ravdess(actors=(1, 2, 3, 4, 5, 6))
    rows = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.json"
        assert ablation.main(["--data", str(data), "--out", str(out), "--rows", "tiny", "--seeds", "0,1",
                              "--engine", engine, "--concurrent", "2"]) == 0
        rows[engine] = {k: (v["summary"], v["folds"]) for k, v in json.loads(out.read_text()).items()}
    assert sorted(rows["ray"]) == ["tiny@seed0", "tiny@seed1"]
    assert rows["ray"] == rows["local"]
