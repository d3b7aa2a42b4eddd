// A history entry's proof checked against the chain in the browser, without trusting the
// gateway for anything but the hub's address and the chain id (GET /v1/wallet/config):
// the public RPC (config.public_rpc_url) answers every chain question.
//
//   input_hash   keccak-256 of the canonical input text is the disclosed input_hash
//   merkle_path  the leaf keccak256(0x00 ‖ ref ‖ input_hash) (chain/merkle.py input_leaf)
//                and the path lead to a root (the root the proof names, if it names one)
//   batch_log    the batch transaction's receipt holds the hub's log with that root and
//                the entry's ref, merchant, amount and member (issuance: PointsIssued and
//                the token's mint it pairs with; clawback: PointsClawedBack and the
//                ClawbackInputsCommitted after it), at the block the proof names
//   rule_version the version named was published on chain (RuleSetPublished: its hash
//                and effective time are the ones the proof and the input name) and was in
//                effect at acceptance (the input's accepted_at, which is its accepted
//                block's time, in [effectiveAt(v), effectiveAt(v + 1)); the first version
//                has no lower bound: none came before it)
//
// verifyEntry() gives {ok, block, checks: [{name, status: "ok"|"failed"|"skipped",
// reason, params}]}: a failed check names its reason (a stable code the page words).

export const CHECKS = ["input_hash", "merkle_path", "batch_log", "rule_version"];

const ZERO32 = `0x${"00".repeat(32)}`;
const RPC_TIMEOUT_MS = 20_000;
const EVENTS = [
  "event PointsIssued(uint32 indexed merchantId, uint64 indexed ruleVersion, uint64 firstSeq, bytes32[] eventRefs, uint256 total, uint8 kind, bytes32 inputRoot)",
  "event PointsClawedBack(uint32 indexed merchantId, address indexed member, uint64 seq, uint64 originalSeq, bytes32 eventRef, uint256 requested, uint256 burned)",
  "event ClawbackInputsCommitted(uint32 indexed merchantId, uint256 count, bytes32 inputRoot)",
  "event RuleSetPublished(uint32 indexed merchantId, uint64 indexed version, bytes32 ruleSetHash, uint64 effectiveAt, bytes ruleSet)",
];
const TOKEN_EVENTS = ["event Transfer(address indexed from, address indexed to, uint256 value)"];

/** A check's outcome; `reason` is a stable code, `params` fill its sentence. */
class Failed extends Error {
  constructor(reason, params = {}) {
    super(reason);
    this.reason = reason;
    this.params = params;
  }
}

function fail(reason, params) {
  throw new Failed(reason, params);
}

const lower = (value) => String(value || "").toLowerCase();

function isWord(value) {
  return typeof value === "string" && /^0x[0-9a-fA-F]{64}$/.test(value);
}

/** The input leaf of chain/merkle.py: keccak256(0x00 ‖ ref ‖ input_hash). */
export function inputLeaf(ethers, ref, inputHash) {
  return ethers.keccak256(ethers.concat(["0x00", ref, inputHash]));
}

/** The root `path` leads `leaf` to: pairs hashed sorted (OpenZeppelin's commutative pairs). */
export function foldPath(ethers, leaf, path) {
  let node = lower(leaf);
  for (const sibling of path) {
    const other = lower(sibling);
    node = lower(ethers.keccak256(ethers.concat(node < other ? [node, other] : [other, node])));
  }
  return node;
}

/** The input's stamp fields, or null (no input, or not JSON). */
function stampOf(input) {
  if (typeof input !== "string") return null;
  try {
    const body = JSON.parse(input);
    return body && typeof body === "object" ? body : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the checks

function checkInputHash(ethers, line) {
  if (line.input === null || line.input === undefined) {
    return { status: "skipped", reason: line.erased ? "erased" : "no_input" };
  }
  if (!isWord(line.input_hash)) fail("no_hash");
  const computed = ethers.keccak256(ethers.toUtf8Bytes(line.input));
  if (lower(computed) !== lower(line.input_hash)) fail("hash_mismatch", { computed, disclosed: line.input_hash });
  return { status: "ok", params: { hash: computed } };
}

function checkPath(ethers, line) {
  const inputHash = line.input_hash === null || line.input_hash === undefined ? ZERO32 : line.input_hash;
  if (!isWord(line.ref) || !isWord(inputHash)) fail("bad_proof");
  if (!Array.isArray(line.proof) || !line.proof.every(isWord)) fail("bad_proof");
  const root = foldPath(ethers, inputLeaf(ethers, line.ref, inputHash), line.proof);
  if (line.root && lower(line.root) !== root) fail("path_mismatch", { computed: root, named: line.root });
  return { status: "ok", root, params: { root } };
}

/** The hub's batch log of the entry in `receipt`: {merchant, member, amount, seq, root, version}. */
function batchEntry(ethers, receipt, line, hub, token) {
  const hubAbi = new ethers.Interface(EVENTS);
  const tokenAbi = new ethers.Interface(TOKEN_EVENTS);
  const ref = lower(line.ref);
  const mints = []; // token mints of the transaction no batch took yet
  const claws = []; // clawbacks no commitment took yet
  for (const log of receipt.logs) {
    const address = lower(log.address);
    if (address === token) {
      const parsed = tokenAbi.parseLog(log);
      if (parsed && parsed.args.from === ethers.ZeroAddress) mints.push({ member: parsed.args.to, amount: parsed.args.value });
      continue;
    }
    if (address !== hub) continue;
    const parsed = hubAbi.parseLog(log);
    if (!parsed) continue;
    if (parsed.name === "PointsIssued") {
      const refs = parsed.args.eventRefs.map(lower);
      const items = mints.splice(0, refs.length);
      const index = refs.indexOf(ref);
      if (line.kind === "issue" && index >= 0) {
        const item = items[index] || {};
        return {
          merchant: Number(parsed.args.merchantId),
          version: Number(parsed.args.ruleVersion),
          seq: Number(parsed.args.firstSeq) + index,
          member: item.member,
          amount: item.amount,
          root: lower(parsed.args.inputRoot),
        };
      }
    } else if (parsed.name === "PointsClawedBack") {
      claws.push(parsed.args);
    } else if (parsed.name === "ClawbackInputsCommitted") {
      const merchant = parsed.args.merchantId;
      const mine = claws.filter((c) => c.merchantId === merchant);
      const committed = Number(parsed.args.count) ? mine.slice(-Number(parsed.args.count)) : [];
      for (const claw of committed) claws.splice(claws.indexOf(claw), 1);
      const claw = committed.find((c) => lower(c.eventRef) === ref);
      if (line.kind === "clawback" && claw) {
        return {
          merchant: Number(merchant),
          version: null,
          seq: Number(claw.seq),
          member: claw.member,
          amount: claw.requested,
          root: lower(parsed.args.inputRoot),
        };
      }
    }
  }
  return null;
}

async function checkBatch(ethers, chain, line, root, members) {
  if (root === null) fail("no_root");
  const receipt = await chain.receipt(line.tx_hash);
  if (!receipt) fail("no_receipt", { tx: line.tx_hash });
  if (receipt.status !== 1) fail("tx_failed", { tx: line.tx_hash });
  const block = receipt.blockNumber;
  if (line.block !== null && line.block !== undefined && Number(line.block) !== block) {
    fail("block_mismatch", { block, named: line.block });
  }
  const found = batchEntry(ethers, receipt, line, chain.hub, chain.token);
  if (!found) fail("no_log", { tx: line.tx_hash, block });
  if (found.root !== root) fail("root_mismatch", { logged: found.root, computed: root, block });
  if (found.merchant !== Number(line.merchant_id)) fail("merchant_mismatch", { merchant: found.merchant, block });
  if (line.seq !== null && line.seq !== undefined && found.seq !== Number(line.seq)) {
    fail("seq_mismatch", { seq: found.seq, named: line.seq, block });
  }
  if (found.amount === undefined || found.amount !== BigInt(line.amount)) {
    fail("amount_mismatch", { amount: found.amount === undefined ? "–" : found.amount.toString(), named: line.amount, block });
  }
  if (!found.member || !members.includes(lower(found.member))) fail("member_mismatch", { member: found.member || "–", block });
  return { status: "ok", block, version: found.version, params: { block } };
}

async function checkRules(ethers, chain, line, rules, stamp, batchVersion) {
  const version = Number((stamp && stamp.rule_version) || (rules && rules.version) || batchVersion || 0);
  if (!version) return { status: "skipped", reason: "no_version" };
  if (rules && Number(rules.version) !== version) fail("version_mismatch", { version, named: rules.version });
  if (batchVersion && batchVersion !== version) fail("version_mismatch", { version, named: batchVersion });
  if (stamp && Number(stamp.merchant_id) !== Number(line.merchant_id)) fail("input_merchant_mismatch", { merchant: stamp.merchant_id });
  if (stamp && lower(stamp.ref) !== lower(line.ref)) fail("ref_mismatch", { ref: stamp.ref });
  const published = await chain.publications(Number(line.merchant_id), [version, version + 1]);
  const current = published.get(version);
  if (!current) fail("not_published", { version });
  if (lower(ethers.keccak256(current.ruleSet)) !== lower(current.ruleSetHash)) fail("rule_text_mismatch", { version });
  const hashes = [rules && rules.hash, stamp && stamp.rule_set_hash].filter(Boolean);
  if (hashes.some((hash) => lower(hash) !== lower(current.ruleSetHash))) {
    fail("rule_hash_mismatch", { version, hash: current.ruleSetHash });
  }
  const effectiveAt = Number(current.effectiveAt);
  if (rules && rules.effective_at && Math.floor(Date.parse(rules.effective_at) / 1000) !== effectiveAt) {
    fail("effective_mismatch", { version, at: new Date(effectiveAt * 1000).toISOString() });
  }
  const params = { version, hash: current.ruleSetHash, at: new Date(effectiveAt * 1000).toISOString() };
  if (!stamp || typeof stamp.accepted_at !== "number" || typeof stamp.accepted_block !== "number") {
    return { status: "ok", params: { ...params, partial: true } };
  }
  const acceptedTime = await chain.blockTime(stamp.accepted_block);
  if (acceptedTime !== stamp.accepted_at) fail("accepted_block_mismatch", { block: stamp.accepted_block });
  const next = published.get(version + 1);
  const until = next ? Number(next.effectiveAt) : null;
  if ((version > 1 && stamp.accepted_at < effectiveAt) || (until !== null && stamp.accepted_at >= until)) {
    fail("not_in_effect", { version, accepted: new Date(stamp.accepted_at * 1000).toISOString() });
  }
  return { status: "ok", params };
}

// ---------------------------------------------------------------- the chain

/** What the checks ask the public RPC, through ethers. */
async function chainReader(ethers, config) {
  const request = new ethers.FetchRequest(config.public_rpc_url);
  request.timeout = RPC_TIMEOUT_MS;
  const network = ethers.Network.from(BigInt(config.chain_id));
  const provider = new ethers.JsonRpcProvider(request, network, { staticNetwork: network, batchMaxCount: 1 });
  const hubAbi = new ethers.Interface(EVENTS);
  const hub = lower(config.hub);
  let chainChecked = null;
  async function checkChain() {
    chainChecked = chainChecked || provider.send("eth_chainId", []);
    const id = BigInt(await chainChecked);
    if (id !== BigInt(config.chain_id)) fail("wrong_chain", { chain: id.toString(), expected: config.chain_id });
  }
  async function rpc(what) {
    try {
      await checkChain();
      return await what();
    } catch (error) {
      if (error instanceof Failed) throw error;
      fail("rpc_error", { message: String((error && (error.shortMessage || error.message)) || error) });
    }
  }
  return {
    hub,
    token: lower(config.token),
    close: () => provider.destroy(),
    receipt: (hash) => rpc(() => provider.getTransactionReceipt(hash)),
    blockTime: (number) => rpc(async () => {
      const block = await provider.getBlock(number);
      return block ? Number(block.timestamp) : null;
    }),
    /** RuleSetPublished logs of `merchant`'s `versions`: version -> {ruleSetHash, effectiveAt, ruleSet}. */
    publications: (merchant, versions) => rpc(async () => {
      const logs = await provider.getLogs({
        address: config.hub,
        fromBlock: 0,
        toBlock: "latest",
        topics: [
          hubAbi.getEvent("RuleSetPublished").topicHash,
          ethers.zeroPadValue(ethers.toBeHex(merchant), 32),
          versions.map((v) => ethers.zeroPadValue(ethers.toBeHex(v), 32)),
        ],
      });
      const found = new Map();
      for (const log of logs) {
        if (log.removed) continue;
        const parsed = hubAbi.parseLog(log);
        if (parsed) found.set(Number(parsed.args.version), parsed.args);
      }
      return found;
    }),
  };
}

// ---------------------------------------------------------------- the whole

async function run(name, checks, body) {
  try {
    const result = await body();
    checks.push({ name, reason: null, params: {}, ...result });
    return result;
  } catch (error) {
    if (!(error instanceof Failed)) throw error;
    checks.push({ name, status: "failed", reason: error.reason, params: error.params });
    return null;
  }
}

/**
 * Check `proof` (GET /v1/wallet/entries/{id}/proof) against the chain the public RPC of
 * `config` serves; `members`: the member's addresses (their own and the accounts they
 * claimed). Every check runs (one failing does not hide the others' outcome).
 */
export async function verifyEntry(proof, config, members) {
  const { ethers } = await import("/wallet/vendor/ethers.js");
  const line = proof.line;
  const checks = [];
  const addresses = members.map(lower);
  const chain = await chainReader(ethers, config);
  let batch = null;
  try {
    await run("input_hash", checks, async () => checkInputHash(ethers, line));
    const path = await run("merkle_path", checks, async () => checkPath(ethers, line));
    batch = await run("batch_log", checks, async () => {
      if (lower(line.hub) !== chain.hub) fail("wrong_hub", { hub: line.hub });
      return checkBatch(ethers, chain, line, path ? path.root : null, addresses);
    });
    const stamp = stampOf(line.input);
    await run("rule_version", checks, () =>
      checkRules(ethers, chain, line, proof.rules, stamp, batch ? batch.version : null),
    );
  } finally {
    chain.close();
  }
  const ok = checks.every((check) => check.status !== "failed");
  return { ok, block: batch ? batch.block : null, checks };
}
