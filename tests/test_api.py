"""The public Python API (advdistill.api) as help() and an IDE show it."""

import inspect
import pydoc

import pytest

import advdistill as ad


def test_evaluate_shows_its_parameters():
    parameters = inspect.signature(ad.evaluate).parameters
    names = ["recipe", "checkpoint", "metrics", "limit", "batch_size", "out_dir", "device", "checks", "show_progress"]
    assert list(parameters) == ["run_dir_or_model", *names]
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    text = pydoc.render_doc(ad.evaluate, renderer=pydoc.plaintext)
    for name in ["run_dir_or_model", *names]:
        assert f":param {name}:" in text, name


def test_evaluate_refuses_run_directory_options_for_a_model(tiny_recipe):
    model = ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)
    with pytest.raises(ValueError, match="checkpoint= and out_dir= go with a run directory"):
        ad.evaluate(model, recipe=tiny_recipe(), out_dir="x")
