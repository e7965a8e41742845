"""The CreditNet lender node: HTTP API, CLI and the off-chain domain."""
