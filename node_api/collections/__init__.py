"""Collections: the work on delinquent lines, from the first missed payment to the agency.

Cases open when end of day ages a line past due and close when it cures; each case sits
in a queue chosen by the strategy version it was opened under (bucket, score band,
balance, days past due, promises), with a channel and an assignee. Every contact
attempt passes the conduct rules (`conduct.py`) before it is recorded; messages leave
through the outbox as `notification` rows that the dispatcher sends to a contact
provider exactly once. Promises to pay and hardship plans are tracked per case.

Business time is explicit here as everywhere below the edges: dates are business dates
and a contact's time is given by the caller.
"""
