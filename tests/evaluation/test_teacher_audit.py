"""The teacher audit: its two rules (formulas against hand computations) and what it measures."""

import math

import pytest
import torch
from torch import nn

from advdistill.errors import RecipeError
from advdistill.evaluation.teacher_audit import (
    SLACK_POINTS,
    TeacherAudit,
    audit_teacher,
    chance_limit,
    clean_tolerance,
)
from advdistill.evaluation.threat import ThreatModel
from advdistill.interfaces import PublishedAccuracy


class FixedAnswers(nn.Module):
    """Answers ``answers[i]`` for image i (its first two pixels carry i in base 256)."""

    def __init__(self, answers: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.answers, self.num_classes = answers, num_classes
        self.scale = nn.Parameter(torch.ones(()))  # something for the attack to differentiate through

    def forward(self, x):
        index = (x[:, 0, 0, 0] * 255).round().long() * 256 + (x[:, 0, 0, 1] * 255).round().long()
        return nn.functional.one_hot(self.answers[index], self.num_classes).float() * 10 * self.scale + 0 * x.sum()


def indexed_images(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = torch.arange(n) // 256, torch.arange(n) % 256
    return x


def test_clean_tolerance_is_three_standard_errors_plus_slack():
    # p = 0.9, n = 1000 of 10000: SE = sqrt(0.09 / 1000) = 0.0094868; fpc = sqrt(9000 / 9999) = 0.948731
    assert clean_tolerance(90.0, 1000, 10000) == pytest.approx(300 * 0.0094868 * 0.948731 + 0.5, abs=1e-3)
    assert clean_tolerance(90.0, 10000, 10000) == pytest.approx(SLACK_POINTS)  # the whole test set
    assert clean_tolerance(100.0, 50, 10000) == pytest.approx(SLACK_POINTS)
    assert clean_tolerance(72.58, 1000, 10000) == pytest.approx(4.5152, abs=1e-3)  # BDM-AT, CIFAR-100


def test_chance_limit_is_three_standard_errors_below_a_tenth_of_the_way_from_chance():
    # 10 classes: f = 0.1 + 0.1 * 0.9 = 0.19; n = 1000: 19 - 300 * sqrt(0.19 * 0.81 / 1000) = 15.2783
    assert chance_limit(10, 1000) == pytest.approx(19 - 300 * math.sqrt(0.19 * 0.81 / 1000))
    assert chance_limit(10, 1000) == pytest.approx(15.2783, abs=1e-3)
    assert chance_limit(100, 1000) == pytest.approx(100 * (0.109 - 3 * math.sqrt(0.109 * 0.891 / 1000)))
    assert chance_limit(4, 8) < 0  # a handful of images refuses nothing


def test_audit_measures_the_first_n_images():
    labels = torch.tensor([0, 1, 2, 3] * 50)
    answers = labels.clone()
    answers[:20] = (answers[:20] + 1) % 4  # the first 20 are wrong
    model = FixedAnswers(answers, 4)
    audit = audit_teacher(model, indexed_images(200), labels, num_classes=4, n=100, attack=None)
    assert audit.n == 100 and audit.clean == pytest.approx(80.0) and audit.robust is None
    assert audit.status == "ok" and audit.published is None and audit.tolerance is None


def test_audit_flags_near_chance_and_below_published():
    constant = FixedAnswers(torch.zeros(1000, dtype=torch.long), 4)  # a quarter right: chance
    audit = audit_teacher(constant, indexed_images(1000), torch.tensor([0, 1, 2, 3] * 250), num_classes=4,
                          attack=None, name="zero")
    assert audit.clean == pytest.approx(25.0) and audit.chance_limit == pytest.approx(chance_limit(4, 1000))
    assert audit.status == "near_chance" and "near chance" in audit.message()
    # on 200 images the same 25 % is not evidence enough (the limit is 22.6 %)
    small = audit_teacher(constant, indexed_images(200), torch.tensor([0, 1, 2, 3] * 50), num_classes=4, attack=None)
    assert small.status == "ok" and small.chance_limit == pytest.approx(22.56, abs=0.01)
    labels = torch.tensor([0, 1, 2, 3] * 50)
    answers = labels.clone()
    answers[:60] = (answers[:60] + 1) % 4  # 70 % right
    published = PublishedAccuracy(clean=90.0, autoattack=50.0, source="a test")
    audit = audit_teacher(FixedAnswers(answers, 4), indexed_images(200), labels, num_classes=4,
                          published=published, attack=None, name="weak")
    assert audit.clean == pytest.approx(70.0)
    assert audit.tolerance == pytest.approx(clean_tolerance(90.0, 200, 200))
    assert audit.status == "below_published"
    message = audit.message()
    assert "70.00 %" in message and "90.00 % is published" in message and "a test" in message
    for cause in ("normalization", "wrong file", "sub_block1", "wrong data set"):
        assert cause in message
    fine = audit_teacher(FixedAnswers(labels, 4), indexed_images(200), labels, num_classes=4,
                         published=published, attack=None)
    assert fine.status == "ok" and fine.message() == ""


def test_robust_accuracy_and_its_record(tiny_teacher, batch):
    x, y = batch
    images = (x * 255).round().to(torch.uint8)
    published = PublishedAccuracy(clean=10.0, autoattack=5.0, pgd20=99.0, source="s")
    audit = audit_teacher(tiny_teacher, images, y, num_classes=4, n=6, robust_n=4, attack="pgd20",
                          published=published)
    assert audit.attack == "pgd20" and audit.robust_n == 4 and 0 <= audit.robust <= 100
    assert any("PGD-20" in w for w in audit.warnings)  # far below the published 99 %
    record = audit.record()
    assert record["event"] == "teacher_audit" and record["published"]["pgd20"] == 99.0
    assert record["clean"] == audit.clean and record["warnings"] == list(audit.warnings)
    assert TeacherAudit(**{k: v for k, v in record.items() if k not in ("event", "published")}).clean == audit.clean


def test_the_robust_accuracy_is_measured_at_the_threat_model_given(tiny_teacher, batch):
    # a radius of 1e-6 cannot change a prediction: robust = clean; a radius of 1 (the whole
    # image box) breaks every image of this tiny network
    x, y = batch
    images = (x * 255).round().to(torch.uint8)
    for attack in ("pgd20", "apgd-ce"):
        tiny = audit_teacher(tiny_teacher, images, y, num_classes=4, attack=attack,
                             threat=ThreatModel("linf", 1e-6, "[attack]"))
        assert tiny.robust == pytest.approx(tiny.clean)
        assert tiny.threat == {"norm": "linf", "eps": 1e-6, "source": "[attack]"}
        whole = audit_teacher(tiny_teacher, images, y, num_classes=4, attack=attack,
                              threat=ThreatModel("linf", 1.0, "[attack]"))
        assert whole.robust == 0.0 and whole.threat["eps"] == 1.0


def test_published_robust_numbers_are_compared_only_at_their_threat_model(tiny_teacher, batch):
    x, y = batch
    images = (x * 255).round().to(torch.uint8)
    published = PublishedAccuracy(clean=10.0, autoattack=5.0, pgd20=99.0, source="s")  # Linf 8/255
    default = audit_teacher(tiny_teacher, images, y, num_classes=4, attack="pgd20", published=published)
    assert default.threat == {"norm": "linf", "eps": 8 / 255, "source": "published"}
    assert default.warnings and not default.threat_differs_from_published()
    other = audit_teacher(tiny_teacher, images, y, num_classes=4, attack="pgd20", published=published,
                          threat=ThreatModel("linf", 0.3, "[attack]"))
    assert other.warnings == () and other.threat_differs_from_published()
    l2 = PublishedAccuracy(clean=10.0, pgd20=99.0, norm="l2", eps=0.5)
    assert audit_teacher(tiny_teacher, images, y, num_classes=4, published=l2).threat["norm"] == "l2"
    nothing = audit_teacher(tiny_teacher, images, y, num_classes=4)
    assert nothing.threat == {"norm": "linf", "eps": 8 / 255, "source": "default"}


def test_apgd_ce_runs_through_the_autoattack_metric(tiny_teacher, batch):
    x, y = batch
    images = (x * 255).round().to(torch.uint8)
    audit = audit_teacher(tiny_teacher, images, y, num_classes=4, attack="apgd-ce")
    assert audit.attack == "apgd-ce" and 0 <= audit.robust <= audit.clean


def test_unknown_attack_is_a_clear_error(tiny_teacher, batch):
    x, y = batch
    with pytest.raises(RecipeError, match="pgd20, apgd-ce"):
        audit_teacher(tiny_teacher, (x * 255).to(torch.uint8), y, num_classes=4, attack="fgsm")


def test_audit_leaves_the_global_rng_alone(tiny_teacher, batch):
    x, y = batch
    state = torch.get_rng_state()
    audit_teacher(tiny_teacher, (x * 255).to(torch.uint8), y, num_classes=4, attack="pgd20")
    assert torch.equal(state, torch.get_rng_state())
