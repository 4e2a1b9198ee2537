/*
 * Numbers, times and small DOM helpers for the dashboard.
 *
 * Prices and money arrive as integers in µcr; credits are µcr / 1e6. Times
 * arrive in ns since the epoch and are shown in UTC, like the futures'
 * delivery windows.
 */

export const FLOPS_PER_CU = 1e9;
export const NS_PER_MS = 1e6;

/** The server's clock, from its hello and heartbeats. */
export const clock = {
  offsetMs: 0, // server clock minus this browser's
  set(serverTimeNs) {
    this.offsetMs = serverTimeNs / NS_PER_MS - Date.now();
  },
  /** Now on the server, in ns since the epoch. */
  now() {
    return (Date.now() + this.offsetMs) * NS_PER_MS;
  },
};

const intFormat = new Intl.NumberFormat("en-US");
const creditFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });
export const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const threeDigits = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });

/** A rate in CU/s to three significant digits, so that a slow node (a demo's
 * node on its simulated clock delivers a few hundredths of a CU a simulated
 * second) shows as 0.025, not as 0. */
export const fmtRate = (cuPerSecond) =>
  cuPerSecond == null ? "—" : `${threeDigits.format(cuPerSecond)} CU/s`;

export const fmtInt = (n) => (n == null ? "—" : intFormat.format(n));
export const fmtCredits = (micro) =>
  micro == null ? "—" : `${creditFormat.format(micro / 1e6)} cr`;

/** FLOPs as CU, shortened: 950, 12.5k, 3.2M. */
export function fmtCu(flops) {
  if (flops == null) return "—";
  const cu = flops / FLOPS_PER_CU;
  if (cu >= 1e6) return `${oneDecimal.format(cu / 1e6)}M`;
  if (cu >= 1e4) return `${oneDecimal.format(cu / 1e3)}k`;
  return oneDecimal.format(cu);
}

export const utc = (ns) => new Date(ns / NS_PER_MS).toISOString();
export const fmtTime = (ns) => utc(ns).slice(11, 19);
export const fmtHourMinute = (ns) => utc(ns).slice(11, 16);
export const fmtDay = (ns) => utc(ns).slice(0, 10);

/** How long until ``ns`` on the server's clock: "in 40s", "in 12m", "passed". */
export function fmtIn(ns) {
  const seconds = Math.round((ns - clock.now()) / 1e9);
  if (seconds <= 0) return "passed";
  if (seconds < 120) return `in ${seconds}s`;
  if (seconds < 7200) return `in ${Math.round(seconds / 60)}m`;
  return `in ${oneDecimal.format(seconds / 3600)}h`;
}

export const $ = (id) => document.getElementById(id);

/** An element with attributes ("class", "text", "title", others as is) and
 * children. Text always goes in as text, never as HTML. */
export function el(tag, attrs = {}, ...children) {
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

export function setText(id, text) {
  const node = $(id);
  if (node.textContent !== text) node.textContent = text;
}

export function phaseBadge(node, phase) {
  node.textContent = phase ? phase.replace("_", " ") : "—";
  node.className = `badge${phase ? ` phase-${phase}` : ""}`;
}

/** A label over a bar filled to ``fraction`` (0 to 1); ``tone`` "hot" or "good". */
export function meter(fraction, label, tone) {
  const bar = el("span");
  bar.style.width = `${Math.max(0, Math.min(1, fraction)) * 100}%`;
  return el(
    "div",
    {},
    el("div", { class: "meter-label", text: label }),
    el("div", { class: `meter${tone ? ` ${tone}` : ""}` }, bar),
  );
}
