/*
 * The market panels: the instrument list, the selected instrument's summary,
 * book, trades and auction, and the futures windows. Each renderer draws its
 * panel from the page's state (see app.js) and nothing else.
 */

import { sortedLevels } from "./book.js";
import {
  $,
  clock,
  el,
  fmtCredits,
  fmtDay,
  fmtHourMinute,
  fmtIn,
  fmtInt,
  fmtTime,
  oneDecimal,
  phaseBadge,
  setText,
} from "./format.js";

const BOOK_ROWS = 12; // levels shown per side

let listKey = "";

/** The instrument list; rebuilt only when the instruments or the selection
 * change, so that a click is never lost to a rebuild during live updates. */
export function renderList(state) {
  const all = [...state.instruments.values()];
  $("instrument-empty").hidden = all.length > 0;
  const key = `${state.selected}|${all.map((i) => i.symbol).join(",")}`;
  if (key !== listKey) {
    listKey = key;
    $("instrument-list").replaceChildren(...listItems(state, all));
  }
  for (const button of $("instrument-list").querySelectorAll("button[data-symbol]")) {
    const inst = state.instruments.get(button.dataset.symbol);
    if (!inst) continue;
    const [, last, meta] = button.children;
    const text = `${(inst.phase || "").replace("_", " ")} · ${fmtInt(inst.lot_cu)} CU/lot`;
    if (last.textContent !== fmtInt(inst.last_price)) last.textContent = fmtInt(inst.last_price);
    if (meta.textContent !== text) meta.textContent = text;
  }
}

function listItems(state, all) {
  const groups = new Map();
  for (const inst of all) {
    const name = inst.kind === "spot" ? "Spot" : `Futures · ${inst.resource_class}`;
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(inst);
  }
  const names = [...groups.keys()].sort((a, b) => (a === "Spot" ? -1 : b === "Spot" ? 1 : a.localeCompare(b)));
  const items = [];
  for (const name of names) {
    items.push(el("li", { class: "group", text: name }));
    const members = groups.get(name);
    members.sort((a, b) => (a.start || 0) - (b.start || 0) || a.symbol.localeCompare(b.symbol));
    for (const inst of members) {
      const active = inst.symbol === state.selected ? " active" : "";
      const button = el(
        "button",
        { type: "button", class: `inst-btn${active}`, "data-symbol": inst.symbol },
        el("span", { class: "inst-sym", text: inst.symbol }),
        el("span", { class: "inst-last" }),
        el("span", { class: "inst-meta" }),
      );
      items.push(el("li", {}, button));
    }
  }
  return items;
}

export function renderSummary(state) {
  const inst = state.instruments.get(state.selected);
  setText("symbol", state.selected || "—");
  phaseBadge($("phase"), inst && inst.phase);
  if (!inst) return;
  setText(
    "window",
    inst.kind === "future" && inst.start
      ? `window ${fmtDay(inst.start)} ${fmtHourMinute(inst.start)}–${fmtHourMinute(inst.end)} UTC · gate ${fmtHourMinute(inst.gate_at)}`
      : "spot · work starts at the trade",
  );
  priceCell($("last-price"), inst.last_price);
  const { bids, asks } = sortedLevels(state.book);
  const bid = bids.length ? bids[0][0] : null;
  const ask = asks.length ? asks[0][0] : null;
  priceCell($("best-bid"), bid);
  priceCell($("best-ask"), ask);
  const spread = $("spread");
  if (bid != null && ask != null) {
    const bps = oneDecimal.format(((ask - bid) / ask) * 1e4);
    spread.replaceChildren(`${fmtInt(ask - bid)} µcr`, el("span", { class: "sub", text: `${bps} bps of the ask` }));
  } else {
    spread.replaceChildren("—");
  }
  const hourAgo = clock.now() - 3600e9;
  let volume = 0;
  for (const candle of state.candles[60].values()) {
    if (candle.start >= hourAgo - 60e9) volume += candle.volume;
  }
  $("volume").replaceChildren(
    `${fmtInt(volume)} lots`,
    el("span", { class: "sub", text: `${fmtInt(volume * inst.lot_cu)} CU` }),
  );
  $("terms").replaceChildren(
    `${fmtInt(inst.lot_cu)} CU/lot`,
    el("span", {
      class: "sub",
      text: `tick ${fmtInt(inst.tick)} µcr · fees ${inst.taker_fee_bps}/${inst.maker_fee_bps} bps taker/maker`,
    }),
  );
}

function priceCell(node, price) {
  if (price == null) {
    node.replaceChildren("—");
    return;
  }
  node.replaceChildren(
    `${fmtInt(price)} µcr`,
    el("span", { class: "sub", text: `${fmtCredits(price)} per lot` }),
  );
}

export function renderBook(state) {
  const book = state.book;
  const { bids, asks } = sortedLevels(book);
  const shownBids = bids.slice(0, BOOK_ROWS);
  const shownAsks = asks.slice(0, BOOK_ROWS);
  const cumulative = (levels) => {
    let total = 0;
    return levels.map(([price, qty]) => [price, qty, (total += qty)]);
  };
  const bidRows = cumulative(shownBids);
  const askRows = cumulative(shownAsks);
  const deepest = Math.max(1, ...bidRows.map((r) => r[2]), ...askRows.map((r) => r[2]));
  const row = (side, [price, qty, total]) => {
    const bar = el("div", { class: "bar" });
    bar.style.width = `${((total / deepest) * 100).toFixed(1)}%`;
    const flash = book.changed.has(`${side}:${price}`) ? " flash" : "";
    return el(
      "div",
      { class: `book-row${flash}`, "data-side": side, "data-price": String(price), "data-qty": String(qty) },
      bar,
      el("span", { text: fmtInt(price) }),
      el("span", { text: fmtInt(qty) }),
      el("span", { text: fmtInt(total) }),
    );
  };
  const none = (text) => el("div", { class: "none", text });
  $("asks").replaceChildren(
    ...(askRows.length ? askRows.reverse().map((r) => row("ask", r)) : [none("no asks")]),
  );
  $("bids").replaceChildren(
    ...(bidRows.length ? bidRows.map((r) => row("bid", r)) : [none("no bids")]),
  );
  book.changed = new Set();

  const mid = $("book-mid");
  if (bids.length && asks.length) {
    const spread = asks[0][0] - bids[0][0];
    mid.replaceChildren(
      el("span", {}, "mid ", el("strong", { text: fmtInt(Math.round((asks[0][0] + bids[0][0]) / 2)) })),
      el("span", { text: `spread ${fmtInt(spread)} µcr` }),
    );
  } else {
    mid.replaceChildren(el("span", { text: bids.length || asks.length ? "one-sided book" : "empty book" }));
  }

  let note;
  if (book.note && book.seq === null) note = book.note;
  else if (book.seq === null) note = "waiting for the snapshot…";
  else note = `seq ${fmtInt(book.seq)} · ${bids.length}+${asks.length} levels · checksum ok`;
  if (book.resyncs) note += ` · ${book.resyncs} resync${book.resyncs > 1 ? "s" : ""}`;
  setText("book-state", note);
}

export function renderTrades(state) {
  const rows = state.trades.map((t) => {
    const side = t.taker_side || "auction";
    return el(
      "tr",
      { class: t.live ? "new" : null, "data-trade-id": String(t.trade_id) },
      el("td", { class: "mono", text: fmtTime(t.ts) }),
      el("td", { class: `num side-${side}`, text: fmtInt(t.price) }),
      el("td", { class: "num", text: fmtInt(t.qty) }),
      el("td", { class: `side-${side}`, text: t.taker_side ? `${t.taker_side}` : "auction" }),
    );
  });
  for (const t of state.trades) t.live = false;
  $("trades").replaceChildren(...rows);
  $("trades-empty").hidden = rows.length > 0;
}

export function renderAuction(state) {
  const inst = state.instruments.get(state.selected);
  phaseBadge($("auction-phase"), inst && inst.phase);
  const ind = state.auction.indicative;
  setText("ind-price", ind && ind.price != null ? `${fmtInt(ind.price)} µcr` : "—");
  setText("ind-volume", ind ? `${fmtInt(ind.volume)} lots` : "—");
  setText("ind-surplus", ind ? fmtInt(ind.surplus) : "—");
  const last = state.auction.last;
  setText(
    "last-auction",
    last
      ? `${last.kind || "auction"} ${fmtTime(last.ts)}: ${last.price == null ? "no cross" : `${fmtInt(last.volume)} @ ${fmtInt(last.price)}`}`
      : "—",
  );
  const pending = (state.schedule.get(state.selected) || []).filter((s) => s.at > clock.now());
  const items = pending.map((s) => el("li", { text: `→ ${s.phase.replace("_", " ")} at ${fmtTime(s.at)} UTC (${fmtIn(s.at)})` }));
  if (!items.length && inst && inst.phase === "batch") {
    items.push(el("li", { text: "a call auction runs every batch interval" }));
  } else if (!items.length && inst && inst.phase === "continuous") {
    items.push(el("li", { text: "continuous trading: no auction pending" }));
  }
  $("schedule").replaceChildren(...items);
}

export function renderFutures(state) {
  const futures = [...state.instruments.values()]
    .filter((i) => i.kind === "future")
    .sort((a, b) => a.start - b.start || (a.symbol < b.symbol ? -1 : 1));
  const rows = futures.map((f) => {
    const delivery = state.deliveries.get(f.symbol);
    const phase = el("span", { class: "badge" });
    phaseBadge(phase, f.phase);
    if (delivery === "started") phase.textContent = "delivering";
    const settled = state.settlements.get(f.symbol);
    return el(
      "tr",
      { "data-symbol": f.symbol, class: f.symbol === state.selected ? "selected" : null },
      el(
        "td",
        { title: f.symbol },
        el("span", { class: "mono", text: `${fmtHourMinute(f.start)}–${fmtHourMinute(f.end)}` }),
        el("div", { class: "muted small", text: `${f.resource_class} · ${fmtDay(f.start)}` }),
      ),
      el("td", {}, phase),
      el(
        "td",
        {},
        el("span", { class: "mono", text: f.gate_at ? fmtHourMinute(f.gate_at) : "—" }),
        el("div", { class: "muted small", text: f.gate_at ? fmtIn(f.gate_at) : "" }),
      ),
      el("td", { class: "num", text: fmtInt(f.last_price) }),
      el("td", { class: "num", text: fmtInt(settled) }),
    );
  });
  $("futures").replaceChildren(...rows);
  $("futures-empty").hidden = rows.length > 0;
}
