// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IPaymentEscrow} from "../interfaces/IPaymentEscrow.sol";

/// @title PaymentEscrow
/// @notice Clients' prepaid balances: deposits, delayed withdrawals, and debits by the settlement contract.
/// @dev Token accounting: this contract's balance of `PAYMENT_TOKEN` always equals `totalBalance`, the
/// sum of every client's balance (tokens sent to it without `deposit` are not owed to anyone).
/// Fee-on-transfer and rebasing tokens break that equality and are not supported. There is no pause:
/// nothing here can trap a client's matured withdrawal.
contract PaymentEscrow is IPaymentEscrow, AccessControl {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    /// @notice Role allowed to debit clients (the settlement contract).
    bytes32 public constant SETTLEMENT_ROLE = keccak256("SETTLEMENT_ROLE");

    /// @notice Shortest withdrawal delay governance may set.
    uint32 public constant MIN_WITHDRAWAL_DELAY = 1 days;
    /// @notice Longest withdrawal delay governance may set.
    uint32 public constant MAX_WITHDRAWAL_DELAY = 90 days;
    /// @notice Bits of a packed debit that hold the amount (the client's address is above them).
    uint256 public constant DEBIT_AMOUNT_BITS = 96;

    /// @notice The payment token.
    IERC20 public immutable PAYMENT_TOKEN;

    // ------------------------------------------------------------------ storage

    uint32 private _withdrawalDelay;
    uint256 private _totalBalance;

    mapping(address client => uint256) private _balances;
    mapping(address client => Withdrawal) private _withdrawals;

    // ------------------------------------------------------------------ constructor

    /// @param token The ERC-20 clients pay with.
    /// @param admin Governance (the timelock), holder of DEFAULT_ADMIN_ROLE.
    /// @param initialWithdrawalDelay Starting withdrawal delay, in seconds.
    constructor(IERC20 token, address admin, uint32 initialWithdrawalDelay) {
        if (address(token) == address(0)) revert ZeroAddress("token");
        if (admin == address(0)) revert ZeroAddress("admin");
        PAYMENT_TOKEN = token;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _setWithdrawalDelay(initialWithdrawalDelay);
    }

    // ------------------------------------------------------------------ internal

    function _setWithdrawalDelay(uint32 withdrawalDelay_) internal {
        if (withdrawalDelay_ < MIN_WITHDRAWAL_DELAY || withdrawalDelay_ > MAX_WITHDRAWAL_DELAY) {
            revert InvalidParameter("withdrawalDelay", withdrawalDelay_);
        }
        _withdrawalDelay = withdrawalDelay_;
        emit WithdrawalDelaySet(withdrawalDelay_);
    }

    /// @dev Credits `amount` to `client`; the caller moves the tokens.
    function _deposit(address client, uint256 amount) internal {
        if (amount == 0) revert ZeroAmount();
        uint256 balance = _balances[client] + amount;
        _balances[client] = balance;
        _totalBalance += amount;
        emit Deposited(client, amount, balance);
    }

    /// @dev Takes `amount` from `client`'s balance for the caller; the caller's function moves the tokens.
    function _debit(address client, uint256 amount) internal {
        if (amount == 0) revert ZeroAmount();
        uint256 have = _balances[client];
        if (amount > have) revert InsufficientBalance(client, have, amount);
        uint256 balance = have - amount;
        _balances[client] = balance;
        emit Debited(client, msg.sender, amount, balance);
    }

    // ------------------------------------------------------------------ external: clients

    // Deposits carry no reentrancy guard: all state is written before the token is pulled, and
    // the token is fixed at deployment.

    /// @inheritdoc IPaymentEscrow
    function deposit(uint256 amount) external {
        _deposit(msg.sender, amount);
        PAYMENT_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IPaymentEscrow
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external {
        // A front-runner may spend the permit first; the allowance is then already there, so a
        // failed permit is ignored and the transfer below decides.
        try
            IERC20Permit(address(PAYMENT_TOKEN)).permit(msg.sender, address(this), amount, deadline, v, r, s)
        {} catch {}
        _deposit(msg.sender, amount);
        PAYMENT_TOKEN.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IPaymentEscrow
    function requestWithdrawal(uint256 amount) external returns (uint64 withdrawableAt) {
        if (amount == 0) revert ZeroAmount();
        uint256 have = _balances[msg.sender];
        if (amount > have) revert InsufficientBalance(msg.sender, have, amount);
        withdrawableAt = uint64(block.timestamp) + _withdrawalDelay;
        // The cast is safe: `amount` is at most a balance, and balances are bounded by the token's supply.
        _withdrawals[msg.sender] = Withdrawal(amount.toUint128(), withdrawableAt);
        emit WithdrawalRequested(msg.sender, amount, withdrawableAt);
    }

    /// @inheritdoc IPaymentEscrow
    function cancelWithdrawal() external {
        Withdrawal memory request = _withdrawals[msg.sender];
        if (request.withdrawableAt == 0) revert NoWithdrawalRequested(msg.sender);
        delete _withdrawals[msg.sender];
        emit WithdrawalCancelled(msg.sender, request.amount);
    }

    /// @inheritdoc IPaymentEscrow
    // No reentrancy guard: the request is deleted and the balance updated before the token moves.
    function withdraw() external returns (uint256 amount) {
        Withdrawal memory request = _withdrawals[msg.sender];
        if (request.withdrawableAt == 0) revert NoWithdrawalRequested(msg.sender);
        if (block.timestamp < request.withdrawableAt) {
            revert WithdrawalNotMatured(msg.sender, request.withdrawableAt, block.timestamp);
        }
        uint256 have = _balances[msg.sender];
        amount = request.amount < have ? request.amount : have;
        uint256 balance = have - amount;

        delete _withdrawals[msg.sender];
        _balances[msg.sender] = balance;
        _totalBalance -= amount;
        emit Withdrawn(msg.sender, amount, balance);
        if (amount > 0) PAYMENT_TOKEN.safeTransfer(msg.sender, amount);
    }

    // ------------------------------------------------------------------ external: settlement

    /// @inheritdoc IPaymentEscrow
    function debit(address client, uint256 amount) external onlyRole(SETTLEMENT_ROLE) {
        _debit(client, amount);
        _totalBalance -= amount;
        PAYMENT_TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IPaymentEscrow
    function debitBatch(
        address[] calldata clients,
        uint256[] calldata amounts
    ) external onlyRole(SETTLEMENT_ROLE) returns (uint256 total) {
        if (clients.length != amounts.length) revert LengthMismatch(clients.length, amounts.length);
        for (uint256 i = 0; i < clients.length; ++i) {
            _debit(clients[i], amounts[i]);
            total += amounts[i];
        }
        _totalBalance -= total;
        if (total > 0) PAYMENT_TOKEN.safeTransfer(msg.sender, total);
    }

    /// @inheritdoc IPaymentEscrow
    function debitPacked(bytes32[] calldata debits) external onlyRole(SETTLEMENT_ROLE) returns (uint256 total) {
        uint256 count = debits.length;
        for (uint256 i = 0; i < count; ++i) {
            uint256 packed = uint256(debits[i]);
            address client = address(uint160(packed >> DEBIT_AMOUNT_BITS));
            uint256 amount = uint96(packed);
            if (amount == 0) revert ZeroAmount();
            uint256 have = _balances[client];
            if (amount > have) revert InsufficientBalance(client, have, amount);
            // Neither can wrap: amount <= have, and a sum of fewer than 2^64 uint96 amounts fits 256 bits.
            unchecked {
                _balances[client] = have - amount;
                total += amount;
            }
        }
        _totalBalance -= total;
        emit DebitedPacked(msg.sender, debits, total);
        if (total > 0) PAYMENT_TOKEN.safeTransfer(msg.sender, total);
    }

    // ------------------------------------------------------------------ external: governance

    /// @inheritdoc IPaymentEscrow
    function setWithdrawalDelay(uint32 withdrawalDelay_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setWithdrawalDelay(withdrawalDelay_);
    }

    // ------------------------------------------------------------------ external: views

    /// @inheritdoc IPaymentEscrow
    function balanceOf(address client) external view returns (uint256) {
        return _balances[client];
    }

    /// @inheritdoc IPaymentEscrow
    function pendingWithdrawal(address client) external view returns (Withdrawal memory) {
        return _withdrawals[client];
    }

    /// @inheritdoc IPaymentEscrow
    function withdrawalDelay() external view returns (uint32) {
        return _withdrawalDelay;
    }

    /// @inheritdoc IPaymentEscrow
    function totalBalance() external view returns (uint256) {
        return _totalBalance;
    }
}
