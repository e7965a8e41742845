"""`creditnet audit`: verify the contracts' history and the lender's books from the chain.

For someone who trusts neither the lender nor its node: everything is read from a chain
RPC (never from the node's database) and from the published sources, and the books are
checked only against what the chain commits to. Modules, in the order an audit uses them:

- `recompile`, `bytecode`, `source_verify`, `manifest_check`: the deployed code is the
  published source, and the manifest tells the truth about the deployment; `reach` and
  `exits`: in that source no pause can stop a claim, a refund, a default or a dispute;
- `chain_reader`, `audited`, `events`, `history` (+ `history_cycles`, `history_timelock`,
  `replay_state`, `seeding` for a partial window), `view_calls`, `state_views`,
  `governance_views`: every event replays to the state the contracts' views show;
- `quorum`, `invariants`, `custody`: cycle (defaults and refunds included) and agreement
  invariants, quorum signatures, known role holders and signers, and every token the
  clearing house holds owed to a claim, a refund or a pending funded cycle;
- `governance_checks`: the timelock holds the governed contracts' admin roles since the
  deployment, every later admin action went through it, every operation waited its delay;
- `export_format`, `export_reader`, `leaves`, `reconcile`: the lender's export against the
  on-chain roots and commitments (`books_export` is the node's side that writes it);
- `checks`, `runner`, `report`, `cli`: orchestration, report.json + report.html, exit code.
"""
