"""The runtime layer: configuration, the one bootstrap, the projection follower, the views audit schedule."""
