// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IPaymentEscrow} from "../../contracts/interfaces/IPaymentEscrow.sol";
import {PaymentEscrow} from "../../contracts/escrow/PaymentEscrow.sol";
import {InframeshToken} from "../../contracts/token/InframeshToken.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// @title EscrowFixture
/// @notice Deploys the dev token and PaymentEscrow with the test contract as governance.
abstract contract EscrowFixture is Test {
    uint32 internal constant WITHDRAWAL_DELAY = 3 days;
    uint256 internal constant SUPPLY = 1e36;
    /// @dev Largest single deposit the tests use: a billion tokens.
    uint256 internal constant MAX_AMOUNT = 1e27;

    InframeshToken internal token;
    PaymentEscrow internal escrow;

    function _deploy() internal {
        vm.warp(1_700_000_000);
        token = new InframeshToken(address(this), SUPPLY);
        escrow = new PaymentEscrow(token, address(this), WITHDRAWAL_DELAY);
    }

    /// @dev Sends `amount` to `client` and deposits it as `client`.
    function _deposit(address client, uint256 amount) internal {
        token.transfer(client, amount);
        vm.startPrank(client);
        token.approve(address(escrow), amount);
        escrow.deposit(amount);
        vm.stopPrank();
    }

    function _request(address client, uint256 amount) internal returns (uint64 withdrawableAt) {
        vm.prank(client);
        withdrawableAt = escrow.requestWithdrawal(amount);
    }

    function _withdraw(address client) internal returns (uint256 amount) {
        vm.prank(client);
        amount = escrow.withdraw();
    }
}

/// @title PaymentEscrowFuzzTest
/// @notice Fuzz tests of the escrow invariants of PROTOCOL.md: tokens are conserved, no one withdraws
/// before `withdrawableAt`, no client is debited beyond its balance, and a pending withdrawal stays
/// debitable until it is paid.
contract PaymentEscrowFuzzTest is EscrowFixture {
    address internal constant ALICE = address(0xA11CE);
    address internal constant BOB = address(0xB0B);
    address internal constant SETTLEMENT = address(0x5E77);

    function setUp() public {
        _deploy();
        escrow.grantRole(escrow.SETTLEMENT_ROLE(), SETTLEMENT);
    }

    function _assertConserved() internal view {
        uint256 sum = escrow.balanceOf(ALICE) + escrow.balanceOf(BOB);
        assertEq(escrow.totalBalance(), sum, "totalBalance != sum of balances");
        assertEq(token.balanceOf(address(escrow)), sum, "token balance != sum of balances");
    }

    /// @notice Any request, at any delay, cannot be withdrawn one second early and can be at maturity.
    function testFuzz_withdraw_neverBeforeWithdrawableAt(
        uint256 amount,
        uint256 request,
        uint32 delay,
        uint256 elapsed
    ) public {
        amount = bound(amount, 1, MAX_AMOUNT);
        request = bound(request, 1, amount);
        delay = uint32(bound(delay, escrow.MIN_WITHDRAWAL_DELAY(), escrow.MAX_WITHDRAWAL_DELAY()));
        escrow.setWithdrawalDelay(delay);
        _deposit(ALICE, amount);
        uint64 withdrawableAt = _request(ALICE, request);
        assertEq(withdrawableAt, block.timestamp + delay, "withdrawableAt != now + delay");

        elapsed = bound(elapsed, 0, uint256(delay) - 1);
        vm.warp(block.timestamp + elapsed);
        vm.expectRevert(
            abi.encodeWithSelector(IPaymentEscrow.WithdrawalNotMatured.selector, ALICE, withdrawableAt, block.timestamp)
        );
        _withdraw(ALICE);

        vm.warp(withdrawableAt);
        assertEq(_withdraw(ALICE), request, "matured withdrawal did not pay the request");
        assertEq(token.balanceOf(ALICE), request, "client did not receive the request");
        _assertConserved();
    }

    /// @notice A debit takes exactly its amount when the balance covers it and reverts otherwise,
    /// pending withdrawal or not.
    function testFuzz_debit_neverExceedsBalance(uint256 amount, uint256 request, uint256 debitAmount) public {
        amount = bound(amount, 1, MAX_AMOUNT);
        request = bound(request, 0, amount);
        debitAmount = bound(debitAmount, 1, 2 * MAX_AMOUNT);
        _deposit(ALICE, amount);
        if (request > 0) _request(ALICE, request);

        if (debitAmount > amount) {
            vm.expectRevert(
                abi.encodeWithSelector(IPaymentEscrow.InsufficientBalance.selector, ALICE, amount, debitAmount)
            );
            vm.prank(SETTLEMENT);
            escrow.debit(ALICE, debitAmount);
            assertEq(escrow.balanceOf(ALICE), amount, "a failed debit changed the balance");
        } else {
            vm.prank(SETTLEMENT);
            escrow.debit(ALICE, debitAmount);
            assertEq(escrow.balanceOf(ALICE), amount - debitAmount, "debit took the wrong amount");
            assertEq(token.balanceOf(SETTLEMENT), debitAmount, "settlement did not receive the debit");
        }
        _assertConserved();
    }

    /// @notice deposit → request → debits → withdraw: the client gets min(request, what debits left),
    /// the settlement gets the debits, and nothing is created or lost.
    function testFuzz_requestThenDebits_paysAtMostWhatIsLeft(
        uint256 aliceAmount,
        uint256 bobAmount,
        uint256 request,
        uint256 aliceDebit,
        uint256 bobDebit,
        uint256 extraWait
    ) public {
        aliceAmount = bound(aliceAmount, 1, MAX_AMOUNT);
        bobAmount = bound(bobAmount, 1, MAX_AMOUNT);
        request = bound(request, 1, aliceAmount);
        aliceDebit = bound(aliceDebit, 0, aliceAmount);
        bobDebit = bound(bobDebit, 0, bobAmount);
        _deposit(ALICE, aliceAmount);
        _deposit(BOB, bobAmount);
        uint64 withdrawableAt = _request(ALICE, request);

        uint256 debits = (aliceDebit > 0 ? 1 : 0) + (bobDebit > 0 ? 1 : 0);
        address[] memory clients = new address[](debits);
        uint256[] memory amounts = new uint256[](debits);
        if (aliceDebit > 0) {
            clients[0] = ALICE;
            amounts[0] = aliceDebit;
        }
        if (bobDebit > 0) {
            clients[debits - 1] = BOB;
            amounts[debits - 1] = bobDebit;
        }
        vm.prank(SETTLEMENT);
        assertEq(escrow.debitBatch(clients, amounts), aliceDebit + bobDebit, "batch total");
        _assertConserved();

        vm.warp(uint256(withdrawableAt) + bound(extraWait, 0, 365 days));
        uint256 left = aliceAmount - aliceDebit;
        uint256 expected = request < left ? request : left;
        assertEq(_withdraw(ALICE), expected, "withdrawal != min(request, balance left)");
        assertEq(escrow.balanceOf(ALICE), left - expected, "balance after withdrawal");
        assertEq(token.balanceOf(SETTLEMENT), aliceDebit + bobDebit, "settlement received != debits");
        assertEq(
            token.balanceOf(address(escrow)) + token.balanceOf(SETTLEMENT) + token.balanceOf(ALICE),
            aliceAmount + bobAmount,
            "tokens created or lost"
        );
        _assertConserved();
    }
}

/// @title EscrowHandler
/// @notice The invariant fuzzer's only target: bounded deposits, requests, cancellations, withdrawals
/// (early ones included, which must fail), debits and time jumps by three clients, with ghost
/// accounting of every token that enters or leaves the escrow.
contract EscrowHandler is Test {
    uint256 internal constant MAX_DEPOSIT = 1e27;
    uint256 internal constant MAX_WARP = 10 days;

    PaymentEscrow public immutable escrow;
    InframeshToken public immutable token;

    address[3] public clients = [address(0xC001), address(0xC002), address(0xC003)];

    /// @dev The campaign's clock, re-applied before every action.
    uint256 public currentTime;

    uint256 public ghostDeposited;
    uint256 public ghostWithdrawn;
    uint256 public ghostDebited;
    uint256 public ghostEarlyWithdrawals;
    uint256 public ghostEarlyWithdrawalsRejected;
    uint256 public ghostOverdebits;

    constructor(PaymentEscrow escrow_, InframeshToken token_) {
        escrow = escrow_;
        token = token_;
        currentTime = block.timestamp;
        for (uint256 i = 0; i < clients.length; ++i) {
            vm.prank(clients[i]);
            token_.approve(address(escrow_), type(uint256).max);
        }
    }

    modifier clocked() {
        vm.warp(currentTime);
        _;
    }

    function _client(uint256 seed) internal view returns (address) {
        return clients[seed % clients.length];
    }

    function deposit(uint256 seed, uint256 amount) external clocked {
        address client = _client(seed);
        amount = bound(amount, 1, MAX_DEPOSIT);
        token.transfer(client, amount);
        vm.prank(client);
        escrow.deposit(amount);
        ghostDeposited += amount;
    }

    function requestWithdrawal(uint256 seed, uint256 amount) external clocked {
        address client = _client(seed);
        uint256 balance = escrow.balanceOf(client);
        if (balance == 0) return;
        vm.prank(client);
        escrow.requestWithdrawal(bound(amount, 1, balance));
    }

    function cancelWithdrawal(uint256 seed) external clocked {
        address client = _client(seed);
        if (escrow.pendingWithdrawal(client).withdrawableAt == 0) return;
        vm.prank(client);
        escrow.cancelWithdrawal();
    }

    /// @dev Tries every pending request, matured or not: an early one must revert.
    function withdraw(uint256 seed) external clocked {
        address client = _client(seed);
        IPaymentEscrow.Withdrawal memory request = escrow.pendingWithdrawal(client);
        if (request.withdrawableAt == 0) return;
        bool early = block.timestamp < request.withdrawableAt;
        uint256 before = token.balanceOf(client);
        vm.prank(client);
        try escrow.withdraw() returns (uint256 amount) {
            if (early) ++ghostEarlyWithdrawals;
            ghostWithdrawn += amount;
            assertEq(token.balanceOf(client) - before, amount, "withdraw paid a different amount");
        } catch {
            if (early) ++ghostEarlyWithdrawalsRejected;
            else fail("a matured withdrawal reverted");
        }
    }

    /// @dev Debits up to twice the balance: a debit above the balance must revert.
    function debit(uint256 seed, uint256 amount) external clocked {
        address client = _client(seed);
        uint256 balance = escrow.balanceOf(client);
        amount = bound(amount, 1, 2 * balance + 1);
        try escrow.debit(client, amount) {
            if (amount > balance) ++ghostOverdebits;
            ghostDebited += amount;
        } catch {
            if (amount <= balance) fail("a covered debit reverted");
        }
    }

    function debitBatch(uint256 seedA, uint256 amountA, uint256 seedB, uint256 amountB) external clocked {
        address a = _client(seedA);
        address b = _client(seedB);
        uint256 balanceA = escrow.balanceOf(a);
        uint256 balanceB = escrow.balanceOf(b);
        if (balanceA == 0 || balanceB == 0) return;
        amountA = bound(amountA, 1, balanceA);
        // Same client twice: the second debit sees what the first left.
        uint256 room = a == b ? balanceA - amountA : balanceB;
        if (room == 0) return;
        amountB = bound(amountB, 1, room);
        address[] memory batch = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (batch[0], batch[1], amounts[0], amounts[1]) = (a, b, amountA, amountB);
        ghostDebited += escrow.debitBatch(batch, amounts);
    }

    /// @dev Two packed debits, the second one possibly more than its client has: then the whole
    /// batch must revert and move nothing.
    function debitPacked(uint256 seedA, uint256 amountA, uint256 seedB, uint256 amountB) external clocked {
        address a = _client(seedA);
        address b = _client(seedB);
        uint256 balanceA = escrow.balanceOf(a);
        if (balanceA == 0) return;
        amountA = bound(amountA, 1, balanceA);
        uint256 room = a == b ? balanceA - amountA : escrow.balanceOf(b);
        amountB = bound(amountB, 1, 2 * room + 1);
        bytes32[] memory debits = new bytes32[](2);
        debits[0] = bytes32((uint256(uint160(a)) << 96) | amountA);
        debits[1] = bytes32((uint256(uint160(b)) << 96) | amountB);
        uint256 totalBefore = escrow.totalBalance();
        try escrow.debitPacked(debits) returns (uint256 total) {
            if (amountB > room) ++ghostOverdebits;
            assertEq(total, amountA + amountB, "packed total");
            ghostDebited += total;
        } catch {
            if (amountB <= room) fail("a covered packed debit reverted");
            assertEq(escrow.totalBalance(), totalBefore, "a refused batch moved tokens");
        }
    }

    function warp(uint256 seconds_) external {
        currentTime += bound(seconds_, 1, MAX_WARP);
        vm.warp(currentTime);
    }

    function sumOfBalances() external view returns (uint256 sum) {
        for (uint256 i = 0; i < clients.length; ++i) sum += escrow.balanceOf(clients[i]);
    }
}

/// @title PaymentEscrowInvariantTest
/// @notice Invariant campaign over EscrowHandler: conservation and no early withdrawal.
contract PaymentEscrowInvariantTest is EscrowFixture {
    EscrowHandler internal handler;

    function setUp() public {
        _deploy();
        handler = new EscrowHandler(escrow, token);
        escrow.grantRole(escrow.SETTLEMENT_ROLE(), address(handler));
        token.transfer(address(handler), token.balanceOf(address(this)));

        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = EscrowHandler.deposit.selector;
        selectors[1] = EscrowHandler.requestWithdrawal.selector;
        selectors[2] = EscrowHandler.cancelWithdrawal.selector;
        selectors[3] = EscrowHandler.withdraw.selector;
        selectors[4] = EscrowHandler.debit.selector;
        selectors[5] = EscrowHandler.debitBatch.selector;
        selectors[6] = EscrowHandler.warp.selector;
        selectors[7] = EscrowHandler.debitPacked.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice The escrow's token balance equals `totalBalance` equals the sum of client balances.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_tokenBalanceEqualsSumOfBalances() public view {
        uint256 sum = handler.sumOfBalances();
        assertEq(escrow.totalBalance(), sum, "totalBalance != sum of balances");
        assertEq(token.balanceOf(address(escrow)), sum, "token balance != sum of balances");
    }

    /// @notice Tokens deposited = tokens withdrawn + tokens debited + tokens held.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_depositedEqualsWithdrawnPlusDebitedPlusHeld() public view {
        assertEq(
            handler.ghostDeposited(),
            handler.ghostWithdrawn() + handler.ghostDebited() + token.balanceOf(address(escrow)),
            "deposited != withdrawn + debited + held"
        );
    }

    /// @notice No withdrawal ever succeeded before its `withdrawableAt`, and no debit above a balance.
    /// hardhat-config: invariant.runs = 64
    /// hardhat-config: invariant.depth = 128
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_noEarlyWithdrawalNoOverdebit() public view {
        assertEq(handler.ghostEarlyWithdrawals(), 0, "a withdrawal succeeded before withdrawableAt");
        assertEq(handler.ghostOverdebits(), 0, "a debit above the balance succeeded");
    }
}
