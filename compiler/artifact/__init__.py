"""Artifacts: the directory a build writes and everything that reads, checks or loads it.

- `files`: sha256, the file table, strict JSON (the format's core; backends import it).
- `slot`: the output path of a run — ownership, locking, atomic install, scratch.
- `scratch`: where a run's temporary files go.
- `integrity`: the manifest's seal and the check of every file against it.
- `read`: reading a manifest, the golden set an artifact carries, loading its engine, verify.
- `write`: finishing an artifact directory (parity.json, report.md, the sealed manifest,
  build.json).

Nothing here imports the build orchestration (`compiler.build`) or the CLI.
"""
