"""The audit layer: verification, checkpoints, proofs, replay and reports (reads the log, never writes it)."""
