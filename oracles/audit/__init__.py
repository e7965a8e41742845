"""`creditnet audit`: verify the contracts' history and the lender's books from the chain.

For someone who trusts neither the lender nor its node: everything is read from a chain
RPC (never from the node's database) and from the published sources, and the books are
checked only against what the chain commits to. Modules, in the order an audit runs them:

- `recompile` / `bytecode` / `source_verify`: the deployed code is the published source;
- `chain_reader` / `events` / `history` / `state_views`: every event replays to the state
  the contracts' views show;
- `quorum` / `invariants`: cycle and agreement invariants, quorum signatures, role holders;
- `export_format` / `export_reader` / `reconcile`: the lender's export against the roots;
- `runner` / `report` / `cli`: orchestration, report.json + report.html, exit code.
"""
