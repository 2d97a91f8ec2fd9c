"""Hook specifications: the plugin API of advdistill.

A plugin is a module (or object) with functions marked ``@advdistill.hookimpl``. Each hook
below receives a ``register`` callable and contributes components of one kind::

    from advdistill import hookimpl

    @hookimpl
    def register_attacks(register):
        register("my_pgd", "my_package.attacks:MyPGD", summary="PGD with a twist")

``register(name, target, *, summary=None, aliases=(), config=None, traits=None)`` takes the component's
name as a recipe names it (``kind = "my_pgd"``), and the component itself or, better, a
``"module:attribute"`` string that is imported only when the component is first used —
plugin modules must not import torch at registration time. A component is a class (or
factory) whose ``Config`` attribute, if present, is an attrs class validating the recipe
table's parameters; it is built as ``Component(Config(**params))``. ``config`` names that
class apart from the component (``"my_package.config:MyPGDConfig"``, a module without torch),
so that resolving a recipe (``advdistill recipe show/check``) imports the config only;
``config=False`` says the component takes no parameters; the default reads ``Config`` from the
component (which imports its module). ``traits`` declares the class attributes a recipe's
resolution reads (``requires_teacher``, ``requires_val``, ``requires_packages``,
``default_val_size``; :data:`advdistill.registry.TRAITS`), those left out at their defaults, so
that reading them imports nothing; None (default) reads them from the component.

Plugins are found through the ``advdistill`` entry-point group::

    [project.entry-points.advdistill]
    my_plugin = "my_package.plugin"
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from advdistill.registry import Register

PROJECT_NAME = "advdistill"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_attacks(register: Register) -> None:
    """Register attacks (kind ``attack``): inner maximizations and evaluation attacks.

    A component implements :class:`advdistill.interfaces.Attack`.
    """


@hookspec
def register_objectives(register: Register) -> None:
    """Register base training objectives (kind ``objective``), e.g. ``pgd_at``, ``rslad``.

    A component implements :class:`advdistill.interfaces.Objective`.
    """


@hookspec
def register_aux(register: Register) -> None:
    """Register auxiliary losses (kind ``aux``) added to the objective, e.g. ``igdm``.

    A component implements :class:`advdistill.interfaces.AuxLoss`.
    """


@hookspec
def register_schedules(register: Register) -> None:
    """Register scalar schedules (kind ``schedule``) for loss weights and learning rates.

    A component implements :class:`advdistill.interfaces.Schedule`.
    """


@hookspec
def register_models(register: Register) -> None:
    """Register architectures (kind ``model``): students, teachers, surrogates.

    A component is a factory ``Component(Config(**params)).build(num_classes, in_chans)``
    returning an ``nn.Module`` mapping images in [0, 1] to logits; see
    :class:`advdistill.interfaces.ModelFactory`.
    """


@hookspec
def register_teachers(register: Register) -> None:
    """Register teacher loaders (kind ``teacher``) returning frozen, eval-mode models.

    A component implements :class:`advdistill.interfaces.TeacherLoader`.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register data sets (kind ``dataset``) read from local files, never downloaded.

    A component implements :class:`advdistill.interfaces.DatasetSource`.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register evaluation metrics (kind ``metric``) writing keys into the report.

    A component implements :class:`advdistill.interfaces.Metric`.
    """


@hookspec
def register_callbacks(register: Register) -> None:
    """Register training callbacks (kind ``callback``): logging, periodic evaluation, ...

    A component implements :class:`advdistill.interfaces.Callback`.
    """


@hookspec
def register_step_extensions(register: Register) -> None:
    """Register step extensions (kind ``step_extension``): code acting inside the training step,
    between the attack and the update (e.g. ``awp``), named by ``[step_extensions.<label>]`` tables.

    A component implements :class:`advdistill.interfaces.StepExtension`.
    """


@hookspec
def register_commands(register: Register) -> None:
    """Register extra CLI sub-commands (kind ``command``): ``register(name, click_command)``."""
