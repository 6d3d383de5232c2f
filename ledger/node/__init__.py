"""The node loop and its observability: relay, consume, checkpoint, audit views, report health."""
