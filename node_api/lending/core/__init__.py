"""The lending core: limits, use decisions, line books, settlement-event entries and the
group-committed hot path of purchase and cash-drawdown authorization."""
