// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClearingHouse} from "../../../contracts/ClearingHouse.sol";
import {OracleQuorum} from "../../../contracts/OracleQuorum.sol";
import {SettlementToken} from "../../../contracts/SettlementToken.sol";
import {NetworkTimelock} from "../../../contracts/governance/NetworkTimelock.sol";

import {Signing} from "./Signing.sol";
import {TestBase} from "./TestBase.sol";

/// @title NetworkFixture
/// @notice Deploys the network the way a production deployment leaves it: NetworkTimelock
/// holds DEFAULT_ADMIN_ROLE and PAUSER_ROLE on OracleQuorum and ClearingHouse, the deployer
/// (this test contract) has renounced its admin role on both, the relayer may register
/// partners, and the ClearingHouse may consume quorum reports. The timelock has one proposer,
/// one canceller-only account (a funding partner) and lets anyone execute. Five partners are
/// registered, each with a payout address that holds tokens and has approved the ClearingHouse.
abstract contract NetworkFixture is TestBase {
    uint256 internal constant MIN_DELAY = 1 hours;
    uint64 internal constant DISPUTE_WINDOW = 1 days;
    uint64 internal constant FUNDING_WINDOW = 2 days;
    uint256 internal constant START_TIME = 1_750_000_000;
    uint256 internal constant SIGNER_POOL_SIZE = 6;
    uint256 internal constant INITIAL_SIGNERS = 3;
    uint256 internal constant INITIAL_THRESHOLD = 2;
    /// @dev Each payer's starting balance: covers thousands of fundings of the largest position.
    uint256 internal constant PAYER_BALANCE = 2 ** 120;

    NetworkTimelock internal timelock;
    OracleQuorum internal quorum;
    SettlementToken internal token;
    ClearingHouse internal house;

    address internal proposer;
    /// @dev A funding partner's account on the timelock: may cancel, may not schedule.
    address internal canceller;
    address internal relayer;
    /// @dev A third party that pays for debtors (anyone may `fund`).
    address internal benefactor;
    uint256[] internal signerPool;
    uint32[] internal partnerIds;
    address[] internal payouts;

    uint256 private _timelockSalt;

    function _deployNetwork() internal {
        vm.warp(START_TIME);
        proposer = vm.addr(uint256(keccak256("creditnet.timelock.proposer")));
        canceller = vm.addr(uint256(keccak256("creditnet.timelock.canceller")));
        relayer = vm.addr(uint256(keccak256("creditnet.relayer")));
        benefactor = vm.addr(uint256(keccak256("creditnet.benefactor")));
        vm.label(proposer, "proposer");
        vm.label(canceller, "canceller");
        vm.label(relayer, "relayer");
        vm.label(benefactor, "benefactor");
        for (uint256 i = 0; i < SIGNER_POOL_SIZE; ++i) {
            signerPool.push(uint256(keccak256(abi.encodePacked("creditnet.signer.", i))));
        }
        address[] memory initialSigners = new address[](INITIAL_SIGNERS);
        for (uint256 i = 0; i < INITIAL_SIGNERS; ++i) {
            initialSigners[i] = vm.addr(signerPool[i]);
        }

        address[] memory proposers = new address[](1);
        proposers[0] = proposer;
        address[] memory executors = new address[](1); // address(0): anyone executes
        address[] memory cancellers = new address[](1);
        cancellers[0] = canceller;
        timelock = new NetworkTimelock(MIN_DELAY, proposers, executors, cancellers);
        quorum = new OracleQuorum(address(this), initialSigners, INITIAL_THRESHOLD);
        token = new SettlementToken(address(this));
        house = new ClearingHouse(
            address(this), address(quorum), address(token), DISPUTE_WINDOW, FUNDING_WINDOW
        );
        vm.label(address(timelock), "NetworkTimelock");
        vm.label(address(quorum), "OracleQuorum");
        vm.label(address(token), "SettlementToken");
        vm.label(address(house), "ClearingHouse");

        quorum.grantRole(quorum.CONSUMER_ROLE(), address(house));
        house.grantRole(house.RELAYER_ROLE(), relayer);
        quorum.grantRole(quorum.DEFAULT_ADMIN_ROLE(), address(timelock));
        quorum.grantRole(quorum.PAUSER_ROLE(), address(timelock));
        house.grantRole(house.DEFAULT_ADMIN_ROLE(), address(timelock));
        house.grantRole(house.PAUSER_ROLE(), address(timelock));
        quorum.renounceRole(quorum.DEFAULT_ADMIN_ROLE(), address(this));
        house.renounceRole(house.DEFAULT_ADMIN_ROLE(), address(this));

        // Ids include 0 (accepted first in line) and gaps.
        uint32[5] memory ids = [uint32(0), 1, 2, 7, 42];
        for (uint256 i = 0; i < ids.length; ++i) {
            address payout =
                vm.addr(uint256(keccak256(abi.encodePacked("creditnet.payout.", ids[i]))));
            vm.label(payout, string.concat("payout-", _decimal(ids[i])));
            partnerIds.push(ids[i]);
            payouts.push(payout);
            vm.prank(relayer);
            house.registerPartner(ids[i], uint8(i % 4), payout);
            _fundAccount(payout);
        }
        _fundAccount(benefactor);
    }

    function _fundAccount(address account) private {
        token.mint(account, PAYER_BALANCE);
        vm.prank(account);
        token.approve(address(house), type(uint256).max);
    }

    /// @dev Proposes a cycle signed by the initial quorum (its first INITIAL_THRESHOLD keys);
    /// reverts with the ClearingHouse's error if it is refused.
    function _propose(uint64 cycleId, uint32[] memory ids, int256[] memory nets) internal {
        bytes32 root = keccak256(abi.encode("entries", cycleId));
        bytes32 digest = house.cycleReportDigest(cycleId, root, 3, ids, nets);
        uint256[] memory keys = new uint256[](INITIAL_THRESHOLD);
        for (uint256 i = 0; i < INITIAL_THRESHOLD; ++i) {
            keys[i] = signerPool[i];
        }
        house.proposeCycle(cycleId, root, 3, ids, nets, Signing.signSorted(digest, keys));
    }

    /// @dev The proposer schedules `target.call(data)` on the timelock, time moves by the
    /// minimum delay, and anyone executes it. Reverts with the target's error if it fails.
    function _throughTimelock(address target, bytes memory data) internal {
        bytes32 salt = bytes32(++_timelockSalt);
        vm.prank(proposer);
        timelock.schedule(target, 0, data, bytes32(0), salt, MIN_DELAY);
        vm.warp(block.timestamp + MIN_DELAY);
        timelock.execute(target, 0, data, bytes32(0), salt);
    }

    function _decimal(uint256 value) internal pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) {
            ++digits;
        }
        bytes memory out = new bytes(digits);
        for (; value != 0; value /= 10) {
            out[--digits] = bytes1(uint8(48 + (value % 10)));
        }
        return string(out);
    }
}
