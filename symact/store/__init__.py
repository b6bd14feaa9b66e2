"""The store of experiments and their results, one job per module, arrows pointing down the list:

- :mod:`symact.store.results`: load a stored result or run and store it (``load_or_run``, ``Result``);
- :mod:`symact.store.units`: units of long runs, the combine step, the Dask runner;
- :mod:`symact.store.checkpoints`: where a unit in progress checkpoints, so that it resumes;
- :mod:`symact.store.provenance`: provenance records, stored files, fingerprints of weights;
- :mod:`symact.store.registry`: experiments, profiles, config hashes.

:mod:`symact.results` re-exports the public names.
"""
