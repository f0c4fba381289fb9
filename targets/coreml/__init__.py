"""Core ML (target ``apple``): our IR lowered to a MIL program, saved as an ``.mlpackage``,
verified on Linux by the MIL reference evaluator (`targets.coreml.mil_eval`)."""
