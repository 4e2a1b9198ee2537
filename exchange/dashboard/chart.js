/*
 * The price chart: candles and their volume on a <canvas>, drawn by hand.
 *
 * The time axis has one slot per candle interval, so that a quiet interval
 * (which has no candle) shows as a gap. The window ends now, or after a quiet
 * spell longer than the window, just after the last candle.
 */

import { clock, fmtHourMinute, fmtInt, fmtTime } from "./format.js";

export const CANDLES_SHOWN = 60;

const COLORS = {
  grid: "#1c2738",
  axis: "#8794a8",
  up: "#2fd07f",
  down: "#ff5c6c",
  last: "#5aa9ff",
};
const AXIS_WIDTH = 64;

/**
 * Draw ``candles`` (any order) of ``interval`` seconds on ``canvas``; ``tick``
 * is the instrument's price step, so a flat market still gets a scale.
 */
export function drawChart(canvas, candles, interval, tick) {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  const ctx = prepare(canvas, width, height);

  const plot = { left: 8, top: 10, right: width - AXIS_WIDTH, bottom: height - 22 };
  const volumeHeight = (plot.bottom - plot.top) * 0.2;
  plot.priceBottom = plot.bottom - volumeHeight - 8;

  const slotOf = (ns) => Math.round(ns / 1e9 / interval);
  const all = [...candles].sort((a, b) => a.start - b.start);
  let lastSlot = Math.floor(clock.now() / 1e9 / interval);
  if (all.length && slotOf(all[all.length - 1].start) < lastSlot - CANDLES_SHOWN + 1) {
    lastSlot = slotOf(all[all.length - 1].start) + 2;
  }
  const firstSlot = lastSlot - CANDLES_SHOWN + 1;
  const shown = all.filter((c) => slotOf(c.start) >= firstSlot && slotOf(c.start) <= lastSlot);
  const slotWidth = (plot.right - plot.left) / CANDLES_SHOWN;
  const xOf = (slot) => plot.left + (slot - firstSlot + 0.5) * slotWidth;

  if (!shown.length) {
    drawGrid(ctx, plot, null);
    ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "center";
    ctx.font = "13px system-ui, sans-serif";
    ctx.fillText("No trades yet", (plot.left + plot.right) / 2, (plot.top + plot.priceBottom) / 2);
    return;
  }

  const scale = priceScale(shown, tick, plot);
  const last = shown[shown.length - 1].close;
  drawGrid(ctx, plot, { ...scale, lastY: scale.yOf(last) });

  const maxVolume = Math.max(...shown.map((c) => c.volume));
  const body = Math.max(1, slotWidth * 0.62);
  for (const c of shown) {
    drawCandle(ctx, c, xOf(slotOf(c.start)), body, scale.yOf);
    const v = (c.volume / maxVolume) * volumeHeight;
    ctx.globalAlpha = 0.35;
    ctx.fillRect(xOf(slotOf(c.start)) - body / 2, plot.bottom - v, body, v);
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

  drawLastPrice(ctx, plot, scale.yOf(last), last);
}

function prepare(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";
  return ctx;
}

/** The prices shown, padded, and the y of a price. */
function priceScale(shown, tick, plot) {
  let low = Math.min(...shown.map((c) => c.low));
  let high = Math.max(...shown.map((c) => c.high));
  if (high - low < tick * 4) {
    low -= tick * 2;
    high += tick * 2;
  }
  const pad = (high - low) * 0.08;
  low -= pad;
  high += pad;
  const yOf = (price) => plot.top + ((high - price) / (high - low)) * (plot.priceBottom - plot.top);
  return { low, high, yOf };
}

function drawCandle(ctx, c, x, body, yOf) {
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
}

/** Horizontal lines with their prices on the axis (none near the last price's
 * label, which would cover them). */
function drawGrid(ctx, plot, scale) {
  ctx.strokeStyle = COLORS.grid;
  ctx.fillStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.textAlign = "left";
  const lines = 5;
  for (let i = 0; i <= lines; i++) {
    const y = Math.round(plot.top + ((plot.priceBottom - plot.top) * i) / lines) + 0.5;
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

/** The last price: a dashed line across, its value in a box on the axis. */
function drawLastPrice(ctx, plot, y, price) {
  ctx.strokeStyle = COLORS.last;
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(plot.left, y);
  ctx.lineTo(plot.right, y);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = COLORS.last;
  ctx.fillRect(plot.right + 2, y - 9, AXIS_WIDTH - 4, 18);
  ctx.fillStyle = "#061021";
  ctx.textAlign = "left";
  ctx.fillText(fmtInt(price), plot.right + 6, y + 4);
}
