"""Every registered callback keeps the callback contract (advdistill.testing.check_callback): hooks
take the RunState, epoch-record additions are JSON, the engine's entries, modes and the global RNG
are left alone."""

import pytest

import advdistill as ad
from advdistill.testing import check_callback, make_run_state

#: (parameters, keys each epoch record gains) with small settings (a new callback must be added here)
CALLBACKS = {
    "progress": ({}, set()),
    "periodic_eval": ({"limit": 8, "steps": 1}, {"eval"}),
    "linearity": ({"limit": 8}, {"linearity"}),
    "ema": ({"decay": 0.9}, set()),
    "tensorboard": ({}, set()),
    # the session's SQLite store (below); the artifacts in the test's directory (the working directory)
    "mlflow": ({"artifact_location": "mlflow-artifacts", "experiment": "contract"}, set()),
    "wandb": ({"mode": "offline"}, set()),
}
#: the package each tracker needs (their tests skip, with this reason, only where it is missing)
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def test_every_callback_is_covered():
    names = {i.name for i in ad.list_components("callback") if i.package == "advdistill" and not i.alias_of}
    assert names == set(CALLBACKS)


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_callback_contract(name, tiny_recipe, tmp_path, monkeypatch, request):
    if name in PACKAGES:
        pytest.importorskip(PACKAGES[name], reason=f"{PACKAGES[name]} is not installed (the {name} extra); CI "
                                                   "installs it and test_trackers_are_installed_in_ci requires it")
    monkeypatch.chdir(tmp_path)
    params, added = CALLBACKS[name]
    if name == "mlflow":
        params = {**params, "tracking_uri": request.getfixturevalue("mlflow_database")}
    data = {"kind": "synthetic", "n_train": 64, "n_test": 32, "num_classes": 4, "image_size": 8, "in_chans": 1,
            "val_size": 16}  # periodic_eval and linearity read the validation split
    run = make_run_state(tiny_recipe(data=data), tmp_path / "run", epochs=2)
    records = check_callback(ad.build("callback", name, **params), run)
    assert [set(r) - {"event", "epoch", "train_loss", "lr", "seconds"} for r in records] == [added, added]
