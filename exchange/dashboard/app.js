/*
 * cux dashboard: the live market, from the public REST API and websocket
 * channels of the server that served this page. Plain JavaScript modules, no
 * build step, nothing loaded from outside. This module holds the state and
 * keeps it live; market.js, fleet.js and chart.js draw it.
 *
 * Data flow:
 * - instruments: GET /api/v1/instruments (every few seconds, and when the
 *   "instruments" channel lists or delists one); phases live on "phases".
 * - the selected instrument: "book.<symbol>" with depth (snapshot, then
 *   updates whose seq must follow one by one and whose checksum must match,
 *   else the page subscribes again, see book.js), "trades.<symbol>",
 *   "candles.<symbol>" and "auction.<symbol>"; the recent trades and candles
 *   come from REST, merged by trade id and candle start.
 * - nodes: GET /api/v1/nodes every 2 s; jobs: GET /api/v1/jobs/recent every
 *   2 s where the server has that route (see /dashboard/features.json).
 *
 * When the page shows the selected instrument live (book snapshot, channels
 * subscribed, history loaded) it sets #app[data-ready] to its symbol.
 */

import { applyBookMessage, newBook } from "./book.js";
import { drawChart } from "./chart.js";
import { renderJobs, renderNodes, sampleBusy } from "./fleet.js";
import { $, clock, setText, utc } from "./format.js";
import {
  renderAuction,
  renderBook,
  renderFutures,
  renderList,
  renderSummary,
  renderTrades,
} from "./market.js";

const BOOK_DEPTH = 25; // levels per side on the book channel
const TRADES_KEPT = 60;
const CANDLES_KEPT = 600;
const POLL_MS = 2000;
const INSTRUMENTS_POLL_MS = 5000;

const state = {
  instruments: new Map(), // symbol -> instrument as REST gives it
  instrumentsKey: "",
  selected: null,
  generation: 0, // one more on every (re)subscription of an instrument
  book: newBook(),
  trades: [], // newest first
  tradeIds: new Set(),
  candles: { 1: new Map(), 60: new Map() }, // interval -> start -> candle
  interval: 1, // the chart's candles, in seconds
  auction: { indicative: null, last: null },
  schedule: new Map(), // symbol -> [{phase, at}]
  settlements: new Map(), // symbol -> price
  deliveries: new Map(), // symbol -> "started" | "ended"
  nodes: null,
  busySamples: new Map(), // "account/node" -> [0 | 1, ...]
  jobs: null,
  features: { jobs_recent: false },
  ready: { book: false, channels: false, history: false },
};

// -- rendering, batched per animation frame ------------------------------------

const RENDERERS = {
  clock: () => setText("clock", `${utc(clock.now()).slice(0, 19).replace("T", " ")} UTC`),
  list: () => renderList(state),
  summary: () => renderSummary(state),
  book: () => renderBook(state),
  trades: () => renderTrades(state),
  chart: () => {
    const inst = state.instruments.get(state.selected);
    const candles = state.candles[state.interval].values();
    drawChart($("chart"), candles, state.interval, inst ? inst.tick : 1);
  },
  auction: () => renderAuction(state),
  futures: () => renderFutures(state),
  nodes: () => renderNodes(state),
  jobs: () => renderJobs(state),
};

const dirty = new Set();
let frame = 0;

function schedule(...parts) {
  for (const part of parts) dirty.add(part);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const parts = [...dirty];
  dirty.clear();
  for (const part of parts) RENDERERS[part]();
}

// -- the websocket ---------------------------------------------------------------

const conn = { ws: null, nextId: 1, pending: new Map(), retries: 0, open: false };

function connect() {
  setStatus("wait", "connecting…");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  conn.ws = ws;
  ws.onmessage = (event) => {
    if (conn.ws === ws) onMessage(JSON.parse(event.data));
  };
  ws.onclose = () => {
    if (conn.ws !== ws) return;
    conn.open = false;
    conn.pending.clear();
    resetReady();
    const delay = Math.min(10000, 500 * 2 ** conn.retries);
    conn.retries += 1;
    setStatus("down", `offline, retrying in ${Math.ceil(delay / 1000)}s`);
    setTimeout(connect, delay);
  };
}

/** Send a request with the next id; ``onReply`` gets its response. */
function request(message, onReply) {
  if (!conn.open) return;
  const id = conn.nextId++;
  if (onReply) conn.pending.set(id, onReply);
  conn.ws.send(JSON.stringify({ ...message, id }));
}

function onOpen() {
  conn.open = true;
  conn.retries = 0;
  setStatus("live", "live");
  request({ op: "subscribe", channels: ["phases", "instruments"] });
  loadInstruments();
  if (state.selected) subscribeInstrument(state.selected);
}

const HANDLERS = {
  hello: (m) => {
    clock.set(m.server_time);
    onOpen();
  },
  heartbeat: (m) => clock.set(m.server_time),
  book: onBook,
  trade: onTrade,
  candle: onCandle,
  auction: onAuction,
  phase: onPhase,
  phase_scheduled: onPhaseScheduled,
  listed: () => loadInstruments(),
  settlement: (m) => {
    state.settlements.set(m.symbol, m.price);
    schedule("futures");
  },
  delivery: (m) => {
    state.deliveries.set(m.symbol, m.status);
    if (m.status === "ended") loadInstruments();
    schedule("futures");
  },
  resync: (m) => onResync(m.channels),
};

const RESPONSES = new Set(["ack", "error", "result", "subscribed", "pong"]);

function onMessage(m) {
  if (RESPONSES.has(m.type)) {
    const handler = conn.pending.get(m.id);
    conn.pending.delete(m.id);
    if (handler) handler(m);
    return;
  }
  const handler = HANDLERS[m.type];
  if (handler) handler(m);
}

// -- the selected instrument -------------------------------------------------------

function channelsOf(symbol) {
  return [`trades.${symbol}`, `candles.${symbol}`, `auction.${symbol}`];
}

function select(symbol) {
  if (symbol === state.selected || !state.instruments.has(symbol)) return;
  const old = state.selected;
  state.selected = symbol;
  if (old) request({ op: "unsubscribe", channels: [`book.${old}`, ...channelsOf(old)] });
  if (location.hash.slice(1) !== symbol) history.replaceState(null, "", `#${symbol}`);
  subscribeInstrument(symbol);
  schedule("list", "summary", "futures");
}

function subscribeInstrument(symbol) {
  const generation = ++state.generation;
  resetReady();
  state.book = newBook();
  state.trades = [];
  state.tradeIds = new Set();
  state.candles = { 1: new Map(), 60: new Map() };
  state.auction = { indicative: null, last: null };
  schedule("book", "trades", "chart", "auction", "summary");

  subscribeBook(symbol, generation);
  request({ op: "subscribe", channels: channelsOf(symbol) }, (reply) => {
    if (generation !== state.generation || reply.type !== "subscribed") return;
    state.ready.channels = true;
    loadHistory(symbol, generation);
  });
}

function subscribeBook(symbol, generation) {
  const message = { op: "subscribe", channels: [`book.${symbol}`], depth: BOOK_DEPTH };
  request(message, (reply) => {
    if (generation !== state.generation || reply.type !== "error") return;
    state.book.note = `unavailable: ${reply.message}`;
    schedule("book");
  });
}

/** Drop the copy of the book and subscribe again, for a fresh snapshot. */
function resyncBook(reason) {
  const symbol = state.selected;
  const resyncs = state.book.resyncs + 1;
  state.book = newBook();
  state.book.resyncs = resyncs;
  state.book.note = `resubscribed: ${reason}`;
  state.ready.book = false;
  updateReady();
  request({ op: "unsubscribe", channels: [`book.${symbol}`] });
  subscribeBook(symbol, state.generation);
  schedule("book");
}

/** The server dropped messages of ``channels`` (this page fell behind). */
function onResync(channels) {
  if (channels.includes("phases") || channels.includes("instruments")) {
    request({ op: "unsubscribe", channels: ["phases", "instruments"] });
    request({ op: "subscribe", channels: ["phases", "instruments"] });
    loadInstruments();
  }
  const symbol = state.selected;
  if (!symbol) return;
  if (channelsOf(symbol).some((c) => channels.includes(c))) {
    request({ op: "unsubscribe", channels: [`book.${symbol}`, ...channelsOf(symbol)] });
    subscribeInstrument(symbol);
  } else if (channels.includes(`book.${symbol}`)) {
    resyncBook("the server dropped updates");
  }
}

async function loadHistory(symbol, generation) {
  const path = encodeURIComponent(symbol);
  try {
    const [trades, fast, slow] = await Promise.all([
      fetchJson(`/api/v1/trades/${path}?limit=${TRADES_KEPT}`),
      fetchJson(`/api/v1/candles/${path}?interval=1&limit=${CANDLES_KEPT}`),
      fetchJson(`/api/v1/candles/${path}?interval=60&limit=120`),
    ]);
    if (generation !== state.generation) return;
    for (const trade of trades.trades) addTrade(trade, false);
    for (const candle of [...fast.candles, ...slow.candles]) addCandle(candle);
    state.ready.history = true;
    updateReady();
    schedule("trades", "chart", "summary");
  } catch (error) {
    if (generation !== state.generation) return;
    setText("trades-empty", `Could not load the recent trades (${error.message}).`);
  }
}

// -- market data -------------------------------------------------------------------

function onBook(m) {
  if (m.symbol !== state.selected) return;
  const outcome = applyBookMessage(state.book, m);
  if (outcome === "stale") return;
  if (outcome !== "ok") {
    resyncBook(outcome);
    return;
  }
  if (m.snapshot) {
    state.ready.book = true;
    updateReady();
  }
  schedule("book", "summary");
}

function onTrade(m) {
  if (m.symbol !== state.selected) return;
  addTrade(m, true);
  const inst = state.instruments.get(m.symbol);
  if (inst) inst.last_price = m.price;
  schedule("trades", "summary", "list");
}

function addTrade(trade, live) {
  if (state.tradeIds.has(trade.trade_id)) return;
  state.tradeIds.add(trade.trade_id);
  state.trades.push({ ...trade, live });
  state.trades.sort((a, b) => b.trade_id - a.trade_id);
  while (state.trades.length > TRADES_KEPT) {
    state.tradeIds.delete(state.trades.pop().trade_id);
  }
}

function onCandle(m) {
  if (m.symbol !== state.selected) return;
  addCandle(m);
  schedule("chart", "summary");
}

function addCandle(candle) {
  const candles = state.candles[candle.interval];
  if (!candles) return;
  candles.set(candle.start, candle);
  if (candles.size > CANDLES_KEPT) candles.delete(Math.min(...candles.keys()));
}

function onAuction(m) {
  if (m.symbol !== state.selected) return;
  if (m.indicative) {
    state.auction.indicative = m;
  } else {
    state.auction.last = m;
    state.auction.indicative = null;
  }
  schedule("auction");
}

function onPhase(m) {
  const inst = state.instruments.get(m.symbol);
  if (inst) inst.phase = m.phase;
  const pending = state.schedule.get(m.symbol);
  if (pending) state.schedule.set(m.symbol, pending.filter((s) => s.at > m.ts));
  if (m.symbol === state.selected && (m.phase === "continuous" || m.phase === "halted")) {
    state.auction.indicative = null;
  }
  schedule("list", "summary", "auction", "futures");
}

function onPhaseScheduled(m) {
  const pending = state.schedule.get(m.symbol) || [];
  pending.push({ phase: m.phase, at: m.at, interval_ms: m.interval_ms });
  pending.sort((a, b) => a.at - b.at);
  state.schedule.set(m.symbol, pending);
  schedule("auction");
}

// -- REST --------------------------------------------------------------------------

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

let instrumentsLoading = false;

async function loadInstruments() {
  if (instrumentsLoading) return;
  instrumentsLoading = true;
  try {
    const body = await fetchJson("/api/v1/instruments");
    const key = JSON.stringify(body.instruments);
    if (key !== state.instrumentsKey) {
      state.instrumentsKey = key;
      state.instruments = new Map(body.instruments.map((i) => [i.symbol, i]));
      for (const i of body.instruments) {
        if (i.settlement != null) state.settlements.set(i.symbol, i.settlement);
      }
      schedule("list", "summary", "futures");
    }
    if (!state.instruments.has(state.selected)) {
      // First load, or the selected future was delisted.
      state.selected = null;
      const wanted = decodeURIComponent(location.hash.slice(1));
      select(state.instruments.has(wanted) ? wanted : defaultSymbol());
    }
  } catch (error) {
    setText("instrument-empty", `Could not load the instruments (${error.message}).`);
  } finally {
    instrumentsLoading = false;
  }
}

function defaultSymbol() {
  const all = [...state.instruments.values()];
  const spot = all.find((i) => i.kind === "spot");
  return (spot || all[0] || {}).symbol;
}

/** Poll ``path`` every 2 s while the websocket is up (so not while the
 * server is away); ``take`` keeps the answer, or null and the error. */
function poll(path, take) {
  const next = async () => {
    if (!conn.open) {
      setTimeout(next, 250);
      return;
    }
    try {
      take(await fetchJson(path), null);
    } catch (error) {
      take(null, error);
    }
    setTimeout(next, POLL_MS);
  };
  next();
}

function takeNodes(body, error) {
  state.nodes = body ? body.nodes : null;
  if (body) sampleBusy(state, body.nodes);
  else setText("nodes-empty", `Could not load the nodes (${error.message}).`);
  schedule("nodes");
}

function takeJobs(body, error) {
  state.jobs = body ? (Array.isArray(body) ? body : body.jobs || []) : null;
  if (!body) setText("jobs-empty", `Could not load the jobs (${error.message}).`);
  schedule("jobs");
}

// -- readiness, status, controls ---------------------------------------------------

function resetReady() {
  state.ready = { book: false, channels: false, history: false };
  updateReady();
}

function updateReady() {
  const r = state.ready;
  $("app").dataset.ready = r.book && r.channels && r.history ? state.selected : "";
}

function setStatus(kind, text) {
  const pill = $("conn");
  pill.className = `pill pill-${kind}`;
  pill.textContent = text;
}

function wireControls() {
  $("instrument-list").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-symbol]");
    if (button) select(button.dataset.symbol);
  });
  $("futures").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-symbol]");
    if (row) select(row.dataset.symbol);
  });
  const buttons = document.querySelectorAll(".seg-btn");
  for (const button of buttons) {
    button.addEventListener("click", () => {
      state.interval = Number(button.dataset.interval);
      for (const b of buttons) b.classList.toggle("active", b === button);
      schedule("chart");
    });
  }
  window.addEventListener("hashchange", () => select(decodeURIComponent(location.hash.slice(1))));
  new ResizeObserver(() => schedule("chart")).observe($("chart"));
}

async function start() {
  wireControls();
  connect();
  poll("/api/v1/nodes", takeNodes);
  try {
    state.features = await fetchJson("/dashboard/features.json");
  } catch (error) {
    state.features = { jobs_recent: false };
  }
  if (state.features.jobs_recent) {
    poll("/api/v1/jobs/recent", takeJobs);
  } else {
    setText("jobs-empty", "This server runs no jobs yet: it has no job service.");
  }
  schedule("jobs");
  setInterval(() => {
    if (conn.open) loadInstruments();
  }, INSTRUMENTS_POLL_MS);
  setInterval(() => schedule("clock", "chart", "futures", "auction"), 1000);
}

start();
