"""The mode and gradient toggles every attack and evaluation goes through."""

import pytest
import torch
from torch import nn

from advdistill.torch_utils import module_mode, no_param_grad


def _net():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.ReLU(), nn.BatchNorm2d(2)))


@pytest.mark.parametrize("train", [True, False])
def test_module_mode_sets_then_restores_every_submodule(train):
    net = _net()
    net[2][1].eval()  # a deliberately frozen BatchNorm inside a training model
    before = [m.training for m in net.modules()]
    with module_mode(net, train) as inside:
        assert inside is net
        assert all(m.training == train for m in net.modules())
    assert [m.training for m in net.modules()] == before


def test_module_mode_restores_after_an_error_and_none_leaves_modes_alone():
    net = _net().eval()
    with pytest.raises(RuntimeError), module_mode(net, True):
        raise RuntimeError
    assert not any(m.training for m in net.modules())
    with module_mode(net, None):
        assert not any(m.training for m in net.modules())


def test_module_mode_respects_an_overridden_train():
    class KeepsBNFrozen(nn.Sequential):
        def train(self, mode=True):
            super().train(mode)
            self[1].eval()
            return self

    net = KeepsBNFrozen(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).eval()
    with module_mode(net, True):
        assert net.training and net[0].training and not net[1].training
    assert not any(m.training for m in net.modules())


def test_no_param_grad_switches_only_trainable_parameters_and_restores_them():
    student, teacher = _net(), _net().requires_grad_(False)
    student[1].weight.requires_grad_(False)  # partly frozen
    shared = nn.Linear(2, 2)
    tied = nn.Sequential(shared, shared)  # the same parameters twice
    before = {id(p): p.requires_grad for m in (student, teacher, tied) for p in m.parameters()}
    with no_param_grad(student, None, teacher, tied):
        assert not any(p.requires_grad for m in (student, teacher, tied) for p in m.parameters())
        x = torch.rand(2, 1, 5, 5, requires_grad=True)
        (grad,) = torch.autograd.grad(student(x).sum(), [x])
        assert grad.shape == x.shape
    assert {id(p): p.requires_grad for m in (student, teacher, tied) for p in m.parameters()} == before
    assert all(p.grad is None for p in student.parameters())


def test_no_param_grad_restores_after_an_error():
    net = _net()
    with pytest.raises(RuntimeError), no_param_grad(net):
        raise RuntimeError
    assert all(p.requires_grad for p in net.parameters())
