"""`GET /v1/contracts`: the chain, the deployed contracts with their ABIs, the Merkle leaf
encodings and the on-chain codes, for any key holder (partners and auditors verify with
them). Nothing secret: no keys, no RPC address."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from node_api.auth.keys import Principal, Role
from node_api.http.authz import requires
from node_api.http.published_contracts import ContractsOut, build_contracts
from node_api.http.schemas import PROBLEMS
from node_api.http.services import ServicesDep

router = APIRouter(tags=["contracts"])

AnyRoleDep = Annotated[Principal, Depends(requires(frozenset(Role)))]


@router.get("/v1/contracts", response_model=ContractsOut, responses=PROBLEMS, name="contracts_get")
async def get_contracts(services: ServicesDep, who: AnyRoleDep) -> ContractsOut:
    """The deployed contracts, their ABIs, the leaf encodings and the on-chain codes.

    Chain id, contract addresses and deployment blocks, ABIs, how settlement and
    line-state leaves are encoded, and the codes of entry kinds, statuses and roles:
    what a partner or an auditor needs to check the chain with their own tools."""
    return await run_in_threadpool(build_contracts, services.chain)
