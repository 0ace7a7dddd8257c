// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IPaymentEscrow
/// @notice Clients' prepaid balances for inference. Clients deposit payment tokens; the settlement
/// contract debits what their signed work units cost; a client withdraws with a request and a delay
/// at least as long as the settlement's challenge window, so funds cannot vanish from under jobs
/// already served.
/// @dev A client's `balanceOf` includes any pending withdrawal: the amount requested stays debitable
/// until it is withdrawn, and `withdraw` pays at most the balance left by then. Every balance can be
/// rebuilt from this interface's events.
interface IPaymentEscrow {
    // ------------------------------------------------------------------ types

    /// @notice A client's pending withdrawal request.
    /// @param amount Tokens requested (paid up to the balance left at withdrawal time).
    /// @param withdrawableAt Earliest time `withdraw` may be called.
    struct Withdrawal {
        uint128 amount;
        uint64 withdrawableAt;
    }

    // ------------------------------------------------------------------ events

    /// @notice `client` deposited `amount` tokens; its balance is now `balance`.
    event Deposited(address indexed client, uint256 amount, uint256 balance);

    /// @notice `client` asked to withdraw `amount` tokens at or after `withdrawableAt`, replacing
    /// any earlier request.
    event WithdrawalRequested(address indexed client, uint256 amount, uint64 withdrawableAt);

    /// @notice `client` cancelled its pending request of `amount` tokens.
    event WithdrawalCancelled(address indexed client, uint256 amount);

    /// @notice `client` withdrew `amount` tokens (its request capped by its balance); its balance is now `balance`.
    event Withdrawn(address indexed client, uint256 amount, uint256 balance);

    /// @notice The settlement contract `to` debited `amount` tokens from `client`, whose balance is now `balance`.
    event Debited(address indexed client, address indexed to, uint256 amount, uint256 balance);

    /// @notice The settlement contract `to` debited every client of `debits` (each `client ‖ uint96 amount`,
    /// see `debitPacked`), `total` in all. One event per batch: a client's balance after it is its
    /// previous balance minus its amounts in the batch.
    event DebitedPacked(address indexed to, bytes32[] debits, uint256 total);

    /// @notice Governance set the withdrawal delay to `withdrawalDelay` seconds (for requests made from now on).
    event WithdrawalDelaySet(uint32 withdrawalDelay);

    // ------------------------------------------------------------------ errors

    /// @notice An amount of zero was given where a positive amount is required.
    error ZeroAmount();

    /// @notice The zero address was given where an account is required.
    error ZeroAddress(string name);

    /// @notice `client` has `have` tokens, fewer than the `need` asked for.
    error InsufficientBalance(address client, uint256 have, uint256 need);

    /// @notice `client` has no pending withdrawal request.
    error NoWithdrawalRequested(address client);

    /// @notice `client`'s request cannot be withdrawn before `withdrawableAt`.
    error WithdrawalNotMatured(address client, uint64 withdrawableAt, uint256 nowTimestamp);

    /// @notice A parameter is out of its allowed range.
    error InvalidParameter(string name, uint256 value);

    /// @notice A batch gave `clients` accounts and `amounts` amounts.
    error LengthMismatch(uint256 clients, uint256 amounts);

    // ------------------------------------------------------------------ clients

    /// @notice Adds `amount` tokens to the caller's balance (approval first).
    /// @param amount Tokens transferred from the caller.
    function deposit(uint256 amount) external;

    /// @notice Same as `deposit`, with an EIP-2612 permit for the transfer in the same transaction.
    /// @param amount Tokens transferred from the caller.
    /// @param deadline Permit deadline.
    /// @param v Permit signature v.
    /// @param r Permit signature r.
    /// @param s Permit signature s.
    function depositWithPermit(uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;

    /// @notice Asks to withdraw `amount` tokens after the withdrawal delay. Replaces any pending request
    /// (its clock restarts). The tokens stay in the balance, debitable, until `withdraw`.
    /// @param amount Tokens to withdraw, at most the caller's balance now.
    /// @return withdrawableAt Earliest time `withdraw` may be called.
    function requestWithdrawal(uint256 amount) external returns (uint64 withdrawableAt);

    /// @notice Cancels the caller's pending request.
    function cancelWithdrawal() external;

    /// @notice Pays the caller's matured request: the amount requested, or the balance when debits
    /// left less. The request is used up.
    /// @return amount Tokens paid to the caller.
    function withdraw() external returns (uint256 amount);

    // ------------------------------------------------------------------ settlement

    /// @notice Moves `amount` of `client`'s balance to the caller (the settlement contract).
    /// @dev Settlement role only. Never more than the balance, pending withdrawal included.
    /// @param client The client debited.
    /// @param amount Tokens to move.
    function debit(address client, uint256 amount) external;

    /// @notice `debit` for many clients with one token transfer to the caller.
    /// @dev Settlement role only. Reverts as a whole if any client's balance is short.
    /// @param clients The clients debited (a client may appear more than once).
    /// @param amounts Tokens to move from each client.
    /// @return total Tokens moved to the caller.
    function debitBatch(address[] calldata clients, uint256[] calldata amounts) external returns (uint256 total);

    /// @notice `debitBatch` with each debit packed in one word: the client's address in the high 160
    /// bits, the amount (a uint96) in the low 96. One compact event instead of one per client.
    /// @dev Settlement role only. Reverts as a whole if any amount is zero or any client's balance is short.
    /// @param debits `bytes32(uint256(uint160(client)) << 96 | amount)`, a client may appear more than once.
    /// @return total Tokens moved to the caller.
    function debitPacked(bytes32[] calldata debits) external returns (uint256 total);

    // ------------------------------------------------------------------ governance

    /// @notice Sets the withdrawal delay for requests made from now on. Governance only.
    /// @dev Keep it at least the epoch length plus the settlement's challenge window.
    /// @param withdrawalDelay Seconds, within [MIN_WITHDRAWAL_DELAY, MAX_WITHDRAWAL_DELAY].
    function setWithdrawalDelay(uint32 withdrawalDelay) external;

    // ------------------------------------------------------------------ views

    /// @notice `client`'s balance, pending withdrawal included.
    function balanceOf(address client) external view returns (uint256);

    /// @notice `client`'s pending withdrawal request (zero when none).
    function pendingWithdrawal(address client) external view returns (Withdrawal memory);

    /// @notice Seconds between `requestWithdrawal` and the earliest `withdraw`.
    function withdrawalDelay() external view returns (uint32);

    /// @notice Sum of every client's balance: what this contract owes.
    function totalBalance() external view returns (uint256);
}
