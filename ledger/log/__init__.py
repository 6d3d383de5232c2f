"""The log layer: envelopes, seals, signatures, Merkle trees, ciphers and the one store."""
