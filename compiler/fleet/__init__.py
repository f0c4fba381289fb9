"""Fleet builds for CI: a matrix of models × targets × precisions built and verified in parallel
here (a process pool) or on a Ray cluster, with results CI reads.

- `spec`: the fleet file → rows.
- `row`: one row where a worker runs it (the same `compiler.build.run` as `build`), a device step.
- `local` / `cluster`: the executors (process pool; Ray tasks, device routing by custom resource).
- `install`: installing an artifact that arrived as bytes; recording a device step.
- `results`: summary.json / summary.md / index.html / JUnit XML.
- `progress`: the live display.
- `matrix`: the driver.
"""
