"""Purchase and cash-drawdown authorization: the group-committed hot path."""
