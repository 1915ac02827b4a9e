// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Multicall} from "@openzeppelin/contracts/utils/Multicall.sol";

/// @title LotLedger
/// @notice The authoritative record of food lots: who made each lot, who holds it, its status, the lots it was
/// made from, and a head hash that commits to the ordered list of its events. Payloads (the key data elements)
/// live off chain; only their keccak256 hashes are recorded here.
/// @dev Every state change appends one event to the lot's history:
///   head_n = keccak256(abi.encode(head_{n-1}, kind, actor, dataHash)), head_0 = 0.
/// The head commits to order, so a reordered, shortened or edited off-chain history fails verification.
/// `Multicall` lets one organisation batch several calls (a split into many lots, an EPCIS document) in one
/// transaction; each call still runs every check below with the same msg.sender.
contract LotLedger is AccessControl, Multicall {
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR_ROLE");
    bytes32 public constant INSPECTOR_ROLE = keccak256("INSPECTOR_ROLE");
    bytes32 public constant PRODUCER_ROLE = keccak256("PRODUCER_ROLE");
    bytes32 public constant PROCESSOR_ROLE = keccak256("PROCESSOR_ROLE");
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");
    bytes32 public constant RETAILER_ROLE = keccak256("RETAILER_ROLE");

    /// @notice Event kinds; the numbers enter the head hash, so they never change.
    uint8 public constant KIND_HARVESTING = 1;
    uint8 public constant KIND_COOLING = 2;
    uint8 public constant KIND_INITIAL_PACKING = 3;
    uint8 public constant KIND_FIRST_LAND_BASED_RECEIVING = 4;
    uint8 public constant KIND_SHIPPING = 5;
    uint8 public constant KIND_RECEIVING = 6;
    uint8 public constant KIND_TRANSFORMATION = 7;
    uint8 public constant KIND_INSPECTION = 8;
    uint8 public constant KIND_HOLD = 9;
    uint8 public constant KIND_RELEASE = 10;
    uint8 public constant KIND_RECALL = 11;
    uint8 public constant KIND_SENSOR_ANCHOR = 12;
    uint8 public constant KIND_CLOSE = 13;
    uint8 public constant KIND_CUSTODY_REJECTED = 14;
    uint8 public constant KIND_CUSTODY_CANCELLED = 15;
    uint8 public constant KIND_OBSERVATION = 16;

    enum Status {
        None,
        Active,
        InTransit,
        Held,
        Recalled,
        Closed
    }

    enum Outcome {
        Pass,
        Fail,
        Conditional
    }

    struct Lot {
        address creator;
        address custodian;
        address pendingCustodian;
        Status status;
        uint64 eventCount;
        bytes32 head;
        bytes32[] inputs;
    }

    mapping(bytes32 lotId => Lot) private _lots;
    mapping(bytes32 lotId => bytes32[]) private _outputs;

    // ---------------------------------------------------------------- errors

    error LotIdZero();
    error LotAlreadyExists(bytes32 lotId);
    error LotNotFound(bytes32 lotId);
    error LotNotCustodian(bytes32 lotId, address caller);
    error LotInTransit(bytes32 lotId);
    error LotNotInTransit(bytes32 lotId);
    error LotNotHeld(bytes32 lotId);
    error LotUnavailable(bytes32 lotId, Status status);
    error NotPendingCustodian(bytes32 lotId, address caller);
    error RecipientCannotReceive(bytes32 lotId, address recipient);
    error InputUnavailable(bytes32 inputId, Status status);
    error DuplicateInput(bytes32 inputId);
    error EventKindNotAllowed(uint8 kind);
    error AccountLacksRoles(address account, bytes32[] anyOf);
    error NotAuthorizedToRecall(bytes32 lotId, address caller);
    error LengthMismatch(uint256 kinds, uint256 dataHashes);
    error EmptyBatch();

    // ---------------------------------------------------------------- events

    /// @notice Emitted for every appended event; the indexer rebuilds a lot's history from these alone.
    event LotEventRecorded(
        bytes32 indexed lotId,
        address indexed actor,
        uint8 indexed kind,
        uint64 seq,
        bytes32 dataHash,
        bytes32 head
    );
    event LotCreated(bytes32 indexed lotId, address indexed creator, bytes32[] inputs);
    event CustodyOffered(bytes32 indexed lotId, address indexed from, address indexed to);
    event CustodyAccepted(bytes32 indexed lotId, address indexed from, address indexed to);
    event CustodyRejected(bytes32 indexed lotId, address indexed from, address indexed by);
    event CustodyCancelled(bytes32 indexed lotId, address indexed from, address indexed to);
    event LotInspected(bytes32 indexed lotId, address indexed inspector, Outcome outcome);
    event LotHeld(bytes32 indexed lotId, address indexed by);
    event LotReleased(bytes32 indexed lotId, address indexed by);
    event LotRecalled(bytes32 indexed lotId, address indexed by);
    event LotClosed(bytes32 indexed lotId, address indexed by);
    event ReadingsAnchored(bytes32 indexed lotId, address indexed by, bytes32 merkleRoot, uint32 count);

    /// @param admin The account that grants and revokes every role.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- lots

    /// @notice Creates a lot. With `inputs` it is a transformation: the new lot is made from those lots.
    /// @dev Requirements: caller holds PRODUCER_ROLE or PROCESSOR_ROLE; the lot id is new and not zero;
    /// `kind` is harvesting, initial packing or first land-based receiving without inputs, transformation with
    /// inputs; the caller holds every input, and no input is recalled, held, closed or in transit.
    /// Emits {LotCreated} and {LotEventRecorded}.
    function createLot(bytes32 lotId, bytes32[] calldata inputs, uint8 kind, bytes32 dataHash) external {
        _requireAnyRole(msg.sender, PRODUCER_ROLE, PROCESSOR_ROLE);
        if (lotId == bytes32(0)) revert LotIdZero();
        if (_lots[lotId].status != Status.None) revert LotAlreadyExists(lotId);
        if (inputs.length == 0) {
            if (kind != KIND_HARVESTING && kind != KIND_INITIAL_PACKING && kind != KIND_FIRST_LAND_BASED_RECEIVING) {
                revert EventKindNotAllowed(kind);
            }
        } else if (kind != KIND_TRANSFORMATION) {
            revert EventKindNotAllowed(kind);
        }
        for (uint256 i = 0; i < inputs.length; i++) {
            bytes32 inputId = inputs[i];
            Lot storage input = _existing(inputId);
            if (input.custodian != msg.sender) revert LotNotCustodian(inputId, msg.sender);
            if (input.status != Status.Active) revert InputUnavailable(inputId, input.status);
            for (uint256 j = 0; j < i; j++) {
                if (inputs[j] == inputId) revert DuplicateInput(inputId);
            }
            _outputs[inputId].push(lotId);
        }
        Lot storage lot = _lots[lotId];
        lot.creator = msg.sender;
        lot.custodian = msg.sender;
        lot.status = Status.Active;
        lot.inputs = inputs;
        emit LotCreated(lotId, msg.sender, inputs);
        _append(lotId, lot, kind, dataHash);
    }

    /// @notice Records one event (cooling, packing, an observation, ...) by the lot's custodian.
    /// @dev Requirements: caller is the custodian and still holds a handling role; the lot is active or held
    /// (not in transit, recalled or closed); `kind` is one the custodian may record directly.
    /// Emits {LotEventRecorded}.
    function recordEvent(bytes32 lotId, uint8 kind, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId);
        _requireFreeKind(kind);
        _append(lotId, lot, kind, dataHash);
    }

    /// @notice Records many events on one lot in one transaction, in the given order.
    /// @dev Same requirements as {recordEvent} for each event; the arrays have equal, non-zero length.
    /// Emits one {LotEventRecorded} per event.
    function recordEvents(bytes32 lotId, uint8[] calldata kinds, bytes32[] calldata dataHashes) external {
        if (kinds.length != dataHashes.length) revert LengthMismatch(kinds.length, dataHashes.length);
        if (kinds.length == 0) revert EmptyBatch();
        Lot storage lot = _custodianLot(lotId);
        for (uint256 i = 0; i < kinds.length; i++) {
            _requireFreeKind(kinds[i]);
            _append(lotId, lot, kinds[i], dataHashes[i]);
        }
    }

    // ---------------------------------------------------------------- custody

    /// @notice Offers the lot to another organisation (the shipping event). The lot is in transit until the
    /// recipient accepts or rejects, or the offer is cancelled; meanwhile the old custodian records nothing else.
    /// @dev Requirements: caller is the custodian; the lot is active; `to` is not the caller and holds
    /// PROCESSOR_ROLE, DISTRIBUTOR_ROLE or RETAILER_ROLE. Emits {CustodyOffered} and {LotEventRecorded}.
    function offerCustody(bytes32 lotId, address to, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId);
        if (lot.status != Status.Active) revert LotUnavailable(lotId, lot.status);
        if (
            to == msg.sender
                || !(hasRole(PROCESSOR_ROLE, to) || hasRole(DISTRIBUTOR_ROLE, to) || hasRole(RETAILER_ROLE, to))
        ) revert RecipientCannotReceive(lotId, to);
        lot.pendingCustodian = to;
        lot.status = Status.InTransit;
        emit CustodyOffered(lotId, msg.sender, to);
        _append(lotId, lot, KIND_SHIPPING, dataHash);
    }

    /// @notice Accepts an offered lot (the receiving event); the caller becomes its custodian.
    /// @dev Requirements: the lot is in transit and the caller is its pending custodian, still holding a
    /// handling role. Emits {CustodyAccepted} and {LotEventRecorded}.
    function acceptCustody(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _pendingLot(lotId);
        _requireHandler(msg.sender);
        address from = lot.custodian;
        lot.custodian = msg.sender;
        lot.pendingCustodian = address(0);
        lot.status = Status.Active;
        emit CustodyAccepted(lotId, from, msg.sender);
        _append(lotId, lot, KIND_RECEIVING, dataHash);
    }

    /// @notice Refuses an offered lot; it stays with the offerer.
    /// @dev Requirements: the lot is in transit and the caller is its pending custodian.
    /// Emits {CustodyRejected} and {LotEventRecorded}.
    function rejectCustody(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _pendingLot(lotId);
        lot.pendingCustodian = address(0);
        lot.status = Status.Active;
        emit CustodyRejected(lotId, lot.custodian, msg.sender);
        _append(lotId, lot, KIND_CUSTODY_REJECTED, dataHash);
    }

    /// @notice Withdraws a pending offer.
    /// @dev Requirements: caller is the custodian, still holding a handling role; the lot is in transit.
    /// Emits {CustodyCancelled} and
    /// {LotEventRecorded}.
    function cancelCustodyOffer(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        if (lot.custodian != msg.sender) revert LotNotCustodian(lotId, msg.sender);
        _requireHandler(msg.sender);
        if (lot.status != Status.InTransit) revert LotNotInTransit(lotId);
        address to = lot.pendingCustodian;
        lot.pendingCustodian = address(0);
        lot.status = Status.Active;
        emit CustodyCancelled(lotId, msg.sender, to);
        _append(lotId, lot, KIND_CUSTODY_CANCELLED, dataHash);
    }

    // ---------------------------------------------------------------- inspections and holds

    /// @notice Records an inspection or lab result. A fail puts the lot on hold.
    /// @dev Requirements: caller holds INSPECTOR_ROLE; the lot is active or held.
    /// Emits {LotInspected}, {LotEventRecorded}, and {LotHeld} on a fail of an active lot.
    function inspect(bytes32 lotId, Outcome outcome, bytes32 dataHash) external onlyRole(INSPECTOR_ROLE) {
        Lot storage lot = _existing(lotId);
        if (lot.status != Status.Active && lot.status != Status.Held) revert LotUnavailable(lotId, lot.status);
        emit LotInspected(lotId, msg.sender, outcome);
        _append(lotId, lot, KIND_INSPECTION, dataHash);
        if (outcome == Outcome.Fail && lot.status == Status.Active) {
            lot.status = Status.Held;
            emit LotHeld(lotId, msg.sender);
        }
    }

    /// @notice Places a lot on hold: it can be neither shipped nor used as an input until released.
    /// @dev Requirements: caller holds INSPECTOR_ROLE or REGULATOR_ROLE; the lot is active.
    /// Emits {LotHeld} and {LotEventRecorded}.
    function hold(bytes32 lotId, bytes32 dataHash) external {
        _requireAnyRole(msg.sender, INSPECTOR_ROLE, REGULATOR_ROLE);
        Lot storage lot = _existing(lotId);
        if (lot.status != Status.Active) revert LotUnavailable(lotId, lot.status);
        lot.status = Status.Held;
        emit LotHeld(lotId, msg.sender);
        _append(lotId, lot, KIND_HOLD, dataHash);
    }

    /// @notice Lifts a hold.
    /// @dev Requirements: caller holds INSPECTOR_ROLE; the lot is held. Emits {LotReleased} and {LotEventRecorded}.
    function release(bytes32 lotId, bytes32 dataHash) external onlyRole(INSPECTOR_ROLE) {
        Lot storage lot = _existing(lotId);
        if (lot.status != Status.Held) revert LotNotHeld(lotId);
        lot.status = Status.Active;
        emit LotReleased(lotId, msg.sender);
        _append(lotId, lot, KIND_RELEASE, dataHash);
    }

    // ---------------------------------------------------------------- recall, close, sensors

    /// @notice Recalls a lot. Lots made from it are affected too; readers derive that from the lineage, so a lot
    /// made later from a recalled input is still found (and no new lot can be made from a recalled one).
    /// @dev Requirements: caller holds REGULATOR_ROLE or INSPECTOR_ROLE, or created the lot; the lot exists and
    /// is not already recalled. A closed lot can be recalled: its product may still be in people's homes.
    /// A pending custody offer is dropped. Emits {LotRecalled} and {LotEventRecorded}.
    function recall(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        if (!hasRole(REGULATOR_ROLE, msg.sender) && !hasRole(INSPECTOR_ROLE, msg.sender) && lot.creator != msg.sender) {
            revert NotAuthorizedToRecall(lotId, msg.sender);
        }
        if (lot.status == Status.Recalled) revert LotUnavailable(lotId, lot.status);
        lot.status = Status.Recalled;
        lot.pendingCustodian = address(0);
        emit LotRecalled(lotId, msg.sender);
        _append(lotId, lot, KIND_RECALL, dataHash);
    }

    /// @notice Closes a lot (sold out, consumed, destroyed); no further events except a recall.
    /// @dev Requirements: caller is the custodian, still holding a handling role; the lot is active or held.
    /// Emits {LotClosed} and
    /// {LotEventRecorded}.
    function close(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        if (lot.custodian != msg.sender) revert LotNotCustodian(lotId, msg.sender);
        _requireHandler(msg.sender);
        if (lot.status != Status.Active && lot.status != Status.Held) revert LotUnavailable(lotId, lot.status);
        lot.status = Status.Closed;
        emit LotClosed(lotId, msg.sender);
        _append(lotId, lot, KIND_CLOSE, dataHash);
    }

    /// @notice Anchors the Merkle root of a batch of sensor readings (cold chain) taken on a lot.
    /// @dev Requirements: caller is the custodian or, while the lot is in transit, its pending custodian (the
    /// carrier), still holding a handling role; the lot is active, held or in transit. Emits {ReadingsAnchored} and {LotEventRecorded}.
    function anchorReadings(bytes32 lotId, bytes32 merkleRoot, uint32 count, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        if (lot.custodian != msg.sender && lot.pendingCustodian != msg.sender) {
            revert LotNotCustodian(lotId, msg.sender);
        }
        _requireHandler(msg.sender);
        if (lot.status != Status.Active && lot.status != Status.Held && lot.status != Status.InTransit) {
            revert LotUnavailable(lotId, lot.status);
        }
        if (count == 0) revert EmptyBatch();
        emit ReadingsAnchored(lotId, msg.sender, merkleRoot, count);
        _append(lotId, lot, KIND_SENSOR_ANCHOR, dataHash);
    }

    // ---------------------------------------------------------------- views

    /// @notice Everything the chain knows about a lot. `status` is `None` for an unknown lot.
    function getLot(bytes32 lotId)
        external
        view
        returns (
            address creator,
            address custodian,
            address pendingCustodian,
            Status status,
            uint64 eventCount,
            bytes32 head,
            bytes32[] memory inputs
        )
    {
        Lot storage lot = _lots[lotId];
        return (lot.creator, lot.custodian, lot.pendingCustodian, lot.status, lot.eventCount, lot.head, lot.inputs);
    }

    /// @notice The lots made (directly) from `lotId`.
    function lotOutputs(bytes32 lotId) external view returns (bytes32[] memory) {
        return _outputs[lotId];
    }

    /// @notice A lot's id from its label: keccak256(abi.encodePacked(gtin14, lotCode)).
    function computeLotId(string calldata gtin14, string calldata lotCode) external pure returns (bytes32) {
        return keccak256(abi.encodePacked(gtin14, lotCode));
    }

    // ---------------------------------------------------------------- internals

    function _append(bytes32 lotId, Lot storage lot, uint8 kind, bytes32 dataHash) private {
        bytes32 head = keccak256(abi.encode(lot.head, kind, msg.sender, dataHash));
        uint64 seq = lot.eventCount + 1;
        lot.head = head;
        lot.eventCount = seq;
        emit LotEventRecorded(lotId, msg.sender, kind, seq, dataHash, head);
    }

    function _existing(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _lots[lotId];
        if (lot.status == Status.None) revert LotNotFound(lotId);
    }

    /// @dev The custodian's own lot, usable for ordinary events: not in transit, recalled or closed. A held lot
    /// can still get events (storage, observations): a hold stops movement, not record keeping.
    function _custodianLot(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _existing(lotId);
        if (lot.custodian != msg.sender) revert LotNotCustodian(lotId, msg.sender);
        _requireHandler(msg.sender);
        if (lot.status == Status.InTransit) revert LotInTransit(lotId);
        if (lot.status != Status.Active && lot.status != Status.Held) revert LotUnavailable(lotId, lot.status);
    }

    function _pendingLot(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _existing(lotId);
        if (lot.status != Status.InTransit) revert LotNotInTransit(lotId);
        if (lot.pendingCustodian != msg.sender) revert NotPendingCustodian(lotId, msg.sender);
    }

    function _requireFreeKind(uint8 kind) private pure {
        if (
            kind != KIND_HARVESTING && kind != KIND_COOLING && kind != KIND_INITIAL_PACKING
                && kind != KIND_FIRST_LAND_BASED_RECEIVING && kind != KIND_OBSERVATION
        ) revert EventKindNotAllowed(kind);
    }

    function _requireAnyRole(address account, bytes32 a, bytes32 b) private view {
        if (!hasRole(a, account) && !hasRole(b, account)) {
            bytes32[] memory anyOf = new bytes32[](2);
            anyOf[0] = a;
            anyOf[1] = b;
            revert AccountLacksRoles(account, anyOf);
        }
    }

    /// @dev A custodian whose handling roles were all revoked can no longer add to a lot's history.
    function _requireHandler(address account) private view {
        if (
            !hasRole(PRODUCER_ROLE, account) && !hasRole(PROCESSOR_ROLE, account)
                && !hasRole(DISTRIBUTOR_ROLE, account) && !hasRole(RETAILER_ROLE, account)
        ) {
            bytes32[] memory anyOf = new bytes32[](4);
            anyOf[0] = PRODUCER_ROLE;
            anyOf[1] = PROCESSOR_ROLE;
            anyOf[2] = DISTRIBUTOR_ROLE;
            anyOf[3] = RETAILER_ROLE;
            revert AccountLacksRoles(account, anyOf);
        }
    }
}
