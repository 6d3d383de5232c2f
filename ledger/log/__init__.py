"""The log layer: envelopes, seals, signatures, ciphers and the one store (Merkle hashing is the kernel's
``ledger.merkle``: the domain's checkpoints need its empty root)."""
