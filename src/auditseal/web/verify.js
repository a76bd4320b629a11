// Verification in the browser: the same algorithms as auditseal.core, re-implemented on
// Web Crypto so that a user who pinned the log's verifier key needs to trust neither the
// server nor this page's data, only this (small, readable) file.
//
//   RFC 9162 section 2.1.1   leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || l || r)
//   RFC 9162 section 2.1.3.2 root from an inclusion proof            (core/proofs.py)
//   c2sp.org/signed-note     note syntax, key IDs, Ed25519 signatures (core/note.py, notekeys.py)
//   c2sp.org/tlog-checkpoint origin, size, root hash                 (core/checkpoint.py)
//   c2sp.org/tlog-tiles      entry bundles and their paths           (core/tiles.py)
//
// Everything here is pure (bytes in, values out) so tests run it against known answers.

export class VerifyError extends Error {}

const enc = new TextEncoder();
const TILE_WIDTH = 256n;
const EM_DASH = "\u2014 ";
// Go's unicode.IsSpace set: key names must not contain any of these (notekeys.py).
const SPACES = /[\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
// Standard padded base64, as Go's StdEncoding requires; atob alone would accept more.
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ---- byte helpers -------------------------------------------------------------------

export function hexToBytes(hex) {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new VerifyError(`not hex: ${hex.slice(0, 20)}`);
  return Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64ToBytes(text, what = "base64") {
  if (typeof text !== "string" || !B64.test(text)) {
    throw new VerifyError(`${what} is not valid base64`);
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function bytesToB64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) { out.set(p, pos); pos += p.length; }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---- RFC 9162 Merkle tree ------------------------------------------------------------

function subtle() {
  // Web Crypto exists only in secure contexts (https, or http on localhost/127.0.0.1).
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    throw new VerifyError("Web Crypto is unavailable: open the UI over https or on localhost");
  }
  return globalThis.crypto.subtle;
}

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

export function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0), entry));
}

export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

// RFC 9162 section 2.1.3.2, steps 1-5. BigInt because JS bit operators on Numbers
// truncate to 32 bits, and tree sizes go up to 2**63 - 1.
export async function rootFromInclusionProof(leaf, index, size, proof) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) throw new VerifyError(`index ${index} is outside a tree of size ${size}`);
  if (leaf.length !== 32) throw new VerifyError(`leaf hash is ${leaf.length} bytes, not 32`);
  proof.forEach((p, i) => {
    if (p.length !== 32) throw new VerifyError(`proof hash ${i} is ${p.length} bytes, not 32`);
  });
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerifyError(`proof too long: ${proof.length} hashes for size ${size}`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError(`proof too short: ${proof.length} hashes for size ${size}`);
  return r;
}

// ---- signed notes and keys (c2sp.org/signed-note) -------------------------------------

export function isValidKeyName(name) {
  return name.length > 0 && !name.includes("+") && !SPACES.test(name);
}

export async function keyId(name, publicKey) {
  const digest = await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(1), publicKey));
  return new DataView(digest.buffer).getUint32(0, false);
}

export function formatKeyId(id) {
  return id.toString(16).padStart(8, "0");
}

// Parse "<name>+<8 hex>+base64(0x01 || 32-byte key)" and check the ID belongs to the key,
// as Go's note.NewVerifier does: a key whose ID does not match is refused, not "fixed".
export async function parseVerifierKey(vkey) {
  // Split at the first two "+" only: the base64 key data may itself contain "+".
  const m = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(vkey.trim());
  if (!m) throw new VerifyError("verifier key must be <name>+<key id>+<key data>");
  const [, name, hexId, data] = m;
  if (!isValidKeyName(name)) throw new VerifyError(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw new VerifyError(`key id ${hexId} is not 8 hex digits`);
  const raw = b64ToBytes(data, "verifier key data");
  if (raw.length === 0 || raw[0] !== 1) throw new VerifyError("verifier key is not an Ed25519 key (type 0x01)");
  if (raw.length !== 33) throw new VerifyError(`Ed25519 key is ${raw.length - 1} bytes, expected 32`);
  const publicKey = raw.slice(1);
  const expected = await keyId(name, publicKey);
  if (parseInt(hexId, 16) !== expected) {
    throw new VerifyError(`key id ${hexId} does not match the key (expected ${formatKeyId(expected)})`);
  }
  return { name, keyId: expected, publicKey };
}

// Syntax of a signed note, Go's note.Open rules: text, the *last* blank line, signatures.
export function parseNote(message) {
  const bad = /[\x00-\x09\x0b-\x1f]/.exec(message);
  if (bad) throw new VerifyError(`note contains a control character at offset ${bad.index}`);
  const split = message.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("note has no blank line before its signatures");
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (!block || !block.endsWith("\n")) throw new VerifyError("note signature block is empty or unterminated");
  const signatures = block.slice(0, -1).split("\n").map((line) => {
    if (!line.startsWith(EM_DASH)) throw new VerifyError("signature line does not start with an em dash");
    const rest = line.slice(EM_DASH.length);
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    if (!isValidKeyName(name)) throw new VerifyError(`signature has invalid key name ${JSON.stringify(name)}`);
    const raw = b64ToBytes(space < 0 ? "" : rest.slice(space + 1), `signature by ${name}`);
    if (raw.length < 5) throw new VerifyError(`signature by ${name} is too short`);
    const id = new DataView(raw.buffer).getUint32(0, false);
    return { name, keyId: id, signature: raw.slice(4) };
  });
  if (signatures.length > 100) throw new VerifyError("note has more than 100 signatures");
  return { text, signatures };
}

// Check the note's signature by the pinned key. Signatures by other keys are ignored (a
// witness may cosign); a signature by the pinned key that does not verify is a failure.
export async function verifyNoteSignature(note, key) {
  const sig = note.signatures.find((s) => s.name === key.name && s.keyId === key.keyId);
  if (!sig) {
    const seen = note.signatures.map((s) => `${s.name}+${formatKeyId(s.keyId)}`).join(", ");
    throw new VerifyError(`not signed by the pinned key ${key.name}+${formatKeyId(key.keyId)} (signed by ${seen})`);
  }
  if (sig.signature.length !== 64) throw new VerifyError("Ed25519 signature is not 64 bytes");
  const cryptoKey = await subtle().importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
  const ok = await subtle().verify({ name: "Ed25519" }, cryptoKey, sig.signature, enc.encode(note.text));
  if (!ok) throw new VerifyError(`the signature by ${key.name}+${formatKeyId(key.keyId)} does not verify`);
  return sig;
}

// Checkpoint text (c2sp.org/tlog-checkpoint): origin, canonical decimal size, root hash.
export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new VerifyError("checkpoint text does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new VerifyError(`checkpoint has ${lines.length} lines; at least 3 expected`);
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new VerifyError("checkpoint origin is empty");
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText) || BigInt(sizeText) > 2n ** 63n - 1n) {
    throw new VerifyError(`checkpoint size ${JSON.stringify(sizeText)} is not a canonical decimal`);
  }
  const rootHash = b64ToBytes(rootText, "checkpoint root hash");
  if (rootHash.length !== 32) throw new VerifyError(`checkpoint root hash is ${rootHash.length} bytes`);
  if (extensions.some((line) => !line)) throw new VerifyError("checkpoint has an empty extension line");
  return { origin, size: BigInt(sizeText), rootHash, extensions };
}

// ---- entries and entry bundles (c2sp.org/tlog-tiles, docs/adr/0001) -------------------

export function encodeTileIndex(n) {
  let digits = BigInt(n).toString();
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, "0");
  const groups = digits.match(/.../g);
  return groups.map((g, i) => (i < groups.length - 1 ? "x" + g : g)).join("/");
}

// Path of the bundle holding `index` in a tree of `size`, partial when on the right edge.
export function bundlePathFor(index, size) {
  const bundle = BigInt(index) / TILE_WIDTH;
  const width = BigInt(size) - bundle * TILE_WIDTH;
  const suffix = width >= TILE_WIDTH ? "" : `.p/${width}`;
  return `tile/entries/${encodeTileIndex(bundle)}${suffix}`;
}

export function decodeBundle(data) {
  const entries = [];
  let pos = 0;
  while (pos < data.length) {
    if (data.length - pos < 2) throw new VerifyError("entry bundle truncated in a length prefix");
    const n = (data[pos] << 8) | data[pos + 1];
    pos += 2;
    if (data.length - pos < n) throw new VerifyError(`entry bundle truncated in entry ${entries.length}`);
    entries.push(data.slice(pos, pos + n));
    pos += n;
  }
  if (entries.length < 1 || entries.length > 256) throw new VerifyError("entry bundle holds no entries or more than 256");
  return entries;
}

// An entry is one JSON header line, then the event bytes exactly as received.
export function splitEntry(entry) {
  const nl = entry.indexOf(10);
  if (nl < 0) throw new VerifyError("entry has no header line");
  return { header: JSON.parse(new TextDecoder().decode(entry.slice(0, nl))), event: entry.slice(nl + 1) };
}

// ---- the whole check, step by step ------------------------------------------------------

// Verify that `entry` is leaf `index` of the tree the pinned key signed. Inputs are what
// the server sent (untrusted); only `pinnedKey` is trusted. Every step is reported, so a
// failure says where: a later step that needs an earlier one's result is "skipped".
//   input: {pinnedKey, index, entry: Uint8Array, eventBytes?: Uint8Array,
//           claimedLeafHash?: hex, treeSize, proof: [b64...], checkpoint: note text}
export async function verifyEvent(input) {
  const steps = [];
  const ctx = {};
  async function step(title, needs, fn) {
    if (needs.some((k) => ctx[k] === undefined)) {
      steps.push({ title, status: "skipped", detail: "needs an earlier step" });
      return;
    }
    try {
      steps.push({ title, status: "ok", detail: await fn() });
    } catch (err) {
      steps.push({ title, status: "failed", detail: err instanceof VerifyError ? err.message : String(err) });
    }
  }

  await step("Pinned verifier key", [], async () => {
    if (!input.pinnedKey) throw new VerifyError("no verifier key pinned: set one in Settings");
    ctx.key = await parseVerifierKey(input.pinnedKey);
    return `${ctx.key.name}+${formatKeyId(ctx.key.keyId)}: key ID matches the Ed25519 public key`;
  });
  if (input.eventBytes) {
    await step("Entry holds the displayed event", [], async () => {
      const { header, event } = splitEntry(input.entry);
      if (!equalBytes(event, input.eventBytes)) throw new VerifyError("the sealed entry's event bytes differ from the event shown");
      return `${event.length} event bytes identical; header ${JSON.stringify(header)}`;
    });
  }
  await step("Leaf hash SHA-256(0x00 || entry)", [], async () => {
    ctx.leaf = await leafHash(input.entry);
    const hex = bytesToHex(ctx.leaf);
    if (input.claimedLeafHash && input.claimedLeafHash.toLowerCase() !== hex) {
      // Reported, but the proof is still walked from the hash computed here.
      throw new VerifyError(`computed ${hex}, the server claims ${input.claimedLeafHash}`);
    }
    return hex;
  });
  await step("Checkpoint signature (Ed25519)", ["key"], async () => {
    const note = parseNote(input.checkpoint);
    const sig = await verifyNoteSignature(note, ctx.key);
    ctx.noteText = note.text;
    return `signed by ${sig.name}+${formatKeyId(sig.keyId)}; ${note.signatures.length} signature line(s)`;
  });
  await step("Checkpoint contents", ["noteText"], async () => {
    const cp = parseCheckpoint(ctx.noteText);
    if (cp.size !== BigInt(input.treeSize)) {
      throw new VerifyError(`checkpoint is for size ${cp.size}, the proof for size ${input.treeSize}`);
    }
    ctx.checkpoint = cp;
    return `origin ${cp.origin}, size ${cp.size}, root ${bytesToHex(cp.rootHash)}`;
  });
  await step("Inclusion proof (RFC 9162 2.1.3.2) leads to the signed root", ["leaf", "checkpoint"], async () => {
    const proof = input.proof.map((p, i) => b64ToBytes(p, `proof hash ${i}`));
    const root = await rootFromInclusionProof(ctx.leaf, input.index, input.treeSize, proof);
    if (!equalBytes(root, ctx.checkpoint.rootHash)) {
      throw new VerifyError(`proof leads to ${bytesToHex(root)}, the checkpoint root is ${bytesToHex(ctx.checkpoint.rootHash)}`);
    }
    return `${proof.length} hashes from leaf ${input.index} reach root ${bytesToHex(root)}`;
  });
  return { ok: steps.every((s) => s.status === "ok"), steps };
}
