"""The end-of-day batch: close a business date (customer credit applied, due dates, late
fees, accrual, penalty interest, delinquency ageing, charge-off, classification and
provisions, bill cut), resumable and idempotent per date.
See `runner` for how a run proceeds and `scheduler` for running it inside the node."""

from node_api.lending.eod.context import EodContext
from node_api.lending.eod.runner import run_eod, run_eod_through
from node_api.lending.eod.summary import EodSummary, StepSummary

__all__ = ["EodContext", "EodSummary", "StepSummary", "run_eod", "run_eod_through"]
