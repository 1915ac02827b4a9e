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
    uint8 public constant KIND_RECALL_ENDED = 17;

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
    /// @dev For a recalled lot, the lot its recall started from (itself for a direct recall).
    mapping(bytes32 lotId => bytes32 sourceId) private _recallSource;
    /// @dev Directly recalled lots whose recall has been ended (terminated); they stay recalled.
    mapping(bytes32 lotId => bool ended) private _recallEnded;
    /// @dev GS1 company prefixes (or single GTINs, as 13 digits) and the account that owns the GTINs under them.
    mapping(bytes32 prefixHash => address owner) private _prefixOwner;

    // ---------------------------------------------------------------- errors

    error LotAlreadyExists(bytes32 lotId);
    error LotNotFound(bytes32 lotId);
    error LotNotCustodian(bytes32 lotId, address caller);
    error LotInTransit(bytes32 lotId);
    error LotNotInTransit(bytes32 lotId);
    error LotNotHeld(bytes32 lotId);
    error LotUnavailable(bytes32 lotId, Status status);
    error LotNotRecalled(bytes32 lotId);
    error RecallAlreadyEnded(bytes32 lotId);
    error NotPendingCustodian(bytes32 lotId, address caller);
    error RecipientCannotReceive(bytes32 lotId, address recipient);
    error InputUnavailable(bytes32 inputId, Status status);
    error DuplicateInput(bytes32 inputId);
    error NotDerivedFromRecall(bytes32 lotId, bytes32 sourceId);
    error EventKindNotAllowed(uint8 kind);
    error AccountLacksRoles(address account, bytes32[] anyOf);
    error NotAuthorizedToRecall(bytes32 lotId, address caller);
    error GtinNotOwned(string gtin14, address caller);
    error InvalidGtin(string gtin14);
    error InvalidLotCode(string lotCode);
    error InvalidPrefix(string prefix);
    error PrefixTaken(string prefix, address owner);
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
    /// @notice `sourceId` is the lot the recall started from: the lot itself, or an ancestor it was made from.
    event LotRecalled(bytes32 indexed lotId, address indexed by, bytes32 indexed sourceId);
    /// @notice The recall issued on `lotId` is ended: the recall action is complete. The lot stays recalled.
    event RecallEnded(bytes32 indexed lotId, address indexed by);
    event LotClosed(bytes32 indexed lotId, address indexed by);
    event ReadingsAnchored(bytes32 indexed lotId, address indexed by, bytes32 merkleRoot, uint32 count);
    event CompanyPrefixRegistered(string prefix, address indexed owner);

    /// @param admin The account that grants and revokes every role and registers company prefixes.
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- identifiers

    /// @notice Registers a GS1 company prefix (4-12 digits after the GTIN-14's indicator digit) or a single GTIN
    /// licence (its 13 digits after the indicator digit) to `owner`: only `owner` may then create lots of GTINs
    /// under it that no longer registered prefix covers ({gtinOwner}).
    /// @dev Requirements: caller holds DEFAULT_ADMIN_ROLE; `prefix` is 4-13 ASCII digits; neither it nor a
    /// shorter prefix of it belongs to another account. Emits {CompanyPrefixRegistered}.
    function registerCompanyPrefix(string calldata prefix, address owner) external onlyRole(DEFAULT_ADMIN_ROLE) {
        bytes calldata digits = bytes(prefix);
        if (digits.length < 4 || digits.length > 13 || !_allDigits(digits)) revert InvalidPrefix(prefix);
        for (uint256 len = 4; len <= digits.length; len++) {
            address holder = _prefixOwner[keccak256(digits[:len])];
            if (holder != address(0) && holder != owner) revert PrefixTaken(string(digits[:len]), holder);
        }
        _prefixOwner[keccak256(digits)] = owner;
        emit CompanyPrefixRegistered(prefix, owner);
    }

    /// @notice The account that owns a GTIN-14: the owner of the longest registered prefix of its digits after
    /// the indicator digit, or zero. The most specific registration wins, so a shorter prefix registered later
    /// never takes over GTINs already registered to another account under a longer one.
    function gtinOwner(string calldata gtin14) public view returns (address) {
        bytes calldata digits = bytes(gtin14);
        if (digits.length != 14) return address(0);
        for (uint256 len = 13; len >= 4; len--) {
            address holder = _prefixOwner[keccak256(digits[1:1 + len])];
            if (holder != address(0)) return holder;
        }
        return address(0);
    }

    /// @notice A lot's id from its label: keccak256(abi.encode(gtin14, lotCode)). `abi.encode` pads and
    /// length-prefixes both strings, so two different labels can never give the same bytes (as
    /// `abi.encodePacked("1", "23")` and `("12", "3")` would).
    function lotIdOf(string memory gtin14, string memory lotCode) public pure returns (bytes32) {
        return keccak256(abi.encode(gtin14, lotCode));
    }

    // ---------------------------------------------------------------- lots

    /// @notice Creates the lot of label (`gtin14`, `lotCode`); its id is {lotIdOf}. With `inputs` it is a
    /// transformation: the new lot is made from those lots.
    /// @dev Requirements: caller holds PRODUCER_ROLE or PROCESSOR_ROLE; `gtin14` is 14 digits under a prefix
    /// registered to the caller; `lotCode` is 1-20 bytes; the lot is new; `kind` is harvesting, initial
    /// packing or first land-based receiving without inputs, transformation with inputs; the caller holds every
    /// input, and every input is active. Emits {LotCreated} and {LotEventRecorded}.
    function createLot(
        string calldata gtin14,
        string calldata lotCode,
        bytes32[] calldata inputs,
        uint8 kind,
        bytes32 dataHash
    ) external returns (bytes32 lotId) {
        _requireCreatorRole(msg.sender);
        if (bytes(gtin14).length != 14 || !_allDigits(bytes(gtin14))) revert InvalidGtin(gtin14);
        if (bytes(lotCode).length == 0 || bytes(lotCode).length > 20) revert InvalidLotCode(lotCode);
        if (gtinOwner(gtin14) != msg.sender) revert GtinNotOwned(gtin14, msg.sender);
        lotId = lotIdOf(gtin14, lotCode);
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
    /// @dev Requirements: caller holds a handling role and is the custodian; the lot is active or held (not in
    /// transit, recalled or closed); `kind` is one the custodian may record directly. Emits {LotEventRecorded}.
    function recordEvent(bytes32 lotId, uint8 kind, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId, _ACTIVE | _HELD);
        _requireFreeKind(kind);
        _append(lotId, lot, kind, dataHash);
    }

    /// @notice Records many events on one lot in one transaction, in the given order.
    /// @dev Same requirements as {recordEvent} for each event; the arrays have equal, non-zero length.
    /// Emits one {LotEventRecorded} per event.
    function recordEvents(bytes32 lotId, uint8[] calldata kinds, bytes32[] calldata dataHashes) external {
        if (kinds.length != dataHashes.length) revert LengthMismatch(kinds.length, dataHashes.length);
        if (kinds.length == 0) revert EmptyBatch();
        Lot storage lot = _custodianLot(lotId, _ACTIVE | _HELD);
        for (uint256 i = 0; i < kinds.length; i++) {
            _requireFreeKind(kinds[i]);
            _append(lotId, lot, kinds[i], dataHashes[i]);
        }
    }

    // ---------------------------------------------------------------- custody

    /// @notice Offers the lot to another organisation (the shipping event). The lot is in transit until the
    /// recipient accepts or rejects, or the offer is cancelled; meanwhile the old custodian records nothing else.
    /// @dev Requirements: caller holds a handling role and is the custodian; the lot is active; `to` is not the
    /// caller and holds PROCESSOR_ROLE, DISTRIBUTOR_ROLE or RETAILER_ROLE. Emits {CustodyOffered} and
    /// {LotEventRecorded}.
    function offerCustody(bytes32 lotId, address to, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId, _ACTIVE);
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
    /// @dev Requirements: caller holds a handling role and is the pending custodian; the lot is in transit.
    /// Emits {CustodyAccepted} and {LotEventRecorded}.
    function acceptCustody(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _pendingLot(lotId);
        address from = lot.custodian;
        lot.custodian = msg.sender;
        lot.pendingCustodian = address(0);
        lot.status = Status.Active;
        emit CustodyAccepted(lotId, from, msg.sender);
        _append(lotId, lot, KIND_RECEIVING, dataHash);
    }

    /// @notice Refuses an offered lot; it stays with the offerer.
    /// @dev Requirements: caller holds a handling role and is the pending custodian; the lot is in transit.
    /// Emits {CustodyRejected} and {LotEventRecorded}.
    function rejectCustody(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _pendingLot(lotId);
        lot.pendingCustodian = address(0);
        lot.status = Status.Active;
        emit CustodyRejected(lotId, lot.custodian, msg.sender);
        _append(lotId, lot, KIND_CUSTODY_REJECTED, dataHash);
    }

    /// @notice Withdraws a pending offer.
    /// @dev Requirements: caller holds a handling role and is the custodian; the lot is in transit.
    /// Emits {CustodyCancelled} and {LotEventRecorded}.
    function cancelCustodyOffer(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId, _IN_TRANSIT);
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
    function inspect(bytes32 lotId, Outcome outcome, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        _requireAnyRole(msg.sender, INSPECTOR_ROLE, INSPECTOR_ROLE);
        _requireStatus(lotId, lot.status, _ACTIVE | _HELD);
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
        Lot storage lot = _existing(lotId);
        _requireAnyRole(msg.sender, INSPECTOR_ROLE, REGULATOR_ROLE);
        _requireStatus(lotId, lot.status, _ACTIVE);
        lot.status = Status.Held;
        emit LotHeld(lotId, msg.sender);
        _append(lotId, lot, KIND_HOLD, dataHash);
    }

    /// @notice Lifts a hold.
    /// @dev Requirements: caller holds INSPECTOR_ROLE; the lot is held. Emits {LotReleased} and {LotEventRecorded}.
    function release(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        _requireAnyRole(msg.sender, INSPECTOR_ROLE, INSPECTOR_ROLE);
        _requireStatus(lotId, lot.status, _HELD);
        lot.status = Status.Active;
        emit LotReleased(lotId, msg.sender);
        _append(lotId, lot, KIND_RELEASE, dataHash);
    }

    // ---------------------------------------------------------------- recall, close, sensors

    /// @notice Recalls a lot. Every lot made from it is recalled too, by {recallDerived} in the same
    /// transaction (multicall) or, for a large forward trace, in bounded batches after it.
    /// @dev Requirements: caller holds REGULATOR_ROLE or INSPECTOR_ROLE, or holds PRODUCER_ROLE or
    /// PROCESSOR_ROLE and created the lot; the lot is not already recalled. A closed lot can be recalled: its
    /// food may still be in people's homes. A pending custody offer is dropped.
    /// Emits {LotRecalled} and {LotEventRecorded}.
    function recall(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        _requireRecaller(lotId, lot);
        _recall(lotId, lot, lotId, dataHash);
    }

    /// @notice Carries the recall of `sourceId` to lots made from it: each lot in `lotIds`, in order, must have
    /// an input whose recall started at `sourceId` (so a batch lists lots parent-first, as a forward trace
    /// walks them).
    /// @dev Requirements: the caller may recall `sourceId` (as {recall}); `sourceId` was recalled directly;
    /// each lot exists, is not recalled, and has an input recalled from `sourceId`; equal, non-zero lengths.
    /// Emits {LotRecalled} and {LotEventRecorded} per lot.
    function recallDerived(bytes32 sourceId, bytes32[] calldata lotIds, bytes32[] calldata dataHashes) external {
        if (lotIds.length != dataHashes.length) revert LengthMismatch(lotIds.length, dataHashes.length);
        if (lotIds.length == 0) revert EmptyBatch();
        Lot storage source = _existing(sourceId);
        _requireRecaller(sourceId, source);
        if (source.status != Status.Recalled || _recallSource[sourceId] != sourceId) revert LotNotRecalled(sourceId);
        for (uint256 i = 0; i < lotIds.length; i++) {
            bytes32 lotId = lotIds[i];
            Lot storage lot = _existing(lotId);
            if (lot.status == Status.Recalled) revert LotUnavailable(lotId, lot.status);
            bool reached = false;
            for (uint256 j = 0; j < lot.inputs.length && !reached; j++) {
                reached = _recallSource[lot.inputs[j]] == sourceId;
            }
            if (!reached) revert NotDerivedFromRecall(lotId, sourceId);
            _recall(lotId, lot, sourceId, dataHashes[i]);
        }
    }

    /// @notice Ends (terminates) the recall issued on `lotId`: the product is removed or corrected and the
    /// recall action is complete. The lot stays recalled: ending a recall does not make its food safe, so
    /// nothing else may be recorded on it, and lots made from it keep their own recall.
    /// @dev Requirements: the caller may recall the lot (as {recall}); the lot was recalled directly (its recall
    /// started at itself: a recall carried to it from an input is ended on the lot it started from); its recall
    /// is not ended yet. Emits {RecallEnded} and {LotEventRecorded}.
    function endRecall(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        _requireRecaller(lotId, lot);
        if (lot.status != Status.Recalled || _recallSource[lotId] != lotId) revert LotNotRecalled(lotId);
        if (_recallEnded[lotId]) revert RecallAlreadyEnded(lotId);
        _recallEnded[lotId] = true;
        emit RecallEnded(lotId, msg.sender);
        _append(lotId, lot, KIND_RECALL_ENDED, dataHash);
    }

    /// @notice Closes a lot (sold out, consumed, destroyed); no further events except a recall.
    /// @dev Requirements: caller holds a handling role and is the custodian; the lot is active or held.
    /// Emits {LotClosed} and {LotEventRecorded}.
    function close(bytes32 lotId, bytes32 dataHash) external {
        Lot storage lot = _custodianLot(lotId, _ACTIVE | _HELD);
        lot.status = Status.Closed;
        emit LotClosed(lotId, msg.sender);
        _append(lotId, lot, KIND_CLOSE, dataHash);
    }

    /// @notice Anchors the Merkle root of a batch of sensor readings (cold chain) taken on a lot.
    /// @dev Requirements: caller holds a handling role and is the custodian (while the lot is in transit, the
    /// sender: the pending custodian records nothing before it accepts, or anyone could be sent a lot and
    /// write on it); the lot is active, held or in transit; `count` > 0.
    /// Emits {ReadingsAnchored} and {LotEventRecorded}.
    function anchorReadings(bytes32 lotId, bytes32 merkleRoot, uint32 count, bytes32 dataHash) external {
        Lot storage lot = _existing(lotId);
        _requireHandler(msg.sender);
        if (lot.custodian != msg.sender) revert LotNotCustodian(lotId, msg.sender);
        _requireStatus(lotId, lot.status, _ACTIVE | _HELD | _IN_TRANSIT);
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

    /// @notice For a recalled lot, the lot its recall started from (itself for a direct recall); zero otherwise.
    function recallSourceOf(bytes32 lotId) external view returns (bytes32) {
        return _recallSource[lotId];
    }

    /// @notice Whether the recall issued on `lotId` has been ended ({endRecall}).
    function recallEnded(bytes32 lotId) external view returns (bool) {
        return _recallEnded[lotId];
    }

    // ---------------------------------------------------------------- internals

    function _append(bytes32 lotId, Lot storage lot, uint8 kind, bytes32 dataHash) private {
        bytes32 head = keccak256(abi.encode(lot.head, kind, msg.sender, dataHash));
        uint64 seq = lot.eventCount + 1;
        lot.head = head;
        lot.eventCount = seq;
        emit LotEventRecorded(lotId, msg.sender, kind, seq, dataHash, head);
    }

    /// @dev Status bits for `_requireStatus` (bit i is `Status(i)`).
    uint8 private constant _ACTIVE = uint8(1) << uint8(Status.Active);
    uint8 private constant _IN_TRANSIT = uint8(1) << uint8(Status.InTransit);
    uint8 private constant _HELD = uint8(1) << uint8(Status.Held);

    function _recall(bytes32 lotId, Lot storage lot, bytes32 sourceId, bytes32 dataHash) private {
        _requireStatus(lotId, lot.status, _ACTIVE | _IN_TRANSIT | _HELD | (uint8(1) << uint8(Status.Closed)));
        lot.status = Status.Recalled;
        lot.pendingCustodian = address(0);
        _recallSource[lotId] = sourceId;
        emit LotRecalled(lotId, msg.sender, sourceId);
        _append(lotId, lot, KIND_RECALL, dataHash);
    }

    function _existing(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _lots[lotId];
        if (lot.status == Status.None) revert LotNotFound(lotId);
    }

    /// @dev The checks run in the rulebook's order (supply_chain/domain/policy.py): role, then relation to the
    /// lot, then status, so every path names the same reason for a refusal.
    function _custodianLot(bytes32 lotId, uint8 allowed) private view returns (Lot storage lot) {
        lot = _existing(lotId);
        _requireHandler(msg.sender);
        if (lot.custodian != msg.sender) revert LotNotCustodian(lotId, msg.sender);
        _requireStatus(lotId, lot.status, allowed);
    }

    function _pendingLot(bytes32 lotId) private view returns (Lot storage lot) {
        lot = _existing(lotId);
        _requireHandler(msg.sender);
        if (lot.pendingCustodian != msg.sender) revert NotPendingCustodian(lotId, msg.sender);
        _requireStatus(lotId, lot.status, _IN_TRANSIT);
    }

    /// @dev A status refusal names what was expected when only one status is allowed (not in transit, not held),
    /// an in-transit lot as such, and otherwise the status the lot is in.
    function _requireStatus(bytes32 lotId, Status status, uint8 allowed) private pure {
        if ((allowed >> uint8(status)) & 1 == 1) return;
        if (allowed == _IN_TRANSIT) revert LotNotInTransit(lotId);
        if (allowed == _HELD) revert LotNotHeld(lotId);
        if (status == Status.InTransit) revert LotInTransit(lotId);
        revert LotUnavailable(lotId, status);
    }

    /// @dev Regulators and inspectors recall any lot; a producer or processor only the lots it created, and
    /// only while it still holds that role.
    function _requireRecaller(bytes32 lotId, Lot storage lot) private view {
        if (hasRole(REGULATOR_ROLE, msg.sender) || hasRole(INSPECTOR_ROLE, msg.sender)) return;
        if (hasRole(PRODUCER_ROLE, msg.sender) || hasRole(PROCESSOR_ROLE, msg.sender)) {
            if (lot.creator != msg.sender) revert NotAuthorizedToRecall(lotId, msg.sender);
            return;
        }
        bytes32[] memory anyOf = new bytes32[](4);
        anyOf[0] = INSPECTOR_ROLE;
        anyOf[1] = PROCESSOR_ROLE;
        anyOf[2] = PRODUCER_ROLE;
        anyOf[3] = REGULATOR_ROLE;
        revert AccountLacksRoles(msg.sender, anyOf);
    }

    function _requireCreatorRole(address account) private view {
        _requireAnyRole(account, PRODUCER_ROLE, PROCESSOR_ROLE);
    }

    function _allDigits(bytes memory text) private pure returns (bool) {
        for (uint256 i = 0; i < text.length; i++) {
            if (text[i] < 0x30 || text[i] > 0x39) return false;
        }
        return true;
    }

    function _requireFreeKind(uint8 kind) private pure {
        if (
            kind != KIND_HARVESTING && kind != KIND_COOLING && kind != KIND_INITIAL_PACKING
                && kind != KIND_FIRST_LAND_BASED_RECEIVING && kind != KIND_OBSERVATION
        ) revert EventKindNotAllowed(kind);
    }

    function _requireAnyRole(address account, bytes32 a, bytes32 b) private view {
        if (!hasRole(a, account) && !hasRole(b, account)) {
            bytes32[] memory anyOf = new bytes32[](a == b ? 1 : 2);
            anyOf[0] = a;
            if (a != b) anyOf[1] = b;
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
