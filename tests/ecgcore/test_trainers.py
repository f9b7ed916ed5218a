"""The trainer registry: every trainer an architecture names is there, declared by its own module; models
import no training; a plain network's fit imports no LightGBM or scikit-learn; DDP is refused from the registry."""

import json
import subprocess
import sys

import pytest

from ecgcore.errors import ProjectError
from ecgcore.models import TRAINERS, get_architecture, known_architectures
from ecgcore.training.distributed import Replicas
from ecgcore.training.train import train_task
from ecgcore.training.trainers import MODULES, get_trainer, trainer_name
from tests.conftest import ROOT, tiny_model
from tests.ecgcore.test_train import make_task


def test_every_trainer_is_registered_by_its_module_with_what_it_allows():
    assert set(MODULES) == {*TRAINERS, "pretrain"}
    assert {get_architecture(a).trainer for a in known_architectures()} <= set(TRAINERS)
    declared = {name: (get_trainer(name).fit.__module__, get_trainer(name).replicas) for name in MODULES}
    assert declared == {"epochs": ("ecgcore.training.classify", True), "pretrain": ("ecgcore.training.pretrain", True),
                        "boosting": ("ecgcore.training.boosting", False),
                        "stacking": ("ecgcore.training.stacking", False), "stack": ("ecgcore.training.stack", False)}
    assert not get_trainer("stacking").fine_tunes  # the hybrid reads its deep part's checkpoint itself
    with pytest.raises(ProjectError, match="unknown trainer 'vote'"):
        get_trainer("vote")


def test_the_trainer_follows_the_task_kind_then_the_architecture():
    cnn = make_task(".", ".", tiny_model("CNN")).model
    assert trainer_name("classify", cnn) == "epochs" and trainer_name("pretrain", cnn) == "pretrain"


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", f"import json\n{probe}"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_models_and_prediction_import_no_training_and_a_network_fit_no_boosting_library():
    loaded = _imported_after("import ecgcore.models, ecgcore.inference, ecgcore.trained")
    assert "ecgcore.models.hybrid" in loaded and "ecgcore.models.stack" in loaded
    assert not [m for m in loaded if m.startswith("ecgcore.training")]
    loaded = _imported_after("from ecgcore.training.trainers import get_trainer\nget_trainer('epochs')\n"
                             "get_trainer('pretrain')")
    assert "ecgcore.training.classify" in loaded
    assert not {"lightgbm", "sklearn", "neurokit2", "ecgcore.features.extract"} & set(loaded)


def test_a_trainer_without_gradient_steps_refuses_replicas(synth_dir, tmp_path):
    gbm = json.loads((ROOT / "models" / "FeatureGBM.json").read_text())
    with pytest.raises(ProjectError, match="FeatureGBM is not trained by gradient steps"):
        train_task(make_task(synth_dir, tmp_path, gbm), replicas=Replicas(rank=0, world=2))
