"""`creditnet audit`: verify the contracts' history and the lender's books from the chain.

For someone who trusts neither the lender nor its node: everything is read from a chain
RPC (never from the node's database) and from the published sources, and the books are
checked only against what the chain commits to. Modules, in the order an audit uses them:

- `recompile`, `bytecode`, `source_verify`, `manifest_check`: the deployed code is the
  published source, and the manifest tells the truth about the deployment;
- `chain_reader`, `audited`, `events`, `history` (+ `history_cycles`, `replay_state`,
  `seeding` for a partial window), `view_calls`, `state_views`, `governance_views`: every
  event replays to the state the contracts' views show;
- `state_machine`, `quorum`, `invariants`: cycle and agreement invariants, quorum
  signatures, known role holders and signers;
- `export_format`, `export_reader`, `leaves`, `reconcile`: the lender's export against the
  on-chain roots and commitments (`books_export` is the node's side that writes it);
- `checks`, `runner`, `report`, `cli`: orchestration, report.json + report.html, exit code.
"""
