"""`python -m node_api.cli` is the same as `creditnet`."""

from node_api.cli import main

main()
