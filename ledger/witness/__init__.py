"""The witness role (issue #20): it holds the hub's map heads and every agency's own tree heads, finds forks and
rollbacks, gossips its view to other witnesses and cosigns what it found consistent (docs/accountable-hub.md)."""
