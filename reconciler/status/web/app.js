// Meridian dashboard: polls /api/v1/status every 2 seconds and draws it.
// Every value is written with textContent, never as HTML.
"use strict";

(function () {
  const POLL_MS = 2000;
  const filters = { tenant: "", app: "", state: "" };
  let last = null;
  let lastOK = 0;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function short(rev) {
    return rev ? rev.slice(0, 12) : "";
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + "s ago";
    if (s < 3600) return Math.round(s / 60) + "m ago";
    if (s < 86400) return Math.round(s / 3600) + "h ago";
    return Math.round(s / 86400) + "d ago";
  }

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    for (const k of Object.keys(filters)) filters[k] = p.get(k) || "";
  }

  function writeHash() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) if (v) p.set(k, v);
    const h = p.toString();
    history.replaceState(null, "", h ? "#" + h : location.pathname);
  }

  function setOptions(select, values, selected) {
    const want = [""].concat(values);
    const have = Array.from(select.options).map((o) => o.value);
    if (want.join("\n") !== have.join("\n")) {
      select.replaceChildren(...want.map((v) => el("option", { value: v, text: v === "" ? "all" : v })));
    }
    select.value = want.includes(selected) ? selected : "";
  }

  function drawHeader(st) {
    const rev = document.getElementById("revision");
    if (st.revision) {
      const r = st.revision;
      rev.replaceChildren("revision ", el("code", { text: short(r.revision), title: r.revision }),
        r.subject ? " " + r.subject : "", r.author ? " — " + r.author : "");
    } else {
      rev.textContent = "no revision accepted yet";
    }
    const pass = document.getElementById("pass");
    if (st.lastPass) {
      const p = st.lastPass;
      pass.replaceChildren("last pass " + ago(p.at) + " in " + p.durationSeconds.toFixed(1) + "s: ",
        el("strong", { text: p.converged ? "converged" : "did not converge" }));
      pass.title = p.problems || "";
    } else {
      pass.textContent = "no pass yet";
    }
    const banners = [];
    if (st.refused) {
      const r = st.refused;
      banners.push(el("div", { class: "banner", "data-kind": "refused" },
        el("strong", { text: "Revision " + short(r.commit.revision) + " refused" }),
        (r.commit.subject ? " (" + r.commit.subject + ")" : "") + ": its fleet is not valid; the revision in use stays. ",
        el("ul", {}, ...r.errors.map((e) => el("li", { text: e })))));
    }
    if (st.fetch && st.fetch.lastError) {
      banners.push(el("div", { class: "banner warn", "data-kind": "fetch" },
        el("strong", { text: "Fetching the fleet repository failed " + ago(st.fetch.lastErrorAt) }),
        " (" + st.fetch.failures + " failures so far): " + st.fetch.lastError));
    }
    document.getElementById("banners").replaceChildren(...banners);
  }

  function drawWaves(st) {
    const waves = st.waves || [];
    const done = waves.filter((w) => w.state === "healthy").length;
    const pct = waves.length ? Math.round((100 * done) / waves.length) : 0;
    const prog = document.getElementById("wave-progress");
    prog.setAttribute("aria-valuenow", String(pct));
    prog.title = done + " of " + waves.length + " waves healthy";
    prog.querySelector(".bar").style.width = pct + "%";
    document.getElementById("waves").replaceChildren(...waves.map((w) =>
      el("li", { "data-state": w.state, "data-wave": w.name },
        el("strong", { text: w.name }), " " + w.regions.join(", ") + " — " + w.state)));
  }

  function regionOrder(st) {
    const order = [];
    for (const w of st.waves || []) for (const r of w.regions) if (!order.includes(r)) order.push(r);
    for (const r of st.regions || []) if (!order.includes(r.name)) order.push(r.name);
    for (const p of st.placements || []) if (!order.includes(p.region)) order.push(p.region);
    return order;
  }

  // owner is the row a unit is shown in: its tenant, or "(addons)" for the
  // platform addons, which belong to no tenant.
  function owner(p) {
    return p.addon ? "(addons)" : p.tenant;
  }

  function matches(p) {
    return (!filters.tenant || owner(p) === filters.tenant) &&
      (!filters.app || p.app === filters.app || (filters.app === "(namespace)" && p.app === "")) &&
      (!filters.state || p.state === filters.state);
  }

  function unitCard(p) {
    const title = [p.unit + ": " + p.state];
    if (p.reason) title.push(p.reason);
    if (p.lastError && p.lastError !== p.reason) title.push("last error: " + p.lastError);
    if (p.lastSyncAt) title.push("last synced " + ago(p.lastSyncAt));
    const badges = [];
    if (p.drift && p.drift.objects > 0) {
      badges.push(el("span", { class: "badge drift", text: p.drift.objects + " drifted (" + p.drift.action + ")", title: (p.drift.details || []).join("\n") }));
    }
    for (const d of p.dns || []) {
      badges.push(el("span", { class: "badge dns", "data-healthy": String(d.healthy), text: "DNS " + (d.healthy ? "healthy" : "unhealthy"), title: d.name }));
    }
    return el("div", { class: "unit", "data-unit": p.unit, "data-state": p.state, "data-tenant": owner(p), "data-app": p.app || p.addon, title: title.join("\n") },
      el("span", { class: "app", text: p.app || (p.addon ? "addon " + p.addon : "namespace") }),
      el("span", { class: "state", text: p.state }),
      el("span", { class: "rev", text: p.revision ? short(p.revision) + (p.commitSubject ? " " + p.commitSubject : "") : "not applied yet" }),
      p.state !== "Ready" && p.reason ? el("span", { class: "reason", text: p.reason }) : null,
      badges.length ? el("span", { class: "badges" }, ...badges) : null);
  }

  function drawMatrix(st) {
    const placements = st.placements || [];
    const tenants = [...new Set(placements.map(owner))].sort();
    const apps = [...new Set(placements.filter((p) => !p.addon).map((p) => p.app || "(namespace)"))].sort();
    setOptions(document.getElementById("filter-tenant"), tenants, filters.tenant);
    setOptions(document.getElementById("filter-app"), apps, filters.app);
    setOptions(document.getElementById("filter-state"), st.states || [], filters.state);
    document.getElementById("legend").replaceChildren(...(st.states || []).map((s) => {
      const n = placements.filter((p) => p.state === s).length;
      return el("li", { "data-state": s, text: s + " " + n });
    }));

    const regions = regionOrder(st);
    const table = document.getElementById("matrix");
    table.tHead.replaceChildren(el("tr", {}, el("th", { text: "tenant \\ region" }),
      ...regions.map((r) => el("th", { "data-region": r, text: r }))));
    const rows = [];
    let shown = 0;
    for (const t of tenants) {
      if (filters.tenant && t !== filters.tenant) continue;
      const cells = [];
      let any = false;
      for (const r of regions) {
        const units = placements.filter((p) => owner(p) === t && p.region === r && matches(p));
        const all = placements.filter((p) => owner(p) === t && p.region === r);
        shown += units.length;
        if (units.length) any = true;
        cells.push(units.length
          ? el("td", { "data-region": r }, ...units.map(unitCard))
          : el("td", { class: "none", "data-region": r, text: all.length ? "" : "—" }));
      }
      if (any) rows.push(el("tr", { "data-tenant": t }, el("th", { class: "tenant", text: t }), ...cells));
    }
    table.tBodies[0].replaceChildren(...rows);
    document.getElementById("matrix-empty").hidden = shown > 0 || placements.length === 0;
    document.getElementById("counts").textContent = shown + " of " + placements.length + " placements";
  }

  function drawRegions(st) {
    document.querySelector("#regions tbody").replaceChildren(...(st.regions || []).map((r) =>
      el("tr", { "data-region": r.name },
        el("th", { text: r.name }),
        el("td", { text: r.wave || "" }),
        el("td", { class: "state", "data-state": r.state, text: r.state }),
        el("td", { text: r.changes || "" }),
        el("td", { class: "held", text: String(r.heldDeletions), title: r.held || "" }),
        el("td", { class: "drift", text: String(r.driftedObjects), title: r.driftError || "" }),
        el("td", { class: "dns", text: r.dns.total ? r.dns.healthy + " / " + r.dns.total : "—" }),
        el("td", { class: "problem", text: r.error || (r.held ? "deletions held: " + r.held : "") }))));
  }

  function drawErrors(st) {
    const errs = (st.errors || []).slice().reverse();
    document.getElementById("errors").replaceChildren(...errs.map((e) =>
      el("li", { "data-kind": e.kind },
        el("span", { class: "kind", text: e.kind }), " ",
        e.subject ? el("code", { text: e.subject }) : null, " ",
        el("span", { class: "when", text: ago(e.last) + (e.count > 1 ? " (" + e.count + "×)" : "") }), " ",
        el("div", { class: "msg", text: e.message }))));
    document.getElementById("errors-empty").hidden = errs.length > 0;
  }

  function draw() {
    if (!last) return;
    drawHeader(last);
    drawWaves(last);
    drawMatrix(last);
    drawRegions(last);
    drawErrors(last);
    document.body.dataset.generated = last.generatedAt;
  }

  function setLive(state, text) {
    const live = document.getElementById("live");
    live.dataset.state = state;
    live.textContent = text;
  }

  async function poll() {
    try {
      const resp = await fetch("/api/v1/status", { cache: "no-store", headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(resp.status + " " + resp.statusText);
      last = await resp.json();
      lastOK = Date.now();
      draw();
      setLive("live", "live — updated " + new Date(lastOK).toLocaleTimeString());
    } catch (err) {
      setLive("offline", "cannot reach the daemon (" + err.message + ")" + (lastOK ? "; showing data from " + new Date(lastOK).toLocaleTimeString() : ""));
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  function onFilter(key) {
    return (ev) => {
      filters[key] = ev.target.value;
      writeHash();
      draw();
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    readHash();
    document.getElementById("filter-tenant").addEventListener("change", onFilter("tenant"));
    document.getElementById("filter-app").addEventListener("change", onFilter("app"));
    document.getElementById("filter-state").addEventListener("change", onFilter("state"));
    document.getElementById("filter-clear").addEventListener("click", () => {
      filters.tenant = filters.app = filters.state = "";
      writeHash();
      draw();
    });
    window.addEventListener("hashchange", () => { readHash(); draw(); });
    poll();
  });
})();
