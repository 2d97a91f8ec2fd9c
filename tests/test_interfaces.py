"""What every component shares (advdistill.interfaces.Component)."""

import advdistill as ad
from advdistill.interfaces import Component


def test_a_built_component_shows_its_class_and_config():
    attack = ad.build("attack", "pgd", eps="8/255", steps=20)
    text = repr(attack)
    assert text.startswith("PGD(eps=0.03137254901960784, ") and "steps=20" in text and "norm='linf'" in text
    assert "object at 0x" not in text
    assert repr(ad.build("metric", "clean")) == "Clean()"
    assert repr(ad.build("model", "small_cnn", widths=[4], hidden=8)) == \
        "SmallCNNFactory(mean=None, std=None, widths=(4,), hidden=8)"
    assert repr(Component(config={"a": 1})) == "Component(config={'a': 1})"
