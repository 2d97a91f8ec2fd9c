"""The runner: one report even when a metric fails; models restored; progress logged."""

import logging

import pytest
import torch

import advdistill as ad
from advdistill.evaluation.context import EvalContext
from advdistill.evaluation.runner import run_metrics
from advdistill.interfaces import Metric

CPU = torch.device("cpu")


class Boom(Metric):
    def evaluate(self, ctx):
        raise ValueError("exploded on purpose")


class Constant(Metric):
    def __init__(self, **values):
        super().__init__()
        self.values = values

    def evaluate(self, ctx):
        return self.values


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(12, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    return images, torch.randint(0, 4, (12,), generator=g)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return ad.create_model("small_cnn", num_classes=4, in_chans=1, widths=[4], hidden=8)


def test_a_failing_metric_is_reported_and_the_others_kept(net, data):
    metrics = {"clean": ad.build("metric", "clean"), "boom": Boom(), "other": Constant(extra=1.5)}
    values, errors, seconds = run_metrics(net, *data, metrics, device=CPU, show_progress=False)
    assert set(values) == {"clean", "extra"} and values["extra"] == 1.5
    assert errors == {"boom": "ValueError: exploded on purpose"}
    assert set(seconds) == {"clean", "boom", "other"}


def test_teacher_requirement_and_key_clashes_are_errors_not_crashes(net, data):
    metrics = {"gd": ad.build("metric", "grad_alignment"), "a": Constant(x=1), "b": Constant(x=2)}
    values, errors, _ = run_metrics(net, *data, metrics, device=CPU, show_progress=False)
    assert values == {"x": 1}
    assert "needs a teacher" in errors["gd"] and "already written" in errors["b"]


def test_modes_and_gradient_flags_are_restored(net, data):
    net.train()
    net.head[1].requires_grad_(False)  # a deliberately frozen layer stays frozen
    flags = [p.requires_grad for p in net.parameters()]
    run_metrics(net, *data, {"pgd": ad.build("metric", "pgd", steps=2)}, device=CPU,
                show_progress=False)
    assert net.training and [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())


def test_limit_and_progress_messages(net, data, caplog):
    seen = {}

    class Count(Metric):
        def evaluate(self, ctx):
            seen["n"] = ctx.n_examples
            seen["batches"] = [x.shape[0] for x, _ in ctx.batches()]
            return {"n": ctx.n_examples}

    with caplog.at_level(logging.INFO, logger="advdistill.evaluation.progress"):
        run_metrics(net, *data, {"count": Count(), "pgd": ad.build("metric", "pgd", steps=1, eps=0.25)},
                    device=CPU, limit=7, batch_size=3, show_progress=False, progress_lines=True)
    assert seen == {"n": 7, "batches": [3, 3, 1]}
    lines = [r.getMessage() for r in caplog.records if r.name == "advdistill.evaluation.progress"]
    assert len(lines) == 2  # one line per metric
    assert lines[0].startswith("[1/2] count: n = 7 on 7 images, ")  # not a percentage; an integer count
    assert lines[1].startswith("[2/2] pgd: pgd1 = ") and " % (Linf ε = 0.25) on 7 images, " in lines[1]
    caplog.clear()
    run_metrics(net, *data, {"count": Count()}, device=CPU, show_progress=False)  # the periodic evaluation's way
    assert not [r for r in caplog.records if r.name == "advdistill.evaluation.progress"]


def test_context_helpers(net, data):
    images, labels = data
    ctx = EvalContext(model=net.eval(), images=images, labels=labels, device=CPU, show_progress=False)
    x, y = ctx.tensors()
    assert x.dtype == torch.float32 and torch.equal(x, images.float() / 255) and torch.equal(y, labels)
    assert ctx.num_classes() == 4
    assert list(ctx.progress(range(3))) == [0, 1, 2]
    seeds = [ctx.generator(stream).initial_seed() for stream in (2, 2, 3)]
    assert seeds[0] == seeds[1] != seeds[2]


class Flags(Metric):
    """Records the first ``k`` images as correct, then fails if asked to."""

    def __init__(self, key, k, fail=False):
        super().__init__()
        self.key, self.k, self.fail = key, k, fail

    def evaluate(self, ctx):
        flags = torch.arange(ctx.n_examples) < self.k
        ctx.record(self.key, flags)
        ctx.scoped("sub@1/").record(self.key, ~flags)
        if self.fail:
            raise RuntimeError("after recording")
        return {self.key: 100.0 * self.k / ctx.n_examples}


def test_records_are_collected_by_key_and_those_of_failed_metrics_dropped(net, data):
    records = {}
    metrics = {"a": Flags("a", 3), "b": Flags("b", 5, fail=True), "clean": ad.build("metric", "clean"),
               "again": Flags("a", 1)}
    values, errors, _ = run_metrics(net, *data, metrics, device=CPU, limit=8, show_progress=False, records=records)
    assert set(records) == {"a", "sub@1/a", "clean"}  # b failed; the second "a" clashed
    assert records["a"].tolist() == [True] * 3 + [False] * 5 and records["sub@1/a"].tolist() == [False] * 3 + [True] * 5
    assert records["a"].dtype == torch.bool and records["a"].device.type == "cpu"
    assert "already written" in errors["again"] and "after recording" in errors["b"]
    # the clean metric's flags are its accuracy, image by image
    with torch.no_grad():
        expected = net.eval()(data[0][:8].float() / 255).argmax(1) == data[1][:8]
    assert torch.equal(records["clean"], expected)
    assert values["clean"] == pytest.approx(100.0 * expected.float().mean().item())


def test_flags_of_the_wrong_shape_are_refused(net, data):
    ctx = EvalContext(model=net, images=data[0], labels=data[1], device=CPU)
    with pytest.raises(ValueError, match=r"shape \(11,\); expected \(12,\)"):
        ctx.record("clean", torch.ones(11, dtype=torch.bool))
