/*
 * cux dashboard: the live market, from the public REST API and websocket
 * channels of the server that served this page. Plain JavaScript, no build
 * step, nothing loaded from outside.
 *
 * Data flow:
 * - instruments: GET /api/v1/instruments (every few seconds, and when the
 *   "instruments" channel lists or delists one); phases live on "phases".
 * - the selected instrument: "book.<symbol>" with depth (snapshot, then
 *   updates whose seq must follow one by one and whose checksum must match,
 *   else the page subscribes again), "trades.<symbol>", "candles.<symbol>"
 *   and "auction.<symbol>"; the recent trades and candles come from REST.
 * - nodes: GET /api/v1/nodes every 2 s; jobs: GET /api/v1/jobs/recent every
 *   2 s where the server has that route (see /dashboard/features.json).
 *
 * Prices are integers in µcr per lot; credits are µcr / 1e6.
 */
"use strict";

(() => {
  const BOOK_DEPTH = 25; // levels per side on the book channel
  const BOOK_ROWS = 12; // levels per side shown
  const TRADES_KEPT = 60;
  const CANDLES_SHOWN = 60;
  const CANDLES_KEPT = 600;
  const POLL_MS = 2000;
  const INSTRUMENTS_POLL_MS = 5000;
  const FLOPS_PER_CU = 1e9;
  const NS_PER_MS = 1e6;

  const $ = (id) => document.getElementById(id);

  // -- formatting -------------------------------------------------------------

  const intFormat = new Intl.NumberFormat("en-US");
  const creditFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });
  const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  const fmtInt = (n) => (n == null ? "—" : intFormat.format(n));
  const fmtCredits = (micro) => (micro == null ? "—" : `${creditFormat.format(micro / 1e6)} cr`);
  const fmtCu = (flops) => {
    if (flops == null) return "—";
    const cu = flops / FLOPS_PER_CU;
    if (cu >= 1e6) return `${oneDecimal.format(cu / 1e6)}M`;
    if (cu >= 1e4) return `${oneDecimal.format(cu / 1e3)}k`;
    return oneDecimal.format(cu);
  };
  const utc = (ns) => new Date(ns / NS_PER_MS).toISOString();
  const fmtTime = (ns) => utc(ns).slice(11, 19);
  const fmtHourMinute = (ns) => utc(ns).slice(11, 16);
  const fmtDay = (ns) => utc(ns).slice(0, 10);
  const fmtIn = (ns) => {
    const seconds = Math.round((ns - serverNow()) / 1e9);
    if (seconds <= 0) return "passed";
    if (seconds < 120) return `in ${seconds}s`;
    if (seconds < 7200) return `in ${Math.round(seconds / 60)}m`;
    return `in ${oneDecimal.format(seconds / 3600)}h`;
  };

  /** An element with attributes (class, dataset via data-*, text) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value == null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "title") node.title = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child != null) node.append(child);
    }
    return node;
  }

  function setText(id, text) {
    const node = $(id);
    if (node.textContent !== text) node.textContent = text;
  }

  function phaseBadge(node, phase) {
    node.textContent = phase ? phase.replace("_", " ") : "—";
    node.className = `badge${phase ? ` phase-${phase}` : ""}`;
  }

  // -- state ------------------------------------------------------------------

  const state = {
    instruments: new Map(), // symbol -> REST instrument
    instrumentsKey: "",
    selected: null,
    generation: 0, // bumps on every (re)subscription of an instrument
    book: newBook(),
    trades: [], // newest first
    tradeIds: new Set(),
    candles: { 1: new Map(), 60: new Map() }, // interval -> start -> candle
    interval: 1,
    auction: { indicative: null, last: null },
    schedule: new Map(), // symbol -> [{phase, at}]
    settlements: new Map(), // symbol -> price
    deliveries: new Map(), // symbol -> "started" | "ended"
    nodes: null,
    busySamples: new Map(), // "account/node" -> [0|1, ...]
    jobs: null,
    features: { jobs_recent: false },
    clockOffsetMs: 0, // server clock minus this browser's
    ready: { book: false, channels: false, history: false },
  };

  function newBook() {
    return { seq: null, bids: new Map(), asks: new Map(), changed: new Set(), resyncs: 0, note: "" };
  }

  const serverNow = () => (Date.now() + state.clockOffsetMs) * NS_PER_MS;

  function setClock(serverTimeNs) {
    state.clockOffsetMs = serverTimeNs / NS_PER_MS - Date.now();
  }

  // -- rendering, batched per animation frame ----------------------------------

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

  // -- the websocket ----------------------------------------------------------

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
      setStatus("down", `offline, retrying in ${Math.round(delay / 1000) || 1}s`);
      setTimeout(connect, delay);
    };
  }

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

  function onMessage(m) {
    switch (m.type) {
      case "hello":
        setClock(m.server_time);
        onOpen();
        break;
      case "heartbeat":
        setClock(m.server_time);
        break;
      case "ack":
      case "error":
      case "result":
      case "subscribed":
      case "pong": {
        const handler = conn.pending.get(m.id);
        conn.pending.delete(m.id);
        if (handler) handler(m);
        break;
      }
      case "book":
        onBook(m);
        break;
      case "trade":
        onTrade(m);
        break;
      case "candle":
        onCandle(m);
        break;
      case "auction":
        onAuction(m);
        break;
      case "phase":
        onPhase(m);
        break;
      case "phase_scheduled":
        onPhaseScheduled(m);
        break;
      case "listed":
        loadInstruments();
        break;
      case "settlement":
        state.settlements.set(m.symbol, m.price);
        schedule("futures");
        break;
      case "delivery":
        state.deliveries.set(m.symbol, m.status);
        if (m.status === "ended") loadInstruments();
        schedule("futures");
        break;
      case "resync":
        onResync(m.channels);
        break;
      default:
        break;
    }
  }

  // -- the selected instrument -------------------------------------------------

  function channelsOf(symbol) {
    return [`trades.${symbol}`, `candles.${symbol}`, `auction.${symbol}`];
  }

  function select(symbol) {
    if (symbol === state.selected || !state.instruments.has(symbol)) return;
    const old = state.selected;
    state.selected = symbol;
    if (old && conn.open) {
      request({ op: "unsubscribe", channels: [`book.${old}`, ...channelsOf(old)] });
    }
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
    request({ op: "subscribe", channels: [`book.${symbol}`], depth: BOOK_DEPTH }, (reply) => {
      if (generation !== state.generation || reply.type !== "error") return;
      state.book.note = `unavailable: ${reply.message}`;
      schedule("book");
    });
  }

  /** Drop the mirror and subscribe to the book again, for a fresh snapshot. */
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

  // -- the book ---------------------------------------------------------------

  function onBook(m) {
    if (m.symbol !== state.selected) return;
    const book = state.book;
    if (m.snapshot) {
      book.bids = new Map(m.bids);
      book.asks = new Map(m.asks);
      book.changed = new Set();
    } else {
      if (book.seq === null) return; // an update of the old subscription
      if (m.seq !== book.seq + 1) {
        resyncBook(`gap: seq ${m.seq} after ${book.seq}`);
        return;
      }
      applyLevels(book.bids, m.bids, book.changed, "bid");
      applyLevels(book.asks, m.asks, book.changed, "ask");
    }
    book.seq = m.seq;
    if (bookChecksum(book) !== m.checksum) {
      resyncBook("checksum mismatch");
      return;
    }
    if (m.snapshot) {
      state.ready.book = true;
      updateReady();
    }
    schedule("book", "summary");
  }

  function applyLevels(side, levels, changed, name) {
    for (const [price, qty] of levels) {
      if (qty === 0) side.delete(price);
      else side.set(price, qty);
      changed.add(`${name}:${price}`);
    }
  }

  function sortedLevels(book) {
    const bids = [...book.bids.entries()].sort((a, b) => b[0] - a[0]);
    const asks = [...book.asks.entries()].sort((a, b) => a[0] - b[0]);
    return { bids, asks };
  }

  /** DESIGN section 8: CRC32 of "p:q,p:q|p:q,..." over the top 10 of each side. */
  function bookChecksum(book) {
    const { bids, asks } = sortedLevels(book);
    const text = (levels) => levels.slice(0, 10).map(([p, q]) => `${p}:${q}`).join(",");
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

  function crc32(ascii) {
    let crc = 0xffffffff;
    for (let i = 0; i < ascii.length; i++) {
      crc = CRC_TABLE[(crc ^ ascii.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
    }
    return (crc ^ 0xffffffff) >>> 0;
  }

  // -- trades, candles, auctions, phases --------------------------------------

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
    if (candles.size > CANDLES_KEPT) {
      const oldest = Math.min(...candles.keys());
      candles.delete(oldest);
    }
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
    if (pending) {
      state.schedule.set(m.symbol, pending.filter((s) => s.at > m.ts));
    }
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

  // -- REST ---------------------------------------------------------------------

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

  async function pollNodes() {
    try {
      const body = await fetchJson("/api/v1/nodes");
      state.nodes = body.nodes;
      sampleBusy(body.nodes);
    } catch (error) {
      state.nodes = null;
      setText("nodes-empty", `Could not load the nodes (${error.message}).`);
    }
    schedule("nodes");
    setTimeout(pollNodes, POLL_MS);
  }

  async function pollJobs() {
    try {
      const body = await fetchJson("/api/v1/jobs/recent");
      state.jobs = Array.isArray(body) ? body : body.jobs || [];
    } catch (error) {
      state.jobs = null;
      setText("jobs-empty", `Could not load the jobs (${error.message}).`);
    }
    schedule("jobs");
    setTimeout(pollJobs, POLL_MS);
  }

  async function start() {
    wireControls();
    connect();
    pollNodes();
    try {
      state.features = await fetchJson("/dashboard/features.json");
    } catch (error) {
      state.features = { jobs_recent: false };
    }
    if (state.features.jobs_recent) pollJobs();
    else setText("jobs-empty", "This server runs no jobs yet: the job service is not part of it.");
    schedule("jobs");
    setInterval(() => {
      loadInstruments();
    }, INSTRUMENTS_POLL_MS);
    setInterval(() => {
      schedule("clock", "chart", "futures");
    }, 1000);
  }

  // -- readiness (the page's own signal that it shows the live instrument) ------

  function resetReady() {
    state.ready = { book: false, channels: false, history: false };
    updateReady();
  }

  function updateReady() {
    const r = state.ready;
    const ready = r.book && r.channels && r.history ? state.selected : "";
    $("app").dataset.ready = ready || "";
  }

  function setStatus(kind, text) {
    const pill = $("conn");
    pill.className = `pill pill-${kind}`;
    pill.textContent = text;
  }

  // -- controls ---------------------------------------------------------------

  function wireControls() {
    $("instrument-list").addEventListener("click", (event) => {
      const button = event.target.closest("button[data-symbol]");
      if (button) select(button.dataset.symbol);
    });
    $("futures").addEventListener("click", (event) => {
      const row = event.target.closest("tr[data-symbol]");
      if (row) select(row.dataset.symbol);
    });
    for (const button of document.querySelectorAll(".seg-btn")) {
      button.addEventListener("click", () => {
        state.interval = Number(button.dataset.interval);
        for (const b of document.querySelectorAll(".seg-btn")) {
          b.classList.toggle("active", b === button);
        }
        schedule("chart");
      });
    }
    window.addEventListener("hashchange", () => {
      select(decodeURIComponent(location.hash.slice(1)));
    });
    new ResizeObserver(() => schedule("chart")).observe($("chart"));
  }

  // -- renderers ----------------------------------------------------------------

  function renderClock() {
    setText("clock", `${utc(serverNow()).slice(0, 19).replace("T", " ")} UTC`);
  }

  let listKey = "";

  /** The instrument list; rebuilt only when the instruments or the selection
   * change, so that a click is never lost to a rebuild during live updates. */
  function renderList() {
    const all = [...state.instruments.values()];
    $("instrument-empty").hidden = all.length > 0;
    const key = `${state.selected}|${all.map((i) => i.symbol).join(",")}`;
    if (key !== listKey) {
      listKey = key;
      $("instrument-list").replaceChildren(...listItems(all));
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

  function listItems(all) {
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

  function renderSummary() {
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
    const hourAgo = serverNow() - 3600e9;
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

  function renderBook() {
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

  function renderTrades() {
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

  function renderAuction() {
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
    const pending = (state.schedule.get(state.selected) || []).filter((s) => s.at > serverNow());
    const items = pending.map((s) => el("li", { text: `→ ${s.phase.replace("_", " ")} at ${fmtTime(s.at)} UTC (${fmtIn(s.at)})` }));
    if (!items.length && inst && inst.phase === "batch") {
      items.push(el("li", { text: "a call auction runs every batch interval" }));
    } else if (!items.length && inst && inst.phase === "continuous") {
      items.push(el("li", { text: "continuous trading: no auction pending" }));
    }
    $("schedule").replaceChildren(...items);
  }

  function renderFutures() {
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

  function meter(fraction, label, tone) {
    const bar = el("span");
    bar.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
    return el(
      "div",
      {},
      el("div", { class: "meter-label", text: label }),
      el("div", { class: `meter${tone ? ` ${tone}` : ""}` }, bar),
    );
  }

  const BUSY_SAMPLES = 30; // one a poll: the last minute

  /** Remember whether each node was busy at this poll, for its utilisation. */
  function sampleBusy(nodes) {
    const seen = new Set();
    for (const n of nodes) {
      const key = `${n.account}/${n.node_id}`;
      seen.add(key);
      if (n.busy == null) continue;
      const samples = state.busySamples.get(key) || [];
      samples.push(n.busy > 0 ? 1 : 0);
      if (samples.length > BUSY_SAMPLES) samples.shift();
      state.busySamples.set(key, samples);
    }
    for (const key of [...state.busySamples.keys()]) {
      if (!seen.has(key)) state.busySamples.delete(key);
    }
  }

  /** "busy" is the number of shards a node runs now; utilisation is the share
   * of the last minute's polls that found it running one. */
  function utilisation(n) {
    if (n.busy == null) return el("span", { class: "muted", text: "—" });
    const samples = state.busySamples.get(`${n.account}/${n.node_id}`) || [];
    const share = samples.length ? samples.reduce((a, b) => a + b, 0) / samples.length : 0;
    const running = n.busy ? `${fmtInt(n.busy)} shard${n.busy > 1 ? "s" : ""} running` : "idle";
    const cell = meter(share, `${Math.round(share * 100)}% busy`, share > 0.8 ? "hot" : null);
    cell.append(el("div", { class: "muted small", text: running }));
    return cell;
  }

  function reputation(rep) {
    if (!rep || typeof rep !== "object") return el("span", { class: "muted", text: "—" });
    const bps = rep.reputation_bps;
    let detail = `${fmtInt(rep.shards_done)} done · ${fmtInt(rep.shards_failed)} failed · ${fmtCu(rep.flops_delivered)} CU`;
    if (rep.delivered_cu_per_second != null) {
      detail += ` · ${oneDecimal.format(rep.delivered_cu_per_second)} CU/s`;
    }
    if (bps == null) return el("span", { class: "small", text: detail });
    const cell = meter(bps / 1e4, `${oneDecimal.format(bps / 100)}%`, bps >= 9000 ? "good" : bps < 5000 ? "hot" : null);
    cell.append(el("div", { class: "muted small", text: detail }));
    return cell;
  }

  function renderNodes() {
    const nodes = state.nodes || [];
    const rows = nodes.map((n) =>
      el(
        "tr",
        { "data-node": `${n.account}/${n.node_id}` },
        el(
          "td",
          {},
          el("span", { class: "mono", text: n.node_id }),
          el("div", { class: "muted small", text: `${n.account}${n.model ? ` · ${n.model}` : ""}` }),
        ),
        el("td", { text: n.resource_class }),
        el("td", { class: "num", text: `${oneDecimal.format(n.cu_per_second)} CU/s` }),
        el("td", {}, utilisation(n)),
        el("td", {}, reputation(n.reputation)),
      ),
    );
    $("nodes").replaceChildren(...rows);
    $("nodes-empty").hidden = rows.length > 0;
    const total = nodes.reduce((sum, n) => sum + (n.cu_per_second || 0), 0);
    setText("nodes-count", state.nodes ? `${nodes.length} connected · ${oneDecimal.format(total)} CU/s` : "—");
  }

  function renderJobs() {
    const jobs = (state.jobs || []).slice(0, 20);
    const rows = jobs.map((j) => {
      const spent = j.flops || 0;
      const budget = j.budget_flops || 0;
      const progress = j.inputs ? ` ${fmtInt(j.done_inputs ?? (j.status === "done" ? j.inputs : 0))}/${fmtInt(j.inputs)}` : "";
      const saved = j.full_flops ? ` · saved ${fmtCu(Math.max(0, j.full_flops - spent))}` : "";
      return el(
        "tr",
        { "data-job": String(j.job_id) },
        el("td", { class: "mono", text: String(j.job_id) }),
        el("td", { class: `status-${j.status}`, text: `${j.status}${progress}` }),
        el(
          "td",
          {},
          meter(budget ? spent / budget : 0, `${fmtCu(spent)} / ${budget ? fmtCu(budget) : "—"} CU${saved}`, budget && spent > 0.9 * budget ? "hot" : null),
        ),
        el("td", { class: "num", text: fmtCredits(j.cost) }),
        el("td", { class: "num", text: fmtCredits(j.refund) }),
      );
    });
    $("jobs").replaceChildren(...rows);
    $("jobs-empty").hidden = rows.length > 0;
    setText("jobs-count", state.jobs ? `${state.jobs.length} recent` : "—");
  }

  // -- the price chart ------------------------------------------------------------

  const COLORS = {
    grid: "#1c2738",
    axis: "#8794a8",
    up: "#2fd07f",
    down: "#ff5c6c",
    last: "#5aa9ff",
  };

  function renderChart() {
    const canvas = $("chart");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";

    const interval = state.interval;
    const all = [...state.candles[interval].values()].sort((a, b) => a.start - b.start);
    const axisWidth = 64;
    const plot = { left: 8, top: 10, right: width - axisWidth, bottom: height - 22 };
    const volumeHeight = (plot.bottom - plot.top) * 0.2;
    const priceBottom = plot.bottom - volumeHeight - 8;

    // The window ends now; after a quiet spell, at the last candle instead.
    const slotOf = (ns) => Math.round(ns / 1e9 / interval);
    const nowSlot = Math.floor(serverNow() / 1e9 / interval);
    let lastSlot = nowSlot;
    if (all.length && slotOf(all[all.length - 1].start) < nowSlot - CANDLES_SHOWN + 1) {
      lastSlot = slotOf(all[all.length - 1].start) + 2;
    }
    const firstSlot = lastSlot - CANDLES_SHOWN + 1;
    const shown = all.filter((c) => slotOf(c.start) >= firstSlot && slotOf(c.start) <= lastSlot);
    const slotWidth = (plot.right - plot.left) / CANDLES_SHOWN;
    const xOf = (slot) => plot.left + (slot - firstSlot + 0.5) * slotWidth;

    if (!shown.length) {
      drawGrid(ctx, plot, priceBottom, null);
      ctx.fillStyle = COLORS.axis;
      ctx.textAlign = "center";
      ctx.font = "13px system-ui, sans-serif";
      ctx.fillText("No trades yet", (plot.left + plot.right) / 2, (plot.top + priceBottom) / 2);
      return;
    }

    let low = Math.min(...shown.map((c) => c.low));
    let high = Math.max(...shown.map((c) => c.high));
    const inst = state.instruments.get(state.selected);
    const tick = inst ? inst.tick : 1;
    if (high - low < tick * 4) {
      low -= tick * 2;
      high += tick * 2;
    }
    const pad = (high - low) * 0.08;
    low -= pad;
    high += pad;
    const yOf = (price) => plot.top + ((high - price) / (high - low)) * (priceBottom - plot.top);
    const last = shown[shown.length - 1].close;
    drawGrid(ctx, plot, priceBottom, { low, high, lastY: yOf(last) });

    const maxVolume = Math.max(...shown.map((c) => c.volume));
    const body = Math.max(1, slotWidth * 0.62);
    for (const c of shown) {
      const x = xOf(slotOf(c.start));
      const color = c.close >= c.open ? COLORS.up : COLORS.down;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, yOf(c.high));
      ctx.lineTo(Math.round(x) + 0.5, yOf(c.low));
      ctx.stroke();
      const top = yOf(Math.max(c.open, c.close));
      const bottom = yOf(Math.min(c.open, c.close));
      ctx.fillRect(x - body / 2, top, body, Math.max(1.5, bottom - top));
      const v = (c.volume / maxVolume) * volumeHeight;
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x - body / 2, plot.bottom - v, body, v);
      ctx.globalAlpha = 1;
    }

    // Time labels, about every 90 px.
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "center";
    const every = Math.max(1, Math.ceil(90 / slotWidth));
    for (let slot = lastSlot; slot >= firstSlot; slot -= every) {
      const ns = slot * interval * 1e9;
      ctx.fillText(interval >= 60 ? fmtHourMinute(ns) : fmtTime(ns), xOf(slot), height - 6);
    }

    // The last price, dashed, with its label on the axis.
    const y = yOf(last);
    ctx.strokeStyle = COLORS.last;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(plot.left, y);
    ctx.lineTo(plot.right, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = COLORS.last;
    ctx.fillRect(plot.right + 2, y - 9, axisWidth - 4, 18);
    ctx.fillStyle = "#061021";
    ctx.textAlign = "left";
    ctx.fillText(fmtInt(last), plot.right + 6, y + 4);
  }

  function drawGrid(ctx, plot, priceBottom, scale) {
    ctx.strokeStyle = COLORS.grid;
    ctx.fillStyle = COLORS.axis;
    ctx.lineWidth = 1;
    ctx.textAlign = "left";
    const lines = 5;
    for (let i = 0; i <= lines; i++) {
      const y = Math.round(plot.top + ((priceBottom - plot.top) * i) / lines) + 0.5;
      ctx.beginPath();
      ctx.moveTo(plot.left, y);
      ctx.lineTo(plot.right, y);
      ctx.stroke();
      if (scale && Math.abs(y - scale.lastY) > 12) {
        const price = scale.high - ((scale.high - scale.low) * i) / lines;
        ctx.fillText(fmtInt(Math.round(price)), plot.right + 6, y + 4);
      }
    }
    ctx.beginPath();
    ctx.moveTo(plot.left, Math.round(plot.bottom) + 0.5);
    ctx.lineTo(plot.right, Math.round(plot.bottom) + 0.5);
    ctx.stroke();
  }

  const RENDERERS = {
    clock: renderClock,
    list: renderList,
    summary: renderSummary,
    book: renderBook,
    trades: renderTrades,
    chart: renderChart,
    auction: renderAuction,
    futures: renderFutures,
    nodes: renderNodes,
    jobs: renderJobs,
  };

  start();
})();
