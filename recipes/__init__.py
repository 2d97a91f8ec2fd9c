"""Ready-made recipes, installed as the ``advdistill_recipes`` package so installed copies find them."""
