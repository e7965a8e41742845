"""`/v1/collections`: queues and cases of delinquent lines, contact attempts under the
conduct rules, promises to pay, hardship plans, strategies (versions and champion /
challenger activations), message templates, the contact registry and the outcome report
per strategy arm, per vintage and bucket to bucket (recoveries and compensations are
`routes/recoveries.py`).

Agents (operator keys) work cases; lender administrators write strategies, approve
templates and decide hardship plans. Contact numbers are only ever returned masked.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from node_api.collections.attempts import (
    Attempt,
    AttemptRequest,
    AttemptView,
    fetch_attempts,
    record_contact_attempt,
)
from node_api.collections.cases import (
    CaseView,
    QueueView,
    fetch_case,
    fetch_cases,
    fetch_queues,
    refresh_cases,
)
from node_api.collections.contacts import ContactView, fetch_contacts, register_contact
from node_api.collections.hardship import (
    PlanRequest,
    PlanView,
    decide_plan,
    fetch_plans,
    request_plan,
)
from node_api.collections.model import CaseStatus, Channel, Outcome, Party, PlanKind
from node_api.collections.policy import load_policy
from node_api.collections.promises import (
    EvaluationSummary,
    PromiseView,
    evaluate_promises,
    fetch_promises,
    record_promise,
)
from node_api.collections.reports import (
    ArmReport,
    LossTally,
    RollRate,
    VintageReport,
    fetch_arm_reports,
    fetch_roll_rates,
    fetch_vintage_reports,
)
from node_api.collections.strategy import StrategyDocument
from node_api.collections.strategy_store import (
    Activation,
    StrategyVersion,
    activate,
    create_strategy_version,
    fetch_activation,
    fetch_strategy_versions,
)
from node_api.collections.templates import (
    TemplateView,
    approve_template,
    create_template,
    fetch_templates,
)
from node_api.http.authz import AdminDep, OperatorDep, ReaderDep
from node_api.http.deps import SessionDep
from node_api.http.idempotency import OnceDep
from node_api.http.schemas import (
    ID_MAX,
    AmountFen,
    IdentifierStr,
    LineId,
    PathIdText,
    StrictBody,
    documented,
    fetch_as_of,
    from_view,
)
from node_api.http.services import ServicesDep
from node_api.kernel.money import FEN_ZERO, Fen

router = APIRouter(tags=["collections"])

CaseId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="collections case id")]
PlanId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="hardship plan id")]
TemplateId = Annotated[int, PathIdText, Path(ge=1, le=ID_MAX, description="template id")]
NameStr = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.:-]{0,63}$")]
VERSION_MAX = 2**31 - 1


# ---------------------------------------------------------------- models

# The domain's views are the responses; these subclasses only keep the schema names the
# API has always published (their fields are declared once, in `node_api.collections`).


class CollectionsQueueOut(QueueView): ...


class CollectionsContactOut(ContactView): ...


class CollectionsPromiseOut(PromiseView): ...


class CollectionsEvaluationOut(EvaluationSummary): ...


class CollectionsActivationOut(Activation): ...


class CollectionsTemplateOut(TemplateView): ...


class CollectionsArmReportOut(ArmReport): ...


class CollectionsRollRateOut(RollRate): ...


class CollectionsAsOfIn(StrictBody):
    as_of: date | None = None
    """Default: the node's business date (at most a few days before it, never after)."""


class CollectionsRefreshOut(BaseModel):
    as_of: date
    promises_kept: int
    promises_broken: int
    promises_pending: int
    cases_opened: int
    cases_cured: int
    open_cases: int
    activation_id: int


class CollectionsContactIn(StrictBody):
    party: Party
    phone: Annotated[str, StringConstraints(min_length=5, max_length=32)]
    """A mainland mobile number; stored sealed, only ever shown masked."""


class CollectionsAttemptIn(StrictBody):
    party: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    """`borrower` or `emergency_contact`; anyone else is refused by the conduct rules."""
    channel: Channel
    contacted_at: AwareDatetime | None = None
    """When the contact starts, with its offset (default: now)."""
    outcome: Outcome | None = None
    """Required for a call or agency contact; a message is `queued`."""
    template_id: int | None = Field(default=None, ge=1, le=ID_MAX)
    """Required for a message: an approved template of its channel and party."""
    note: Annotated[str, StringConstraints(max_length=2_000)] | None = None


class CollectionsAttemptOut(Attempt): ...


class CollectionsAttemptNotedOut(AttemptView):
    """An attempt with its note (read from the case; the answer to recording an attempt,
    which is kept for replays, leaves the note out)."""


class CollectionsPromiseIn(StrictBody):
    amount_fen: AmountFen
    due_on: date
    promised_on: date | None = None
    """Default: the node's business date."""
    attempt_id: int | None = Field(default=None, ge=1, le=ID_MAX)


class CollectionsPlanIn(StrictBody):
    kind: PlanKind
    term_months: int = Field(ge=1, le=36)
    """Months of the holiday, or of the re-aged installment plan."""
    rate_bps: int = Field(ge=0, le=10_000)
    """Annual rate of the plan."""
    fee_fen: Fen = Field(default=FEN_ZERO, ge=0, le=10**12)
    principal_fen: Fen | None = Field(default=None, gt=0, le=10**12)
    """Default: the case's outstanding balance."""
    reason_code: IdentifierStr


class CollectionsDecisionIn(StrictBody):
    approve: bool
    reason: IdentifierStr


class CollectionsCaseDetailOut(BaseModel):
    case: CaseView
    contacts: list[CollectionsContactOut]
    attempts: list[CollectionsAttemptNotedOut]
    promises: list[CollectionsPromiseOut]
    hardship_plans: list[PlanView]


class CollectionsStrategyIn(StrictBody):
    document: StrategyDocument
    """Score bands and rules (see the example): the first matching rule decides a case's
    queue, channel and assignee; every bucket from M1 to M7+ needs a rule on the bucket
    alone."""


class CollectionsStrategyOut(BaseModel):
    version: int
    name: str
    document_hash: str
    created_on: date
    created_by: str
    document: dict[str, Any]


class CollectionsActivationIn(StrictBody):
    champion_version: int = Field(ge=1, le=VERSION_MAX)
    challenger_version: int | None = Field(default=None, ge=1, le=VERSION_MAX)
    challenger_share_bps: int = Field(default=0, ge=0, le=10_000)
    """The share of new cases the challenger takes (by a hash of the line id)."""


class CollectionsStrategiesOut(BaseModel):
    versions: list[CollectionsStrategyOut]
    activation: CollectionsActivationOut | None


class CollectionsTemplateIn(StrictBody):
    code: NameStr
    channel: Channel
    party: Party
    body: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    """Text naming only `{past_due_yuan}`, `{outstanding_yuan}`, `{days_past_due}` and
    `{bucket}` (none of them for the emergency contact)."""


class CollectionsLossesOut(LossTally): ...


class CollectionsVintageReportOut(VintageReport):
    losses: CollectionsLossesOut


# ---------------------------------------------------------------- examples

_CASE = {
    "id": 7, "credit_line_id": 42, "customer_ref": "cust-42", "status": "open",
    "opened_on": "2025-06-06", "closed_on": None, "strategy_version": 1, "arm": "champion",
    "opened_bucket": "M1", "bucket": "M2", "worst_bucket": "M2", "days_past_due": 35,
    "outstanding_fen": 480_000, "past_due_fen": 52_000, "score": 612,
    "score_band": "medium_risk", "queue": "m2-calls", "channel": "call",
    "assignee": "agent-7", "charged_off_on": None, "refreshed_on": "2025-07-10",
}  # fmt: skip
_CONTACT = {
    "credit_line_id": 42, "party": "emergency_contact", "address_masked": "139****0001",
    "registered_on": "2025-06-30", "registered_by": "k_3f9a",
}  # fmt: skip
_ATTEMPT = {
    "id": 91, "case_id": 7, "credit_line_id": 42, "party": "borrower", "channel": "sms",
    "template_id": 3, "contacted_at": "2025-07-10T02:00:00Z", "local_date": "2025-07-10",
    "outcome": "queued", "agent": "k_3f9a", "delivery": "queued", "provider_ref": None,
}  # fmt: skip
_NOTED_ATTEMPT = {**_ATTEMPT, "note": "Salary comes on the 15th."}
_PROMISE = {
    "id": 5, "case_id": 7, "credit_line_id": 42, "amount_fen": 52_000, "paid_fen": 0,
    "promised_on": "2025-07-10", "due_on": "2025-07-15", "status": "pending",
    "evaluated_on": None, "attempt_id": 91, "recorded_by": "k_3f9a",
}  # fmt: skip
_PLAN = {
    "id": 2, "case_id": 7, "credit_line_id": 42, "kind": "reaged_installments",
    "principal_fen": 480_000, "fee_fen": 0, "term_months": 12, "rate_bps": 1200,
    "effective_annual_bps": 1268, "reason_code": "job-loss", "status": "requested",
    "requested_on": "2025-07-10", "requested_by": "k_3f9a", "decided_on": None,
    "decided_by": None, "decision_reason": None,
}  # fmt: skip
_STRATEGY_DOCUMENT = {
    "name": "default",
    "score_bands": [
        {"band": "low_risk", "score_min": 650},
        {"band": "high_risk", "score_min": 0},
    ],
    "rules": [
        {"queue": "m1-reminders", "channel": "sms", "bucket_max": "M1"},
        {"queue": "m2-priority", "channel": "call", "bucket_min": "M2", "bucket_max": "M2",
         "score_bands": ["high_risk"], "assign": {"agents": ["agent-1", "agent-2"]}},
        {"queue": "m2-calls", "channel": "call", "bucket_min": "M2", "bucket_max": "M2"},
        {"queue": "m3-agency", "channel": "agency", "bucket_min": "M3",
         "assign": {"agencies": ["agency-a"]}},
    ],
}  # fmt: skip
_STRATEGY = {
    "version": 2, "name": "default", "document_hash": "sha256:" + "ab" * 32,
    "created_on": "2025-07-01", "created_by": "k_admin", "document": _STRATEGY_DOCUMENT,
}  # fmt: skip
_ACTIVATION = {
    "id": 3, "champion_version": 1, "challenger_version": 2, "challenger_share_bps": 2000,
    "activated_on": "2025-07-01", "activated_by": "k_admin",
}  # fmt: skip
_TEMPLATE = {
    "id": 3, "code": "m1-reminder", "version": 1, "channel": "sms", "party": "borrower",
    "body": "Your payment of {past_due_yuan} yuan is {days_past_due} days late.",
    "status": "approved", "created_on": "2025-06-30", "created_by": "k_app",
    "approved_on": "2025-06-30", "approved_by": "k_admin",
}  # fmt: skip
_REPORT = {
    "strategy_version": 1, "arm": "champion", "cases": 120, "open_cases": 40, "cured": 70,
    "compensated": 4, "rolled": 18, "promises_kept": 33, "promises_broken": 11,
    "cure_rate_bps": 5833, "roll_rate_bps": 1500, "promise_kept_rate_bps": 7500,
    "charged_off_fen": 2_400_000, "recovered_fen": 180_000, "sold_fen": 240_000,
    "recovery_rate_bps": 1750,
}  # fmt: skip
_VINTAGE = {
    "vintage": "2025-03", "lines": 1_000, "delinquent_lines": 120, "cases": 130, "cured": 80,
    "compensated": 6, "rolled": 20, "promises_kept": 33, "promises_broken": 11,
    "charged_off_lines": 9,
    "losses": {"charged_off_fen": 2_400_000, "recovered_fen": 180_000, "sold_fen": 240_000,
               "compensated_fen": 312_000, "guarantor_recovered_fen": 52_000},
    "cure_rate_bps": 6154, "roll_rate_bps": 1538, "promise_kept_rate_bps": 7500,
    "recovery_rate_bps": 1750, "guarantor_recovery_rate_bps": 1667,
}  # fmt: skip


# ---------------------------------------------------------------- cases and queues


@router.post(
    "/v1/collections/refresh",
    name="collections_refresh",
    response_model=CollectionsRefreshOut,
    **documented(
        200,
        {
            "as_of": "2025-07-10", "promises_kept": 3, "promises_broken": 1,
            "promises_pending": 4, "cases_opened": 12, "cases_cured": 5, "open_cases": 160,
            "activation_id": 3,
        },
        {"as_of": "2025-07-10"},
    ),
)  # fmt: skip
def post_refresh(who: AdminDep, once: OnceDep, body: CollectionsAsOfIn | None = None) -> Response:
    """Evaluate promises and bring every case up to date with end of day's delinquency:
    open cases for lines past due, cure those current again, queue and assign the rest.
    Also done automatically whenever the business date moves."""
    request = body or CollectionsAsOfIn()

    def operation(_caches: object) -> CollectionsRefreshOut:
        conn = once.session.connection()
        as_of = fetch_as_of(conn, request.as_of)
        promises = evaluate_promises(conn, as_of)
        cases = refresh_cases(conn, as_of)
        return CollectionsRefreshOut(
            as_of=as_of,
            promises_kept=promises.kept,
            promises_broken=promises.broken,
            promises_pending=promises.pending,
            cases_opened=cases.opened,
            cases_cured=cases.cured,
            open_cases=cases.open_cases,
            activation_id=cases.activation_id,
        )

    return once.run(who, request, 200, operation)


@router.get(
    "/v1/collections/queues",
    name="collections_queues_list",
    response_model=list[CollectionsQueueOut],
    **documented(200, [{"queue": "m2-calls", "channel": "call", "cases": 40,
                         "outstanding_fen": 19_200_000}]),
)  # fmt: skip
def get_queues(session: SessionDep, who: ReaderDep) -> list[CollectionsQueueOut]:
    """Open cases per queue and channel, with their outstanding balance."""
    return [from_view(CollectionsQueueOut, queue) for queue in fetch_queues(session.connection())]


@router.get(
    "/v1/collections/cases",
    name="collections_cases_list",
    response_model=list[CaseView],
    **documented(200, [_CASE]),
)
def get_cases(
    session: SessionDep,
    who: ReaderDep,
    queue: Annotated[NameStr | None, Query()] = None,
    assignee: Annotated[NameStr | None, Query()] = None,
    status: Annotated[CaseStatus | None, Query()] = CaseStatus.OPEN,
    after_id: Annotated[int, Query(ge=0, le=ID_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaseView]:
    """Cases in id order, of one queue or assignee if asked (page with `after_id`)."""
    return fetch_cases(
        session.connection(),
        queue=queue,
        assignee=assignee,
        status=status,
        after_id=after_id,
        limit=limit,
    )


@router.get(
    "/v1/collections/cases/{case_id}",
    name="collections_cases_get",
    response_model=CollectionsCaseDetailOut,
    **documented(
        200,
        {"case": _CASE, "contacts": [_CONTACT], "attempts": [_NOTED_ATTEMPT],
         "promises": [_PROMISE], "hardship_plans": [_PLAN]},
    ),
)  # fmt: skip
def get_case(
    case_id: CaseId, session: SessionDep, services: ServicesDep, who: ReaderDep
) -> CollectionsCaseDetailOut:
    """A case with its masked contacts, attempts (with notes), promises and plans."""
    conn = session.connection()
    case = fetch_case(conn, case_id)
    vault = services.onboarding.current().vault
    return CollectionsCaseDetailOut(
        case=case,
        contacts=[
            from_view(CollectionsContactOut, c) for c in fetch_contacts(conn, case.credit_line_id)
        ],
        attempts=[
            from_view(CollectionsAttemptNotedOut, a) for a in fetch_attempts(conn, vault, case_id)
        ],
        promises=[from_view(CollectionsPromiseOut, p) for p in fetch_promises(conn, case_id)],
        hardship_plans=fetch_plans(conn, case_id),
    )


# ---------------------------------------------------------------- contacts


@router.post(
    "/v1/collections/lines/{credit_line_id}/contacts",
    name="collections_contacts_register",
    status_code=201,
    response_model=CollectionsContactOut,
    **documented(201, _CONTACT, {"party": "emergency_contact", "phone": "13900000001"}),
)
def post_contact(
    credit_line_id: LineId, body: CollectionsContactIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Register (or replace) the borrower's or the emergency contact's mobile number."""

    def operation(_caches: object) -> CollectionsContactOut:
        conn = once.session.connection()
        contact = register_contact(
            conn,
            once.services.onboarding.current().vault,
            credit_line_id=credit_line_id,
            party=body.party,
            phone=body.phone,
            on=fetch_as_of(conn),
            by=who.key_id,
        )
        return from_view(CollectionsContactOut, contact)

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/collections/lines/{credit_line_id}/contacts",
    name="collections_contacts_list",
    response_model=list[CollectionsContactOut],
    **documented(200, [_CONTACT]),
)
def get_contacts(
    credit_line_id: LineId, session: SessionDep, who: ReaderDep
) -> list[CollectionsContactOut]:
    """The line's registered contacts, masked."""
    return [
        from_view(CollectionsContactOut, c)
        for c in fetch_contacts(session.connection(), credit_line_id)
    ]


# ---------------------------------------------------------------- attempts and promises


@router.post(
    "/v1/collections/cases/{case_id}/contact-attempts",
    name="collections_attempts_create",
    status_code=201,
    response_model=CollectionsAttemptOut,
    **documented(
        201,
        _ATTEMPT,
        {"party": "borrower", "channel": "sms", "template_id": 3,
         "contacted_at": "2025-07-10T10:00:00+08:00"},
    ),
)  # fmt: skip
def post_attempt(
    case_id: CaseId, body: CollectionsAttemptIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Record a contact attempt, refused (409, the rule's code) when it would break a
    conduct rule: outside contact hours, over the day's contacts, anyone but the borrower
    and the emergency contact, or a message not from an approved template. A message is
    sent to the contact provider exactly once."""
    contacted_at = body.contacted_at or datetime.now(UTC)

    def operation(_caches: object) -> CollectionsAttemptOut:
        services = once.services
        attempt = record_contact_attempt(
            once.session.connection(),
            services.onboarding.current().vault,
            load_policy(services.settings),
            AttemptRequest(
                case_id=case_id,
                party=body.party,
                channel=body.channel,
                contacted_at=contacted_at,
                agent=who.key_id,
                outcome=body.outcome,
                template_id=body.template_id,
                note=body.note,
            ),
        )
        return from_view(CollectionsAttemptOut, attempt)

    return once.run(who, body, 201, operation)


@router.post(
    "/v1/collections/cases/{case_id}/promises",
    name="collections_promises_create",
    status_code=201,
    response_model=CollectionsPromiseOut,
    **documented(201, _PROMISE, {"amount_fen": 52_000, "due_on": "2025-07-15",
                                  "attempt_id": 91}),
)  # fmt: skip
def post_promise(
    case_id: CaseId, body: CollectionsPromiseIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Record the borrower's promise to pay an amount by a date (one pending at a time)."""

    def operation(_caches: object) -> CollectionsPromiseOut:
        conn = once.session.connection()
        promise = record_promise(
            conn,
            case_id=case_id,
            amount_fen=body.amount_fen,
            due_on=body.due_on,
            promised_on=fetch_as_of(conn, body.promised_on),
            attempt_id=body.attempt_id,
            by=who.key_id,
        )
        return from_view(CollectionsPromiseOut, promise)

    return once.run(who, body, 201, operation)


@router.post(
    "/v1/collections/promises/evaluate",
    name="collections_promises_evaluate",
    response_model=CollectionsEvaluationOut,
    **documented(200, {"as_of": "2025-07-16", "kept": 3, "broken": 1, "pending": 4},
                  {"as_of": "2025-07-16"}),
)  # fmt: skip
def post_evaluation(
    who: AdminDep, once: OnceDep, body: CollectionsAsOfIn | None = None
) -> Response:
    """Decide pending promises: kept once paid, broken after their due date."""
    request = body or CollectionsAsOfIn()

    def operation(_caches: object) -> CollectionsEvaluationOut:
        conn = once.session.connection()
        summary = evaluate_promises(conn, fetch_as_of(conn, request.as_of))
        return from_view(CollectionsEvaluationOut, summary)

    return once.run(who, request, 200, operation)


# ---------------------------------------------------------------- hardship plans


@router.post(
    "/v1/collections/cases/{case_id}/hardship-plans",
    name="collections_plans_request",
    status_code=201,
    response_model=PlanView,
    **documented(
        201,
        _PLAN,
        {"kind": "reaged_installments", "term_months": 12, "rate_bps": 1200,
         "reason_code": "job-loss"},
    ),
)  # fmt: skip
def post_plan(
    case_id: CaseId, body: CollectionsPlanIn, who: OperatorDep, once: OnceDep
) -> Response:
    """Request a payment holiday or a re-aged installment plan, to be approved by a lender
    administrator; refused above the line's plan limit or the cost cap."""

    def operation(_caches: object) -> PlanView:
        conn = once.session.connection()
        plan = request_plan(
            conn,
            load_policy(once.services.settings),
            PlanRequest(
                case_id=case_id,
                kind=body.kind,
                term_months=body.term_months,
                rate_bps=body.rate_bps,
                fee_fen=body.fee_fen,
                reason_code=body.reason_code,
                requested_on=fetch_as_of(conn),
                by=who.key_id,
                principal_fen=body.principal_fen,
            ),
        )
        return plan

    return once.run(who, body, 201, operation)


@router.post(
    "/v1/collections/hardship-plans/{plan_id}/decision",
    name="collections_plans_decide",
    response_model=PlanView,
    **documented(
        200,
        {**_PLAN, "status": "approved", "decided_on": "2025-07-11", "decided_by": "k_admin",
         "decision_reason": "documents-ok"},
        {"approve": True, "reason": "documents-ok"},
    ),
)  # fmt: skip
def post_decision(
    plan_id: PlanId, body: CollectionsDecisionIn, who: AdminDep, once: OnceDep
) -> Response:
    """Approve or reject a requested plan (not by whoever requested it)."""

    def operation(_caches: object) -> PlanView:
        conn = once.session.connection()
        plan = decide_plan(
            conn,
            load_policy(once.services.settings),
            plan_id,
            approve=body.approve,
            reason=body.reason,
            on=fetch_as_of(conn),
            by=who.key_id,
        )
        return plan

    return once.run(who, body, 200, operation)


# ---------------------------------------------------------------- strategies


@router.post(
    "/v1/collections/strategies",
    name="collections_strategies_create",
    status_code=201,
    response_model=CollectionsStrategyOut,
    **documented(201, _STRATEGY, {"document": _STRATEGY_DOCUMENT}),
)
def post_strategy(body: CollectionsStrategyIn, who: AdminDep, once: OnceDep) -> Response:
    """Store a strategy document as the next version (it applies once activated)."""

    def operation(_caches: object) -> CollectionsStrategyOut:
        conn = once.session.connection()
        version = create_strategy_version(conn, body.document, on=fetch_as_of(conn), by=who.key_id)
        return _strategy_out(version)

    return once.run(who, body, 201, operation)


def _strategy_out(version: StrategyVersion) -> CollectionsStrategyOut:
    return CollectionsStrategyOut(
        version=version.version,
        name=version.name,
        document_hash=version.document_hash,
        created_on=version.created_on,
        created_by=version.created_by,
        document=version.document.model_dump(mode="json"),
    )


@router.post(
    "/v1/collections/strategies/activations",
    name="collections_strategies_activate",
    status_code=201,
    response_model=CollectionsActivationOut,
    **documented(
        201,
        _ACTIVATION,
        {"champion_version": 1, "challenger_version": 2, "challenger_share_bps": 2000},
    ),
)
def post_activation(body: CollectionsActivationIn, who: AdminDep, once: OnceDep) -> Response:
    """Put a champion (and optionally a challenger with its share) in force for new cases;
    open cases keep the version and arm they were opened under."""

    def operation(_caches: object) -> CollectionsActivationOut:
        conn = once.session.connection()
        activation = activate(
            conn,
            champion_version=body.champion_version,
            challenger_version=body.challenger_version,
            challenger_share_bps=body.challenger_share_bps,
            on=fetch_as_of(conn),
            by=who.key_id,
        )
        return from_view(CollectionsActivationOut, activation)

    return once.run(who, body, 201, operation)


@router.get(
    "/v1/collections/strategies",
    name="collections_strategies_list",
    response_model=CollectionsStrategiesOut,
    **documented(200, {"versions": [_STRATEGY], "activation": _ACTIVATION}),
)
def get_strategies(session: SessionDep, who: ReaderDep) -> CollectionsStrategiesOut:
    """Every strategy version and the activation in force."""
    conn = session.connection()
    activation = fetch_activation(conn)
    return CollectionsStrategiesOut(
        versions=[_strategy_out(version) for version in fetch_strategy_versions(conn)],
        activation=None if activation is None else from_view(CollectionsActivationOut, activation),
    )


# ---------------------------------------------------------------- templates


@router.post(
    "/v1/collections/templates",
    name="collections_templates_create",
    status_code=201,
    response_model=CollectionsTemplateOut,
    **documented(
        201,
        {**_TEMPLATE, "status": "draft", "approved_on": None, "approved_by": None},
        {"code": "m1-reminder", "channel": "sms", "party": "borrower",
         "body": _TEMPLATE["body"]},
    ),
)  # fmt: skip
def post_template(body: CollectionsTemplateIn, who: OperatorDep, once: OnceDep) -> Response:
    """Write a new draft version of a message template."""

    def operation(_caches: object) -> CollectionsTemplateOut:
        conn = once.session.connection()
        template = create_template(
            conn,
            code=body.code,
            channel=body.channel,
            party=body.party,
            body=body.body,
            on=fetch_as_of(conn),
            by=who.key_id,
        )
        return from_view(CollectionsTemplateOut, template)

    return once.run(who, body, 201, operation)


@router.post(
    "/v1/collections/templates/{template_id}/approve",
    name="collections_templates_approve",
    response_model=CollectionsTemplateOut,
    **documented(200, _TEMPLATE),
)
def post_template_approval(template_id: TemplateId, who: AdminDep, once: OnceDep) -> Response:
    """Approve a draft template for sending (not by its author)."""

    def operation(_caches: object) -> CollectionsTemplateOut:
        conn = once.session.connection()
        template = approve_template(conn, template_id, on=fetch_as_of(conn), by=who.key_id)
        return from_view(CollectionsTemplateOut, template)

    return once.run(who, None, 200, operation)


@router.get(
    "/v1/collections/templates",
    name="collections_templates_list",
    response_model=list[CollectionsTemplateOut],
    **documented(200, [_TEMPLATE]),
)
def get_templates(session: SessionDep, who: ReaderDep) -> list[CollectionsTemplateOut]:
    """Every template version, newest first."""
    return [from_view(CollectionsTemplateOut, t) for t in fetch_templates(session.connection())]


# ---------------------------------------------------------------- reports


@router.get(
    "/v1/collections/reports/strategies",
    name="collections_reports_strategies",
    response_model=list[CollectionsArmReportOut],
    **documented(200, [_REPORT]),
)
def get_strategy_reports(session: SessionDep, who: ReaderDep) -> list[CollectionsArmReportOut]:
    """Cure, roll and promise-kept rates of each strategy version and arm."""
    return [
        from_view(CollectionsArmReportOut, report)
        for report in fetch_arm_reports(session.connection())
    ]


@router.get(
    "/v1/collections/reports/vintages",
    name="collections_reports_vintages",
    response_model=list[CollectionsVintageReportOut],
    **documented(200, [_VINTAGE]),
)
def get_vintage_reports(session: SessionDep, who: ReaderDep) -> list[CollectionsVintageReportOut]:
    """Per month of opening: cure, roll and promise-kept rates, charge-offs, guarantor
    compensations, and the recovery rates after them."""
    return [
        from_view(CollectionsVintageReportOut, report)
        for report in fetch_vintage_reports(session.connection())
    ]


@router.get(
    "/v1/collections/reports/roll-rates",
    name="collections_reports_roll_rates",
    response_model=list[CollectionsRollRateOut],
    **documented(200, [{"from_bucket": "M1", "to_bucket": "M2", "reached": 120,
                         "rolled": 30, "roll_rate_bps": 2500}]),
)  # fmt: skip
def get_roll_rates(session: SessionDep, who: ReaderDep) -> list[CollectionsRollRateOut]:
    """Bucket-to-bucket roll rates (M1 to M2 ... M6 to M7+) over every case."""
    return [
        from_view(CollectionsRollRateOut, rate) for rate in fetch_roll_rates(session.connection())
    ]
