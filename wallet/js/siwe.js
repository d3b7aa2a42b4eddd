// EIP-4361 (Sign-In with Ethereum) messages, built exactly as the standard lays them out.

export function siweMessage({ domain, address, statement, uri, chainId, nonce, issuedAt, expirationTime }) {
  const lines = [
    `${domain} wants you to sign in with your Ethereum account:`,
    address,
    "",
  ];
  lines.push(...(statement ? [statement, ""] : [""]));
  lines.push(
    `URI: ${uri}`,
    "Version: 1",
    `Chain ID: ${chainId}`,
    `Nonce: ${nonce}`,
    `Issued At: ${issuedAt}`,
  );
  if (expirationTime) lines.push(`Expiration Time: ${expirationTime}`);
  return lines.join("\n");
}
