"""Studies: many runs of one scenario. Sweep grids, tuning to an SLO, the cost crossover against
traffic volume, their execution (a local process pool, or a Dask cluster) and their own plots.

May import: the runner (sim.simulate), results/statistics, the engine and everything below it.
Never imports sim.cli or sim.report.
"""
