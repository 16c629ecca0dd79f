// The Nexus dashboard: plain ES module, no dependencies. Reads a JWT from ?token= (kept in
// sessionStorage, removed from the address bar) or a login form; follows the tenant's
// campaigns, the selected campaign's events and the dead letters over the gateway's
// WebSocket (resuming from the last sequence seen after a reconnect); sends commands over
// the HTTP API. Everything on the page is derived from the events.

const $ = (sel) => document.querySelector(sel)
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c])
const MAX_CONTACTS = 500
const MAX_HISTORY = 240

const state = {
  token: null, who: null, ws: null, selected: null, selectedContact: null,
  campaigns: new Map(), deadLetters: new Map(), feedSeq: { campaigns: 0, "dead-letters": 0 }, campaignSeq: new Map()
}

const toast = (text) => {
  const t = $("#toast"); t.textContent = text; t.classList.add("show")
  clearTimeout(toast.timer); toast.timer = setTimeout(() => t.classList.remove("show"), 4000)
}

const api = async (method, path, body) => {
  const res = await fetch(path, {
    method, headers: { authorization: `Bearer ${state.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(`${res.status} ${json.error ?? ""}: ${json.message ?? ""}`)
  return json
}

const campaignOf = (id) => {
  let c = state.campaigns.get(id)
  if (!c) {
    c = { id, name: id, goal: "", targetCount: 0, budget: null, plan: null, status: "planning", counts: null, summary: null,
      history: [], approvals: new Map(), contacts: new Map(), skipped: {}, exhausted: null, lastState: null }
    state.campaigns.set(id, c)
  }
  return c
}

// ---- events → state -------------------------------------------------------------------
const apply = (c, e) => {
  const p = e.payload
  switch (e.type) {
    case "event.campaign-started":
      Object.assign(c, { name: p.name, goal: p.goal, targetCount: p.targetCount, budget: p.budget ?? c.budget, startedAt: e.ts }); break
    case "event.campaign-planned": c.plan = p.plan; if (c.status === "planning") c.status = "running"; break
    case "event.campaign-progress":
      c.counts = p.counts
      c.history.push({ t: e.ts, inProgress: p.counts.inProgress, completed: p.counts.completed })
      if (c.history.length > MAX_HISTORY) c.history.shift()
      break
    case "event.campaign-completed":
      c.counts = p.summary.counts; c.summary = p.summary; c.status = "completed"
      c.history.push({ t: e.ts, inProgress: 0, completed: p.summary.counts.completed }); break
    case "event.campaign-rejected": c.status = "rejected"; c.rejected = p.reason; break
    case "event.campaign-state-changed":
      c.lastState = p
      if (p.state === "paused") c.status = "paused"
      else if (p.state === "resumed") c.status = "running"
      else if (p.state === "cancelled") c.status = "cancelled"
      break
    case "event.approval-requested": c.approvals.set(p.approvalId, { ...p, decided: null }); break
    case "event.approval-decided": { const a = c.approvals.get(p.approvalId); if (a) a.decided = p; break }
    case "event.budget-exhausted": c.exhausted = p; c.status = "paused"; break
    case "event.contact-progress": {
      let list = c.contacts.get(p.contactId)
      if (!list) {
        if (c.contacts.size >= MAX_CONTACTS) c.contacts.delete(c.contacts.keys().next().value)
        list = []; c.contacts.set(p.contactId, list)
      }
      list.push({ ts: e.ts, phase: p.phase, channel: p.channel, status: p.status, reason: p.reason })
      if (p.phase === "completed" && p.status === "skipped" && p.reason) c.skipped[p.reason] = (c.skipped[p.reason] ?? 0) + 1
      break
    }
  }
}

// ---- rendering --------------------------------------------------------------------------
const pct = (n, d) => (d > 0 ? Math.min(100, Math.round((n / d) * 100)) : 0)
const limitOf = (c) => Math.min(c.plan?.limit ?? c.targetCount, c.targetCount || Infinity, c.budget?.maxActions ?? Infinity)

const renderList = () => {
  const ul = $("#campaigns")
  const items = [...state.campaigns.values()].filter((c) => c.listed).sort((a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0))
  ul.innerHTML = items.length === 0 ? '<li class="empty">No campaigns yet.</li>' : items.map((c) =>
    `<li data-id="${esc(c.id)}" class="${c.id === state.selected ? "selected" : ""}">${esc(c.name)}<small>${esc(c.id)} · ${esc(c.goal)}</small></li>`).join("")
}

const chart = (c) => {
  const h = c.history, W = 600, H = 120, pad = 6
  if (h.length < 2) return `<svg viewBox="0 0 ${W} ${H}" data-testid="chart"><text x="10" y="60" fill="#6b7480">waiting for progress…</text></svg>`
  const t0 = h[0].t, t1 = h[h.length - 1].t || t0 + 1
  const maxY = Math.max(1, ...h.map((p) => Math.max(p.completed, p.inProgress)))
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad)
  const y = (v) => H - pad - (v / maxY) * (H - 2 * pad)
  const line = (key) => h.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ")
  return `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" data-testid="chart">
    <path d="${line("completed")}" fill="none" stroke="#2e9d5b" stroke-width="2"/>
    <path d="${line("inProgress")}" fill="none" stroke="#2f6fdf" stroke-width="2"/></svg>
    <p class="legend"><span class="dot" style="background:#2e9d5b"></span>completed ${h[h.length - 1].completed}
      <span class="dot" style="background:#2f6fdf"></span>in progress ${h[h.length - 1].inProgress}
      <span class="muted">(max ${maxY}, over ${Math.round((t1 - t0) / 1000)} s)</span></p>`
}

const renderCampaign = () => {
  const root = $("#campaign")
  const c = state.selected ? state.campaigns.get(state.selected) : null
  if (!c) { root.innerHTML = '<p class="empty">Select a campaign.</p>'; return }
  const k = c.counts ?? { targeted: 0, dispatched: 0, inProgress: 0, completed: 0, reached: 0, replied: 0, converted: 0, skipped: 0, failed: 0 }
  const limit = limitOf(c)
  const total = Number.isFinite(limit) && limit > 0 ? limit : Math.max(k.targeted, 1)
  // answers (replies, booked meetings); events of writers older than the counter lack it: n/a
  const replied = k.replied
  const funnel = [
    ["queued", Math.max(0, total - k.dispatched), "queued"], ["in progress", k.inProgress, "progress"], ["reached", k.reached, "reached"],
    ["replied", replied, "replied"], ["converted", k.converted, "converted"], ["skipped", k.skipped, "skipped"], ["failed", k.failed, "failed"]
  ]
  const maxActions = c.budget?.maxActions
  const skipped = Object.entries(c.summary?.skippedReasons ?? c.skipped)
  const approvalsOpen = [...c.approvals.values()].filter((a) => !a.decided)
  const contact = state.selectedContact ? c.contacts.get(state.selectedContact) : null
  root.innerHTML = `
    <div class="row"><h2 data-testid="campaign-name">${esc(c.name)}</h2><span class="state ${c.status}" data-testid="campaign-state">${c.status}</span></div>
    <p>${esc(c.goal)}</p>
    ${c.rejected ? `<p class="empty">Rejected: ${esc(c.rejected)}</p>` : ""}
    <div class="row">
      <button data-cmd="pause" data-testid="pause" ${c.status === "running" ? "" : "disabled"}>Pause</button>
      <button data-cmd="resume" data-testid="resume" ${c.status === "paused" ? "" : "disabled"}>Resume</button>
      <button data-cmd="cancel" ${["completed", "cancelled", "rejected"].includes(c.status) ? "disabled" : ""}>Cancel</button>
    </div>
    <h3>Progress <span data-testid="progress-text">${k.completed} / ${total}</span></h3>
    <div class="bar" data-testid="progress"><div style="width:${pct(k.completed, total)}%"></div></div>
    <div class="grid2">
      <div>
        <h3>Funnel</h3>
        <div class="funnel" data-testid="funnel">${funnel.map(([label, n, cls]) => `<span>${label}</span>
          <div class="fill" style="width:${n === undefined ? 0 : pct(n, total)}%;background:var(--${cls})${n === undefined ? ";visibility:hidden" : ""}" ${n === undefined ? 'title="not reported by the runtime yet"' : ""}></div>
          <b data-testid="funnel-${label.replace(" ", "-")}">${n === undefined ? "n/a" : n}</b>`).join("")}</div>
        ${skipped.length ? `<h3>Skipped, by reason</h3><table data-testid="skipped">${skipped.map(([r, n]) => `<tr><td>${esc(r)}</td><td>${n}</td></tr>`).join("")}</table>` : ""}
      </div>
      <div>
        <h3>Budget</h3>
        ${maxActions ? `<div class="bar budget" data-testid="budget"><div style="width:${pct(k.dispatched, maxActions)}%"></div></div>
          <p>${k.dispatched} of ${maxActions} actions${c.budget.maxCostUsd !== undefined ? `, cost limit $${c.budget.maxCostUsd}` : ""}</p>` : '<p class="empty">No budget reported.</p>'}
        ${c.exhausted ? `<p>Budget exhausted: ${esc(c.exhausted.scope)} ${esc(c.exhausted.budget)} ${c.exhausted.used}/${c.exhausted.limit}</p>` : ""}
        <h3>Live concurrency</h3><p class="kpi" data-testid="concurrency">${k.inProgress}</p>
      </div>
    </div>
    <h3>Throughput</h3>${chart(c)}
    <h3>Planner reasoning</h3>
    ${c.plan ? `<p>Model ${esc(c.plan.model)}, ${c.plan.limit} contacts, channels ${c.plan.channelSequence.map(esc).join(" → ")}</p>
      <ol class="trace" data-testid="trace">${c.plan.reasoning.map((s) => `<li><b>thought</b> ${esc(s.thought)}<br><b>action</b> ${esc(s.action)}<br><b>observation</b> ${esc(s.observation)}</li>`).join("")}</ol>` : '<p class="empty">Planning…</p>'}
    <h3>Contacts (latest ${Math.min(c.contacts.size, MAX_CONTACTS)})</h3>
    <table data-testid="contacts"><tr><th>contact</th><th>phase</th><th>channel</th><th>status</th></tr>
      ${[...c.contacts].slice(-25).reverse().map(([id, l]) => { const last = l[l.length - 1]; return `<tr class="contact" data-contact="${esc(id)}"><td>${esc(id)}</td><td>${last.phase}</td><td>${last.channel ?? ""}</td><td>${last.status ?? ""} ${esc(last.reason ?? "")}</td></tr>` }).join("")}
    </table>
    ${contact ? `<h3>Timeline of ${esc(state.selectedContact)}</h3><ul class="timeline" data-testid="timeline">${contact.map((s) =>
      `<li>${new Date(s.ts).toLocaleTimeString()} · ${s.phase}${s.channel ? ` · ${s.channel}` : ""}${s.status ? ` · ${s.status}` : ""}${s.reason ? ` (${esc(s.reason)})` : ""}</li>`).join("")}</ul>` : ""}
  `
  renderSide(approvalsOpen)
}

const renderSide = () => {
  const open = [...state.campaigns.values()].flatMap((c) => [...c.approvals.values()].filter((a) => !a.decided))
  $("#approvals").innerHTML = open.length === 0 ? '<li class="empty">Nothing waits for approval.</li>' : open.map((a) =>
    `<li data-testid="approval"><b>${esc(a.action)}</b> · ${esc(a.campaignId)}<br>${esc(a.reason)}<br>
      <button class="primary" data-approve="${esc(a.approvalId)}" data-campaign="${esc(a.campaignId)}">Approve</button>
      <button data-reject="${esc(a.approvalId)}" data-campaign="${esc(a.campaignId)}">Reject</button></li>`).join("")
  const dl = [...state.deadLetters.values()].reverse().slice(0, 50)
  $("#dead-letters").innerHTML = dl.length === 0 ? '<li class="empty">No dead letters.</li>' : dl.map((d) =>
    `<li data-testid="dead-letter" data-seq="${d.seq}"><b>${esc(d.payload.reason)}</b> · ${esc(d.payload.originalType ?? "?")}<br>
      <code>${esc(d.payload.error.message).slice(0, 200)}</code><br><small>${esc(d.payload.subject)} · ${new Date(d.ts).toLocaleTimeString()}</small><br>
      <button data-retry="${d.seq}" data-testid="retry">Retry</button>${d.retried ? ` <small data-testid="retried">retried → seq ${d.retried}</small>` : ""}</li>`).join("")
}

let pending = false
const render = () => { if (pending) return; pending = true; requestAnimationFrame(() => { pending = false; renderList(); renderCampaign() }) }

// ---- WebSocket --------------------------------------------------------------------------
const send = (frame) => state.ws?.readyState === WebSocket.OPEN && state.ws.send(JSON.stringify(frame))
const subscribe = (id) => send({ op: "subscribe", campaignId: id, fromSeq: (state.campaignSeq.get(id) ?? 0) + 1 })

const connect = () => {
  const proto = location.protocol === "https:" ? "wss" : "ws"
  const ws = new WebSocket(`${proto}://${location.host}/ws?token=${encodeURIComponent(state.token)}`)
  state.ws = ws
  ws.onopen = () => {
    $("#link").textContent = "live"; $("#link").classList.add("live")
    for (const feed of ["campaigns", "dead-letters"]) send({ op: "watch", feed, fromSeq: state.feedSeq[feed] + 1 })
    if (state.selected) subscribe(state.selected)
  }
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data)
    if (f.op === "event") {
      if (f.seq <= (state.campaignSeq.get(f.campaignId) ?? 0)) return
      state.campaignSeq.set(f.campaignId, f.seq); apply(campaignOf(f.campaignId), f); render()
    } else if (f.op === "feed") {
      if (f.seq <= state.feedSeq[f.feed]) return
      state.feedSeq[f.feed] = f.seq
      if (f.feed === "campaigns") {
        const c = campaignOf(f.payload.campaignId); c.listed = true; apply(c, f)
        if (!state.selected) select(c.id)
      } else state.deadLetters.set(f.seq, f)
      render()
    } else if (f.op === "error") toast(`${f.code}: ${f.message}`)
  }
  ws.onclose = (e) => {
    $("#link").textContent = `offline (${e.code})`; $("#link").classList.remove("live")
    if (e.code === 4001 || e.code === 1008) { toast("session ended: " + (e.reason || e.code)); return }
    setTimeout(connect, 1000)
  }
}

const select = (id) => {
  if (state.selected === id) return
  if (state.selected) send({ op: "unsubscribe", campaignId: state.selected })
  state.selected = id; state.selectedContact = null
  subscribe(id); render()
}

// ---- commands ---------------------------------------------------------------------------
const command = async (what, path, body) => {
  try { const r = await api("POST", path, body); toast(`${what}: sent (${r.type ?? r.subject})`); return r }
  catch (e) { toast(`${what} refused: ${e.message}`) }
}

document.addEventListener("click", async (ev) => {
  const el = ev.target.closest("[data-id],[data-cmd],[data-approve],[data-reject],[data-retry],[data-contact]")
  if (!el) return
  if (el.dataset.id) return select(el.dataset.id)
  if (el.dataset.contact) { state.selectedContact = el.dataset.contact; return render() }
  if (el.dataset.cmd) return command(el.dataset.cmd, `/api/campaigns/${encodeURIComponent(state.selected)}/${el.dataset.cmd}`, {})
  if (el.dataset.approve) return command("approve", `/api/campaigns/${encodeURIComponent(el.dataset.campaign)}/approvals/${encodeURIComponent(el.dataset.approve)}/approve`, {})
  if (el.dataset.reject) return command("reject", `/api/campaigns/${encodeURIComponent(el.dataset.campaign)}/approvals/${encodeURIComponent(el.dataset.reject)}/reject`, {})
  if (el.dataset.retry) {
    const r = await command("retry", `/api/dead-letters/${el.dataset.retry}/retry`)
    if (r) { state.deadLetters.get(Number(el.dataset.retry)).retried = r.seq; render() }
  }
})

$("#start-form").addEventListener("submit", async (ev) => {
  ev.preventDefault()
  const f = new FormData(ev.target)
  const r = await command("start", "/api/campaigns", {
    name: f.get("name"), goal: f.get("goal"), audience: {}, channels: f.getAll("channels"), targetCount: Number(f.get("targetCount")),
    budget: { maxActions: Number(f.get("maxActions")), maxCostUsd: Number(f.get("maxCostUsd")) }
  })
  if (r) select(r.campaignId)
})

// ---- start ------------------------------------------------------------------------------
const open = async (token) => {
  state.token = token
  try { state.who = await api("GET", "/api/whoami") } catch (e) {
    sessionStorage.removeItem("nexus-token"); $("#login").hidden = false; toast(`token refused: ${e.message}`); return
  }
  sessionStorage.setItem("nexus-token", token)
  $("#who").textContent = `${state.who.sub} · ${state.who.tenant} · ${state.who.role}`
  $("#login").hidden = true; $("#app").hidden = false
  connect(); render()
}

$("#login-form").addEventListener("submit", (ev) => { ev.preventDefault(); open($("#token-input").value.trim()) })
const fromUrl = new URLSearchParams(location.search).get("token")
if (fromUrl) history.replaceState(null, "", location.pathname)
const token = fromUrl ?? sessionStorage.getItem("nexus-token")
if (token) open(token); else $("#login").hidden = false
