"""The steps of end of day, in the order they run (see `runner`)."""

from __future__ import annotations

from node_api.lending.eod.step import Step
from node_api.lending.eod.step_accrue import ACCRUE_STEP
from node_api.lending.eod.step_bill import BILL_STEP
from node_api.lending.eod.step_charge_off import CHARGE_OFF_STEP
from node_api.lending.eod.step_classify import CLASSIFY_STEP
from node_api.lending.eod.step_credit import CREDIT_STEP
from node_api.lending.eod.step_delinquency import DELINQUENCY_STEP
from node_api.lending.eod.step_due import DUE_STEP
from node_api.lending.eod.step_fund import FUND_STEP
from node_api.lending.eod.step_late_fee import LATE_FEE_STEP

STEPS: tuple[Step, ...] = (
    FUND_STEP,
    CREDIT_STEP,
    DUE_STEP,
    LATE_FEE_STEP,
    ACCRUE_STEP,
    DELINQUENCY_STEP,
    CHARGE_OFF_STEP,
    CLASSIFY_STEP,
    BILL_STEP,
)
STEPS_BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
