"""Trained scorecard cards shipped with the node (JSON; see ../data/SOURCE.md)."""
