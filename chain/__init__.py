"""The chain side of pointsnet, knowing nothing of the gateway.

Modules, in the order a deployment and then one event meet them:

- settings and keys: :mod:`~chain.config` (``ChainSettings``), :mod:`~chain.signers`
  (the operator's signer pool);
- building and deploying: :mod:`~chain.compile` (solc through py-solc-x),
  :mod:`~chain.artifacts`, :mod:`~chain.verify` (deployed bytecode against the
  sources), :mod:`~chain.devnet` (anvil), :mod:`~chain.deploy`,
  :mod:`~chain.governance` (timelock proposals);
- writing: :mod:`~chain.contracts` (typed handles, calldata), :mod:`~chain.merkle`
  (issueBatch roots and proofs), :mod:`~chain.signing` (EIP-712 messages),
  :mod:`~chain.sender` (local signing, fees, nonces, broadcast, receipts);
- reading: :mod:`~chain.abi` (the one ABI table), :mod:`~chain.logs` (the one paged
  ``eth_getLogs`` reader), :mod:`~chain.decode` and :mod:`~chain.events` (the one
  log decoder) into :mod:`~chain.records`;
- auditing from an RPC URL alone: :mod:`chain.audit`;
- :mod:`~chain.cli` (``pointsnet devnet|contracts|keys|audit``) and
  :mod:`~chain.errors` (``ChainError`` and every error of this package).
"""
