/*
 * The page's copy of one book channel (DESIGN section 8): a snapshot carrying
 * seq N, then updates N+1, N+2, ... with absolute quantities per level (0
 * deletes the level) and the checksum of the book after each message.
 */

const CHECKSUM_LEVELS = 10;

export function newBook() {
  return {
    seq: null, // null until a snapshot arrives
    bids: new Map(), // price -> lots
    asks: new Map(),
    changed: new Set(), // "bid:<price>" / "ask:<price>" since the last render
    resyncs: 0,
    note: "",
  };
}

/**
 * Apply one book message. Returns "ok", "stale" (an update before the
 * snapshot: one of an old subscription), or why the copy cannot go on (a gap
 * in the sequence or a checksum that does not match): then subscribe again.
 */
export function applyBookMessage(book, message) {
  if (message.snapshot) {
    book.bids = new Map(message.bids);
    book.asks = new Map(message.asks);
    book.changed = new Set();
  } else {
    if (book.seq === null) return "stale";
    if (message.seq !== book.seq + 1) return `gap: seq ${message.seq} after ${book.seq}`;
    applyLevels(book.bids, message.bids, book.changed, "bid");
    applyLevels(book.asks, message.asks, book.changed, "ask");
  }
  book.seq = message.seq;
  if (bookChecksum(book) !== message.checksum) return "checksum mismatch";
  return "ok";
}

function applyLevels(side, levels, changed, name) {
  for (const [price, qty] of levels) {
    if (qty === 0) side.delete(price);
    else side.set(price, qty);
    changed.add(`${name}:${price}`);
  }
}

/** Bids and asks as [price, lots] pairs, best first. */
export function sortedLevels(book) {
  const bids = [...book.bids.entries()].sort((a, b) => b[0] - a[0]);
  const asks = [...book.asks.entries()].sort((a, b) => a[0] - b[0]);
  return { bids, asks };
}

/** CRC32 of "p:q,p:q|p:q,..." over the top 10 levels of each side. */
export function bookChecksum(book) {
  const { bids, asks } = sortedLevels(book);
  const text = (levels) =>
    levels
      .slice(0, CHECKSUM_LEVELS)
      .map(([p, q]) => `${p}:${q}`)
      .join(",");
  return crc32(`${text(bids)}|${text(asks)}`);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** zlib's CRC32 of an ASCII string, as an unsigned integer. */
export function crc32(ascii) {
  let crc = 0xffffffff;
  for (let i = 0; i < ascii.length; i++) {
    crc = CRC_TABLE[(crc ^ ascii.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
