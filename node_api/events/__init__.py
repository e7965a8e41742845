"""The business event stream: facts the books already hold, published once each to NATS
JetStream for downstream systems (the data platform, collections, funders' own books)."""
