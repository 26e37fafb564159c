// Meridian dashboard. Every 2 seconds it reads what the view on screen needs —
// the overview reads /api/v1/summary (counts and a tenants × regions heatmap)
// and, when the filters leave few units, their rows of /api/v1/status; a unit's
// page reads /api/v1/units/<unit>; the apps and history pages their own
// endpoints — and draws it. Every value is written with textContent, never as
// HTML. The view and its filters live in the address (#/?tenant=…&state=…,
// #/unit/<unit>, #/apps, #/history), so that a link reproduces what is shown.
"use strict";

(function () {
  const POLL_MS = 2000;
  // UNITS_LISTED is how many units the overview lists below the heatmap at most.
  const UNITS_LISTED = 200;
  const FILTERS = ["q", "tenant", "region", "app", "kind", "state"];
  const filters = { q: "", tenant: "", region: "", app: "", kind: "", state: "" };
  let route = { view: "overview" };
  let lastOK = 0;
  let timer = null;
  let generation = 0;
  let eventsFor = "";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-") || k.startsWith("aria-")) e.setAttribute(k, v);
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

  function when(iso) {
    if (!iso || iso.startsWith("0001-")) return "";
    return new Date(iso).toLocaleString() + " (" + ago(iso) + ")";
  }

  // --- the address -------------------------------------------------------

  function query(f) {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (f[k]) p.set(k, f[k]);
    return p.toString();
  }

  function overviewHref(f) {
    const q = query(f);
    return "#/" + (q ? "?" + q : "");
  }

  function unitHref(unit) {
    return "#/unit/" + unit;
  }

  // readRoute reads the view and the filters from the address. "#state=Failed",
  // the address of earlier versions, is the overview with that filter.
  function readRoute() {
    let h = location.hash.slice(1);
    if (!h.startsWith("/")) h = "/?" + h;
    const [path, q] = h.split("?", 2);
    const p = new URLSearchParams(q || "");
    for (const k of FILTERS) filters[k] = p.get(k) || "";
    if (path.startsWith("/unit/")) route = { view: "unit", unit: decodeURIComponent(path.slice("/unit/".length)) };
    else if (path === "/apps" || path.startsWith("/app/")) route = { view: "apps", app: path.startsWith("/app/") ? decodeURIComponent(path.slice(5)) : "" };
    else if (path === "/history") route = { view: "history" };
    else route = { view: "overview" };
  }

  function writeFilters() {
    const h = overviewHref(filters);
    history.replaceState(null, "", h === "#/" ? location.pathname + "#/" : h);
  }

  // --- fetching -----------------------------------------------------------

  async function getJSON(path) {
    const resp = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
    const body = await resp.json().catch(() => null);
    if (!resp.ok) {
      const err = new Error((body && body.error) || resp.status + " " + resp.statusText);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  async function load() {
    const started = performance.now();
    const gen = generation;
    let data = {};
    if (route.view === "overview") {
      data.summary = await getJSON("/api/v1/summary?" + query(filters));
      const matched = data.summary.matched.units;
      if (matched > 0 && matched <= UNITS_LISTED) {
        data.status = await getJSON("/api/v1/status?" + query(filters));
      }
    } else {
      data.summary = await getJSON("/api/v1/summary?rows=false");
      if (route.view === "unit") {
        try {
          data.unit = await getJSON("/api/v1/units/" + route.unit);
        } catch (err) {
          if (err.status !== 404) throw err;
          data.unit = null;
        }
      } else if (route.view === "apps") {
        data.apps = await getJSON("/api/v1/apps");
      } else if (route.view === "history") {
        data.history = await getJSON("/api/v1/history");
      }
    }
    if (gen !== generation) return; // the view changed while reading
    const fetched = performance.now();
    draw(data);
    const drawn = performance.now();
    const b = document.body.dataset;
    b.view = route.view;
    b.shown = route.view + "?" + (route.view === "overview" ? query(filters) : route.unit || route.app || "");
    b.generated = data.summary.generatedAt;
    b.fetchMs = (fetched - started).toFixed(1);
    b.drawMs = (drawn - fetched).toFixed(1);
    if (!b.firstDrawMs) b.firstDrawMs = drawn.toFixed(1); // since the page began loading
  }

  // --- drawing: everywhere ----------------------------------------------

  function draw(d) {
    for (const v of ["overview", "unit", "apps", "history"]) {
      document.getElementById("view-" + v).hidden = v !== route.view;
    }
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("current", a.dataset.view === route.view);
    }
    drawHeader(d.summary);
    if (route.view === "overview") drawOverview(d.summary, d.status);
    else if (route.view === "unit") drawUnit(d.unit);
    else if (route.view === "apps") drawApps(d.apps);
    else if (route.view === "history") drawHistory(d.history);
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

  function setOptions(select, values, selected, label) {
    const want = [""].concat(values);
    const have = Array.from(select.options).map((o) => o.value);
    if (want.join("\n") !== have.join("\n")) {
      select.replaceChildren(...want.map((v) => el("option", { value: v, text: v === "" ? "all" : label ? label(v) : v })));
    }
    select.value = want.includes(selected) ? selected : "";
  }

  function setInput(input, value) {
    if (document.activeElement !== input && input.value !== value) input.value = value;
  }

  // --- drawing: the overview ---------------------------------------------

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  function drawOverview(st, status) {
    drawWaves(st);
    const c = st.counts;
    const ready = (c.placementStates.Ready || 0);
    document.getElementById("totals").replaceChildren(
      el("strong", { text: plural(c.placements, "placement", "placements") }), " (tenant × region × app), " + ready + " Ready · ",
      plural(c.namespaces, "tenant namespace unit", "tenant namespace units") + " · " + plural(c.addons, "addon unit", "addon units") +
      " · " + plural(st.tenants.filter((t) => t !== "(addons)").length, "tenant", "tenants") + " in " + plural(st.columns.length, "region", "regions"));

    setInput(document.getElementById("filter-q"), filters.q);
    setInput(document.getElementById("filter-tenant"), filters.tenant);
    const list = document.getElementById("tenant-list");
    if (list.childElementCount !== st.tenants.length) list.replaceChildren(...st.tenants.map((t) => el("option", { value: t })));
    setOptions(document.getElementById("filter-region"), st.columns, filters.region);
    setOptions(document.getElementById("filter-app"), st.apps, filters.app);
    setOptions(document.getElementById("filter-state"), st.states || [], filters.state);
    document.getElementById("filter-kind").value = filters.kind;

    const m = st.matched;
    document.getElementById("legend").replaceChildren(...(st.states || []).map((s) =>
      el("li", { "data-state": s },
        el("a", { href: overviewHref({ ...filters, state: filters.state === s ? "" : s }), text: s + " " + (m.unitStates[s] || 0), title: (m.placementStates[s] || 0) + " placements, " + (m.unitStates[s] || 0) + " units" }))));
    document.getElementById("counts").textContent = plural(m.placements, "placement", "placements") + " and " +
      (m.units - m.placements) + " other units of " + c.units + " units match";

    drawHeatmap(st);
    drawUnits(st, status);
    drawRegions(st);
    drawErrors(st);
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

  // drawHeatmap draws a tile per tenant, a cell per region in the tile, coloured
  // by the worst state of the tenant's units there that the filters match. A
  // cell links to its units: the unit itself when it is the only one.
  function drawHeatmap(st) {
    document.getElementById("heatmap-key").textContent = st.rows.length
      ? "Each tile is a tenant; its cells are " + st.columns.join(", ") + ", in that order, coloured by the worst state of the tenant's units there."
      : "";
    const tiles = st.rows.map((row) => {
      const cells = row.cells.map((c, i) => {
        const region = st.columns[i];
        if (!c.n) return el("span", { class: "cell none", "data-region": region, title: row.tenant + " in " + region + ": nothing" });
        const title = row.tenant + " in " + region + ": " + c.s + " — " + plural(c.n, "unit", "units") + (c.x ? ", " + c.x + " not Ready" : "");
        return el("a", { class: "cell", href: overviewHref({ ...filters, tenant: row.tenant, region: region }), "data-region": region, "data-state": c.s, "data-units": String(c.n), title: title });
      });
      return el("div", { class: "tile", "data-tenant": row.tenant, title: row.tenant },
        el("a", { class: "name", href: overviewHref({ ...filters, tenant: row.tenant }), text: row.tenant }), el("span", { class: "cells" }, ...cells));
    });
    const map = document.getElementById("heatmap");
    map.replaceChildren(...tiles);
    map.classList.toggle("named", st.rows.length <= 120);
    document.getElementById("heatmap-empty").hidden = st.rows.length > 0 || st.counts.units === 0;
  }

  function drawUnits(st, status) {
    const m = st.matched.units;
    const note = document.getElementById("units-note");
    const tbody = document.querySelector("#units tbody");
    document.getElementById("units").hidden = !status;
    if (!status) {
      note.textContent = m === 0 ? "No unit matches." : m + " units match: narrow the filters (a tenant, a region, a state, or a search) to list them, or click a tenant or a cell of the map.";
      tbody.replaceChildren();
      return;
    }
    note.textContent = plural(status.placements.length, "unit matches", "units match") + ".";
    tbody.replaceChildren(...status.placements.map((p) => {
      const dns = p.dns || [];
      const healthy = dns.filter((d) => d.healthy).length;
      return el("tr", { "data-unit": p.unit, "data-state": p.state },
        el("td", {}, el("a", { href: unitHref(p.unit), text: p.unit })),
        el("td", { text: p.kind }),
        el("td", { class: "state", "data-state": p.state, text: p.state }),
        el("td", { class: "reason", text: p.state !== "Ready" ? p.reason || "" : "" }),
        el("td", { class: "rev", title: p.revision ? "runs " + p.revision + (p.commitSubject ? " (" + p.commitSubject + ")" : "") : "" }, ...changedBy(p)),
        el("td", { class: "dns", text: dns.length ? "DNS " + (healthy === dns.length ? "healthy" : "unhealthy") + " " + healthy + "/" + dns.length : "—", title: dns.map((d) => d.name).join("\n") }),
        el("td", { class: "drift", text: p.drift && p.drift.objects > 0 ? p.drift.objects + " drifted (" + p.drift.action + ")" : "", title: ((p.drift && p.drift.details) || []).join("\n") }));
    }));
  }

  // changedBy says which revision a unit runs and which commit last changed it:
  // the revision in use is not news for a unit it left as it was.
  function changedBy(p) {
    if (!p.revision) return ["not applied yet"];
    const out = [el("code", { text: short(p.revision) })];
    const c = p.changed;
    if (!c) return out; // no pass since the daemon started changed it
    if (c.revision === p.revision) out.push(" changed it: " + (c.subject || ""));
    else out.push(" · last changed by ", el("code", { text: short(c.revision) }), " " + (c.subject || "") + " " + ago(c.at));
    return out;
  }

  // clip shortens a long text for a table cell; the cell's title keeps it whole.
  function clip(text, n) {
    return text.length > n ? text.slice(0, n) + "…" : text;
  }

  function drawRegions(st) {
    document.querySelector("#regions tbody").replaceChildren(...(st.regions || []).map((r) =>
      el("tr", { "data-region": r.name },
        el("th", {}, el("a", { href: overviewHref({ region: r.name }), text: r.name })),
        el("td", { text: r.wave || "" }),
        el("td", { class: "state", "data-state": r.state, text: r.state }),
        el("td", { text: r.changes || "" }),
        el("td", { class: "held", text: String(r.heldDeletions), title: r.held || "" }),
        el("td", { class: "drift", text: String(r.driftedObjects), title: r.driftError || "" }),
        el("td", { class: "dns", text: r.dns.total ? r.dns.healthy + " / " + r.dns.total : "—" }),
        el("td", { class: "problem", text: clip(r.error || (r.held ? "deletions held: " + r.held : ""), 400), title: r.error || r.held || "" }))));
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

  // --- drawing: a unit ---------------------------------------------------

  function fact(dl, name, ...value) {
    dl.append(el("dt", { text: name }), el("dd", { "data-fact": name }, ...value));
  }

  function rows(id, items, row, empty) {
    document.querySelector("#" + id + " tbody").replaceChildren(...items.map(row));
    document.getElementById(id).hidden = items.length === 0;
    const note = document.getElementById(id + "-note");
    if (note) note.textContent = items.length ? "" : empty;
  }

  function drawUnit(u) {
    document.getElementById("unit-title").textContent = route.unit;
    document.getElementById("unit-missing").hidden = u !== null;
    const dl = document.getElementById("unit-facts");
    dl.replaceChildren();
    if (!u) {
      for (const id of ["unit-objects", "unit-dns", "unit-events", "unit-revisions"]) rows(id, [], () => null, "");
      document.getElementById("unit-drift").replaceChildren();
      document.getElementById("unit-apply").replaceChildren();
      return;
    }
    fact(dl, "kind", u.kind === "placement" ? "placement (tenant × region × app)" : u.kind === "namespace" ? "the tenant's namespace unit" : "platform addon");
    fact(dl, "state", el("span", { class: "state", "data-state": u.state, text: u.state }), u.reason ? " — " + u.reason : "");
    if (u.tenant) fact(dl, "tenant", el("a", { href: overviewHref({ tenant: u.tenant }), text: u.tenant }));
    fact(dl, "region", el("a", { href: overviewHref({ region: u.region }), text: u.region }), u.wave ? " (wave " + u.wave + ")" : "");
    if (u.app || u.addon) fact(dl, u.addon ? "addon" : "app", el("a", { href: "#/app/" + (u.app || u.addon), text: u.app || u.addon }));
    fact(dl, "source", u.source || "—");
    fact(dl, "revision", u.revision ? el("code", { text: short(u.revision), title: u.revision }) : "not applied yet",
      u.commit && u.commit.subject ? " " + u.commit.subject : "", u.commit && u.commit.author ? " — " + u.commit.author : "");
    if (u.changed) fact(dl, "last changed by", el("code", { text: short(u.changed.revision), title: u.changed.revision }), " " + (u.changed.subject || "") + (u.changed.author ? " — " + u.changed.author : "") + ", " + when(u.changed.at));
    if (u.lastSyncAt) fact(dl, "last Ready", when(u.lastSyncAt));
    if (u.lastError) fact(dl, "last error", el("span", { class: "msg", text: u.lastError }), " " + ago(u.lastErrorAt));
    if (u.healthAt) fact(dl, "health seen", when(u.healthAt));

    rows("unit-objects", u.objects || [], (o) => el("tr", { "data-object": o.kind + "/" + (o.namespace ? o.namespace + "/" : "") + o.name },
      el("td", { text: o.kind + "/" + (o.namespace ? o.namespace + "/" : "") + o.name }),
      el("td", { class: "kstatus", "data-kstatus": o.status, text: o.status }),
      el("td", { class: "msg", text: o.message || "" })), "No watch has reported this unit's objects yet.");
    rows("unit-dns", u.dns || [], (d) => el("tr", { "data-record": d.name },
      el("td", { text: d.name }),
      el("td", { text: d.healthCheckId || "none" }),
      el("td", { class: "dns", "data-healthy": String(d.healthy), text: d.healthy ? "healthy" : "unhealthy" })), "No DNS record: the app exposes no name, or DNS is off.");

    const drift = document.getElementById("unit-drift");
    const dr = u.drift || {};
    if (!dr.checkedAt) drift.replaceChildren(el("p", { class: "note", text: "Not checked yet." }));
    else if (!dr.objects) drift.replaceChildren(el("p", { text: "No drift at the last check, " + ago(dr.checkedAt) + "." }));
    else drift.replaceChildren(el("p", { text: dr.objects + " drifted objects (" + dr.action + ") at the check " + ago(dr.checkedAt) + ":" }),
      el("ul", { class: "drift-details" }, ...(dr.details || []).map((x) => el("li", { text: x }))));

    const apply = document.getElementById("unit-apply");
    const a = u.lastApply;
    if (!a) {
      apply.replaceChildren(el("p", { class: "note", text: "No pass has planned this unit since the daemon started." }));
    } else {
      const list = (name, items) => items && items.length ? el("div", { class: "changes", "data-change": name },
        el("strong", { text: name + " (" + items.length + ")" }), el("ul", {}, ...items.map((x) => el("li", { text: x })))) : null;
      apply.replaceChildren(...[
        el("p", { "data-apply": a.action }, "Pass of ", el("code", { text: short(a.revision) }), " " + ago(a.at) + ": ",
          el("strong", { text: a.action }), ", " + a.objects + " objects rendered, health " + a.health + "."),
        a.error ? el("p", { class: "msg error", text: a.error }) : null,
        list("created", a.created), list("applied", a.applied), list("deleted", a.deleted),
        list("released", a.released), list("deletions held", a.heldDeletions),
        a.action === "unchanged" && !(a.heldDeletions || []).length ? el("p", { class: "note", text: "Nothing changed: the unit rendered as it was applied." }) : null,
      ].filter(Boolean));
    }

    rows("unit-revisions", u.revisions || [], (r) => el("tr", { "data-revision": r.revision },
      el("td", {}, el("code", { text: short(r.revision), title: r.revision })),
      el("td", { text: r.subject || "" }),
      el("td", { text: r.author || "" }),
      el("td", { text: when(r.first) }),
      el("td", { text: when(r.last) }),
      el("td", { class: "state", "data-state": r.state, text: r.state }),
      el("td", { text: r.changed ? "changed" : "unchanged" })), "No pass has taken this unit to a revision since the daemon started.");

    if (eventsFor !== route.unit) loadEvents();
  }

  async function loadEvents() {
    const unit = route.unit;
    eventsFor = unit;
    const note = document.getElementById("unit-events-note");
    note.textContent = "reading events…";
    try {
      const body = await getJSON("/api/v1/events/" + unit);
      if (route.unit !== unit) return;
      rows("unit-events", body.events, (e) => el("tr", { "data-type": e.type },
        el("td", { text: ago(e.last) }),
        el("td", { text: e.type }),
        el("td", { text: e.reason }),
        el("td", { text: e.object }),
        el("td", { class: "msg", text: e.message + (e.count > 1 ? " (" + e.count + "×)" : "") })), "No events: Kubernetes keeps them for an hour.");
    } catch (err) {
      if (route.unit !== unit) return;
      rows("unit-events", [], () => null, "Events cannot be shown: " + err.message);
    }
  }

  // --- drawing: apps and history ------------------------------------------

  function stateCounts(states) {
    return el("span", { class: "states" }, ...Object.entries(states).map(([s, n]) =>
      el("span", { class: "badge", "data-state": s, text: s + " " + n })));
  }

  function drawApps(apps) {
    const shown = route.app ? apps.filter((a) => a.name === route.app) : apps;
    document.getElementById("apps-sub").textContent = route.app ? "— " + route.app : "";
    const trs = [];
    for (const a of shown) {
      a.regions.forEach((r, i) => {
        trs.push(el("tr", { "data-app": a.name, "data-region": r.region },
          i === 0 ? el("th", { rowSpan: a.regions.length }, el("a", { href: "#/app/" + a.name, text: a.name }), a.addon ? " (addon)" : "") : null,
          el("td", {}, el("a", { href: overviewHref({ app: a.name, region: r.region }), text: r.region })),
          el("td", { class: "n", text: String(r.units) }),
          el("td", {}, stateCounts(r.states)),
          el("td", { class: "sources" }, ...r.sources.map((s) => el("div", { "data-source": s.value, text: (s.value || "(not rendered yet)") + (r.sources.length > 1 ? " × " + s.units : "") }))),
          el("td", { class: "revisions" }, ...r.revisions.map((v) => el("div", { "data-revision": v.value },
            v.value ? el("code", { text: short(v.value), title: v.value }) : "not applied", v.subject ? " " + v.subject : "", r.revisions.length > 1 ? " × " + v.units : "")))));
      });
    }
    document.querySelector("#apps tbody").replaceChildren(...trs);
  }

  function drawHistory(passes) {
    document.getElementById("history-empty").hidden = passes.length > 0;
    document.querySelector("#history tbody").replaceChildren(...passes.map((p) => el("tr", { "data-revision": p.revision, "data-start": p.start },
      el("td", { text: when(p.start) }),
      el("td", {}, el("code", { text: short(p.revision), title: p.revision })),
      el("td", { text: (p.subject || "") + (p.author ? " — " + p.author : "") }),
      el("td", { class: "n", text: p.durationSeconds.toFixed(1) + "s" }),
      el("td", { class: "outcome", "data-converged": String(p.converged), text: p.converged ? "converged" : "did not converge", title: p.problems || "" }),
      el("td", { class: "region-outcomes" }, ...(p.regions || []).map((r) => el("span", { class: "badge", "data-region-state": r.state, title: [r.changes, r.error].filter(Boolean).join("\n"), text: r.name + " " + r.state }))),
      el("td", {}, String(p.placements) + " ", stateCounts(p.states)),
      el("td", { class: "n", text: String(p.renders) }))));
  }

  // --- the loop -------------------------------------------------------------

  function setLive(state, text) {
    const live = document.getElementById("live");
    live.dataset.state = state;
    live.textContent = text;
  }

  async function poll() {
    clearTimeout(timer);
    try {
      await load();
      lastOK = Date.now();
      setLive("live", "live — updated " + new Date(lastOK).toLocaleTimeString());
    } catch (err) {
      setLive("offline", "cannot reach the daemon (" + err.message + ")" + (lastOK ? "; showing data from " + new Date(lastOK).toLocaleTimeString() : ""));
    } finally {
      timer = setTimeout(poll, POLL_MS);
    }
  }

  function refresh() {
    generation++;
    poll();
  }

  function onFilter(key) {
    return (ev) => {
      filters[key] = ev.target.value.trim();
      writeFilters();
      refresh();
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    readRoute();
    for (const k of FILTERS) {
      document.getElementById("filter-" + k).addEventListener("change", onFilter(k));
    }
    let typing = null;
    document.getElementById("filter-q").addEventListener("input", (ev) => {
      clearTimeout(typing);
      typing = setTimeout(() => onFilter("q")(ev), 250);
    });
    document.getElementById("filters").addEventListener("submit", (ev) => ev.preventDefault());
    document.getElementById("filter-clear").addEventListener("click", () => {
      for (const k of FILTERS) filters[k] = "";
      for (const id of ["filter-q", "filter-tenant"]) document.getElementById(id).value = "";
      writeFilters();
      refresh();
    });
    document.getElementById("unit-events-reload").addEventListener("click", () => loadEvents());
    window.addEventListener("hashchange", () => {
      readRoute();
      eventsFor = "";
      refresh();
    });
    poll();
  });
})();
