// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title InframeshToken
/// @notice The staking and payment token for development and testnets (EIP-2612 permit).
/// @dev Production deployments may name any plain ERC-20 instead. The whole supply is minted once
/// to `holder`; there is no owner and no further minting.
contract InframeshToken is ERC20, ERC20Permit {
    /// @param holder Receives the initial supply.
    /// @param initialSupply Tokens minted to `holder`, in base units (18 decimals).
    constructor(address holder, uint256 initialSupply) ERC20("Inframesh", "INFRA") ERC20Permit("Inframesh") {
        _mint(holder, initialSupply);
    }
}
