"""The pure core: hashing, Merkle tree, proofs, tiles, notes, checkpoints, entries.

Nothing under ``auditseal.core`` reads a clock, the environment, a file or a socket; an
architecture test enforces it. The auditor's verifier depends on this package alone.
"""
