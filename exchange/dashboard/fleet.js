/*
 * The fleet panels: provider nodes with their capacity, utilisation and
 * reputation, and the recent jobs with the CU they spent against their budget.
 */

import { $, el, fmtCredits, fmtCu, fmtInt, fmtRate, meter, oneDecimal, setText } from "./format.js";

const BUSY_SAMPLES = 30; // one a poll: the last minute

/** Remember whether each node was busy at this poll, for its utilisation. */
export function sampleBusy(state, nodes) {
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
function utilisation(state, n) {
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
    detail += ` · ${fmtRate(rep.delivered_cu_per_second)}`;
  }
  if (bps == null) return el("span", { class: "small", text: detail });
  const cell = meter(bps / 1e4, `${oneDecimal.format(bps / 100)}%`, bps >= 9000 ? "good" : bps < 5000 ? "hot" : null);
  cell.append(el("div", { class: "muted small", text: detail }));
  return cell;
}

export function renderNodes(state) {
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
      el("td", { class: "num", text: fmtRate(n.cu_per_second) }),
      el("td", {}, utilisation(state, n)),
      el("td", {}, reputation(n.reputation)),
    ),
  );
  $("nodes").replaceChildren(...rows);
  $("nodes-empty").hidden = rows.length > 0;
  const total = nodes.reduce((sum, n) => sum + (n.cu_per_second || 0), 0);
  setText("nodes-count", state.nodes ? `${nodes.length} connected · ${fmtRate(total)}` : "—");
}

export function renderJobs(state) {
  const jobs = (state.jobs || []).slice(0, 20);
  $("jobs").replaceChildren(...jobs.map(jobRow));
  $("jobs-empty").hidden = jobs.length > 0;
  setText("jobs-count", state.jobs ? `${state.jobs.length} recent` : "—");
}

/** One job: id, symbol and tier; status, inputs done and its providers; CU
 * spent against the budget, with what the full model would have spent; cost
 * and refund in credits where the server gives them. */
function jobRow(j) {
  const spent = j.flops || 0;
  const budget = j.budget_flops || 0;
  const done = j.done_inputs ?? (j.status === "done" ? j.inputs : 0);
  const progress = j.inputs ? ` ${fmtInt(done)}/${fmtInt(j.inputs)}` : "";
  const failed = j.failed_inputs ? ` · ${fmtInt(j.failed_inputs)} failed` : "";
  const providers = j.providers && j.providers.length ? `on ${j.providers.join(", ")}` : "";
  const about = [j.symbol, j.tier].filter(Boolean).join(" · ");
  let full = "";
  if (j.full_flops && j.status === "done") {
    const saved = Math.max(0, j.full_flops - spent);
    full = `saved ${fmtCu(saved)} CU (${Math.round((saved / j.full_flops) * 100)}%) against the full model`;
  } else if (j.full_flops) {
    full = `full model: ${fmtCu(j.full_flops)} CU`;
  }
  const label = `${fmtCu(spent)} / ${budget ? fmtCu(budget) : "—"} CU`;
  const cu = meter(budget ? spent / budget : 0, label, budget && spent > 0.9 * budget ? "hot" : null);
  if (full) cu.append(el("div", { class: "muted small", text: full }));
  return el(
    "tr",
    { "data-job": String(j.job_id) },
    el(
      "td",
      {},
      el("span", { class: "mono", text: String(j.job_id) }),
      about ? el("div", { class: "muted small", text: about }) : null,
    ),
    el(
      "td",
      {},
      el("span", { class: `status-${j.status}`, text: `${j.status}${progress}${failed}` }),
      providers ? el("div", { class: "muted small", text: providers }) : null,
    ),
    el("td", {}, cu),
    el("td", { class: "num", text: fmtCredits(j.cost) }),
    el("td", { class: "num", text: fmtCredits(j.refund) }),
  );
}
