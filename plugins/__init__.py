"""advdistill's own plugins, registered through the ``advdistill`` entry-point group exactly
as a third-party package's plugins are. Each subpackage's ``__init__`` only registers
(cheap, no torch); the implementations are imported when a recipe first uses them."""
