// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InframeshTypedData} from "../../../contracts/settlement/InframeshTypedData.sol";

/// @title TypedDataHarness
/// @notice Deploys the Inframesh EIP-712 domain on its own, so the TypeScript cross-check can run
/// against any number of verifying contracts before the settlement contract exists.
contract TypedDataHarness is InframeshTypedData {}
