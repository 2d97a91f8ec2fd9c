"""The `advdistill demo` command: the main job on the embedded MNIST-5k data set."""

from advdistill import hookimpl


@hookimpl
def register_commands(register):
    register("demo", "advdistill_plugins.demo.command:demo",
             summary="train a robust teacher, distil RSLAD and RSLAD+IGDM students, compare them")
