"""Developer tools, outside the product: nothing under sim/ imports this package.

python -m sim.dev.bench      simulated requests per second, whole-process runs
python -m sim.dev.docsgen    regenerate the README's comparison tables from real runs
"""
