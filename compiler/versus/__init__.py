"""`make bench-versus`: our artifacts against the flows a user runs by hand, in one run.

Per model, one interleaved timing run (every flow once per round in a shuffled order, each sample
a ≈ 5 ms block of back-to-back calls; 1 thread, batch 1 and 8) over: PyTorch eager; by hand on
the raw export — ONNX Runtime fp32, ORT static QDQ (its defaults: u8 activations, MinMax), \
ORT dynamic int8 per-channel, OpenVINO default (its own precision hint:
bf16 on AMX CPUs), OpenVINO f32, NNCF int8 (OpenVINO's own quantizer); and our built artifacts
through their own runners (so any overhead they add is measured). Accuracy is judged on a
held-out real set (``bench/heldout/<model>.toml``) that no build step reads, against eager fp32
on the same inputs: top-1 agreement for classifiers, min cosine for embeddings at each of several
sequence lengths. Results: ``<out>/versus-<model>.json`` and a table in ``<out>/versus.md``, with
every artifact of ours that a by-hand flow of the same runtime and precision class beats at equal
or better accuracy (and whether the gap is beyond the run's noise).

The by-hand flows use each tool's documented defaults and the model's own calibration data; they
are bench-only (NNCF is the ``bench`` extra). Never assert these numbers in tests.

Modules: `heldout` (the held-out set), `flows` (eager, by hand, ours), `measure` (accuracy and the
interleaved timing), `verdict` (who wins, who is dominated), `markdown` (the table), `run` (one
model end to end) and `__main__` (the command line).
"""
