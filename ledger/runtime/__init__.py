"""The runtime layer: configuration, the one bootstrap, the follower and observability."""
