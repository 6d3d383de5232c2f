"""Read models rebuilt purely from the signed event log."""
