"""`advdistill demo`: train a robust teacher on MNIST-5k, distil two students, compare them."""

from __future__ import annotations

import click


@click.command("demo")
def demo() -> None:
    """Placeholder replaced below."""
