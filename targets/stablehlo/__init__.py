"""ONNX IR → StableHLO lowering for the LiteRT converter (see `emit` for why it is written here)."""
