"""The plugin surface (advdistill.testing.PLUGIN_SURFACE): docs/plugins.md lists exactly it, the
example plugin imports nothing else, and every internal module our own plugins import is listed
here with the reason."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from advdistill.testing import PLUGIN_SURFACE, surface_violations

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"

#: Core modules outside the surface that our own plugins import, and why. They ship in the same
#: distribution as the core, so they may; a third-party plugin may not (the example shows how).
INTERNAL_USES = {
    "advdistill.engine.checkpoint": "the teacher loaders and `teacher convert` read and write the engine's own "
                                    "weight files (safetensors + metadata, strict loading with readable key errors)",
    "advdistill.engine.data": "the linearity callback batches test images with the engine's in-memory loader",
    "advdistill.evaluation.runner": "periodic evaluation runs metrics exactly as `advdistill eval` does; its "
                                    "result picks checkpoints/best",
    "advdistill.plugins": "`teacher convert --arch` checks a model kind against the registry",
    "advdistill.recipe.loading": "`teacher convert --param KEY=VALUE` parses values as `--set` does",
    "advdistill.val_split": "periodic_eval and the linearity callback read the validation split and refuse a run "
                            "without one with the core's own message",
    "advdistill.evaluation.teacher_audit": "`teacher audit` runs the audit that training runs at start",
    "advdistill.evaluation.batching": "AutoAttack's batch size is chosen from free GPU memory by the evaluation's "
                                      "own probe",
}


def documented_surface() -> list[str]:
    """The module names in the table of docs/plugins.md's "Modules a plugin may import" section."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Modules a plugin may import", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([\w.]+)` \|", section, flags=re.MULTILINE)


def test_docs_list_exactly_the_surface():
    assert documented_surface() == list(PLUGIN_SURFACE), (
        "docs/plugins.md's table of modules a plugin may import must list advdistill.testing.PLUGIN_SURFACE, "
        "in its order"
    )


def test_every_surface_module_exists():
    for name in PLUGIN_SURFACE:
        importlib.import_module(name)


def test_the_example_plugin_imports_only_the_surface():
    assert surface_violations(ROOT / "examples" / "advdistill-example") == []


def test_our_plugins_use_internals_only_where_listed_with_a_reason():
    used = {}
    for violation in surface_violations(ROOT / "plugins"):
        module = violation.rsplit(": ", 1)[1]
        if not module.startswith("advdistill_plugins"):  # our plugins share code among themselves
            used.setdefault(module, []).append(violation)
    unlisted = {m: v for m, v in used.items() if m not in INTERNAL_USES}
    assert not unlisted, (
        f"plugins/ imports internal modules not in INTERNAL_USES (add the reason, or use the surface): {unlisted}"
    )
    stale = set(INTERNAL_USES) - set(used)
    assert not stale, f"INTERNAL_USES lists modules plugins/ no longer imports: {sorted(stale)}"
