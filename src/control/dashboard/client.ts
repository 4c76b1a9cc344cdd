// The dashboard's script, run in the browser: follows GET /api/events, keeps the chart history,
// updates the page in place (rows keyed by pool and server, so nothing is rebuilt each second),
// and sends drain / maint / ready to the admin API's write routes with the token, asked once and
// kept in sessionStorage. Every text goes in through textContent, never as HTML.
// Written as one string (no backquotes or dollar-brace inside) so it ships in the binary as is.
export const DASHBOARD_JS = String.raw`"use strict";
(function () {
  var TOKEN_KEY = "fulcrum.admin.token";
  var SVG = "http://www.w3.org/2000/svg";
  var history = { length: 300, times: [], series: {} };
  var fields = { pool: ["rps", "latency_ms", "active", "queued"], server: ["rps", "active"] };
  var $ = function (id) { return document.getElementById(id); };

  function h(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) { e.appendChild(c); });
    return e;
  }
  function setText(e, s) { s = String(s); if (e.textContent !== s) e.textContent = s; }
  function setAttr(e, k, v) { v = String(v); if (e.getAttribute(k) !== v) e.setAttribute(k, v); }
  function fmt(n, digits) {
    if (n === null || n === undefined || isNaN(n)) return "-";
    if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return digits ? n.toFixed(digits) : String(Math.round(n));
  }
  function ago(iso) {
    if (!iso) return "-";
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 60) return Math.floor(s) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }
  function duration(sec) {
    var d = Math.floor(sec / 86400), hh = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = Math.floor(sec) % 60;
    return (d ? d + "d " : "") + (d || hh ? hh + "h " : "") + (d || hh || m ? m + "m " : "") + s + "s";
  }

  // What a row shows: maint and drain are the operator's; down is any other reason.
  function displayState(s) {
    if (s.admin === "maint") return "maint";
    if (s.down_reasons.some(function (r) { return r !== "drain"; })) return "down";
    if (s.admin === "drain") return "drain";
    return "up";
  }

  // ------------------------------------------------------------------ charts
  function series(key, field) {
    var kind = key.slice(0, key.indexOf(":"));
    var f = fields[kind].indexOf(field);
    var s = history.series[key];
    return s && f >= 0 ? s[f] : [];
  }
  function addSample(sample) {
    history.times.push(sample.t);
    var drop = history.times.length > history.length;
    if (drop) history.times.shift();
    var n = history.times.length;
    for (var key in history.series) if (!(key in sample.values)) delete history.series[key];
    for (key in sample.values) {
      var vals = sample.values[key], s = history.series[key];
      if (!s) {
        s = history.series[key] = vals.map(function () { var a = []; for (var i = 0; i < n - 1; i++) a.push(null); return a; });
      }
      for (var f = 0; f < vals.length; f++) {
        s[f].push(vals[f]);
        while (s[f].length > n) s[f].shift();
      }
    }
  }
  function spark(cls, width, height) {
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark " + cls);
    svg.setAttribute("width", width); svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    var area = document.createElementNS(SVG, "path"); area.setAttribute("class", "area");
    var line = document.createElementNS(SVG, "path"); line.setAttribute("class", "line");
    svg.appendChild(area); svg.appendChild(line);
    return svg;
  }
  // Draws the last points of values (null: a gap); returns the largest value shown.
  function draw(svg, values) {
    var w = +svg.getAttribute("width"), hgt = +svg.getAttribute("height");
    var n = history.length, max = 0;
    values = values.slice(-n);
    values.forEach(function (v) { if (v !== null && v > max) max = v; });
    var top = max > 0 ? max * 1.1 : 1, step = w / (n - 1), off = n - values.length;
    var d = "", a = "", run = [];
    function flush() {
      if (run.length === 0) return;
      d += "M" + run.join("L");
      a += "M" + run[0].split(",")[0] + "," + hgt + "L" + run.join("L") + "L" + run[run.length - 1].split(",")[0] + "," + hgt + "Z";
      run = [];
    }
    values.forEach(function (v, i) {
      if (v === null) { flush(); return; }
      run.push(((off + i) * step).toFixed(1) + "," + (hgt - 1 - (v / top) * (hgt - 3)).toFixed(1));
    });
    flush();
    svg.lastChild.setAttribute("d", d);
    svg.firstChild.setAttribute("d", a);
    return max;
  }
  function chart(title, cls, width, height) {
    var now = h("b"), peak = h("span", { cls: "mute" });
    var svg = spark(cls, width, height);
    var box = h("div", { cls: "chart" }, [h("div", { cls: "label" }, [h("span", { text: title }), h("span", {}, [now, peak])]), svg]);
    return { box: box, update: function (values, unit, digits) {
      var cur = values.length ? values[values.length - 1] : null;
      var max = draw(svg, values);
      setText(now, fmt(cur, digits) + unit);
      setText(peak, "  max " + fmt(max, digits) + unit);
    } };
  }

  // ------------------------------------------------------------------ header
  function renderStatus(st) {
    var box = $("status");
    var items = [["version", st.version], ["runtime", st.runtime], ["pid", st.pid], ["generation", st.generation],
      ["phase", st.phase], ["uptime", duration(st.uptime_seconds)], ["reloads", st.reloads.ok + " ok / " + st.reloads.failed + " failed"]];
    if (box.children.length !== items.length) {
      box.textContent = "";
      items.forEach(function (it) { box.appendChild(h("span", { "data-item": it[0] }, [document.createTextNode(it[0] + " "), h("b")])); });
    }
    items.forEach(function (it, i) { setText(box.children[i].lastChild, it[1]); });
    var part = $("listeners-part");
    part.hidden = st.listeners.length === 0;
    var table = keyedTable($("listeners"), ["name", "address", "connections"], ["", "", "num"]);
    syncRows(table, st.listeners, function (l) { return l.name; }, function (tr, l) {
      setText(tr.cells[0], l.name); setText(tr.cells[1], l.address); setText(tr.cells[2], l.connections);
    }, 3);
  }

  // ------------------------------------------------------------------ tables kept in place
  function keyedTable(container, heads, classes) {
    if (container.firstChild && container.firstChild.tagName === "TABLE") return container.firstChild.tBodies[0];
    container.textContent = "";
    var tr = h("tr");
    heads.forEach(function (t, i) { tr.appendChild(h("th", { text: t, cls: classes[i] || "" })); });
    var table = h("table", {}, [h("thead", {}, [tr]), h("tbody")]);
    container.appendChild(table);
    return table.tBodies[0];
  }
  function syncRows(tbody, items, keyOf, update, cells, create) {
    var have = {};
    Array.prototype.forEach.call(tbody.rows, function (r) { have[r.getAttribute("data-key")] = r; });
    items.forEach(function (item, i) {
      var key = keyOf(item), tr = have[key];
      if (!tr) {
        tr = h("tr", { "data-key": key });
        var heads = tbody.parentNode.tHead.rows[0].cells;
        for (var c = 0; c < cells; c++) tr.appendChild(h("td", { cls: heads[c] ? heads[c].className : "" }));
        if (create) create(tr, item);
      }
      delete have[key];
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      update(tr, item);
    });
    for (var k in have) have[k].remove();
  }

  // ------------------------------------------------------------------ pools
  var SERVER_HEADS = ["state", "server", "admin", "weight / eff.", "active", "max", "requests", "fails", "req/s", "checks", "last change", ""];
  var SERVER_CLASSES = ["", "", "", "num", "num", "num", "num", "num", "", "", "", ""];
  var poolCards = {};

  function poolCard(p) {
    var card = poolCards[p.name];
    if (card) return card;
    var facts = h("div", { cls: "facts" });
    var rps = chart("requests / s", "rps", 300, 54), lat = chart("mean response time", "latency", 300, 54), act = chart("active", "rps", 180, 54);
    var table = h("div");
    var el = h("section", { cls: "card", "data-pool": p.name }, [
      h("div", { cls: "card-head" }, [h("h3", { text: p.name }), facts]),
      h("div", { cls: "charts" }, [rps.box, lat.box, act.box]),
      table,
    ]);
    card = poolCards[p.name] = { el: el, facts: facts, rps: rps, lat: lat, act: act, table: table };
    return card;
  }

  function renderPools(pools) {
    var box = $("pools");
    var seen = {};
    if (pools.length === 0) box.textContent = "no pools";
    else if (box.firstChild && box.firstChild.nodeType === 3) box.textContent = "";
    pools.forEach(function (p, i) {
      var card = poolCard(p);
      seen[p.name] = true;
      if (box.children[i] !== card.el) box.insertBefore(card.el, box.children[i] || null);
      var hl = p.health;
      var facts = [["scheduler", p.scheduler], ["up", hl ? hl.up + " / " + hl.total : p.servers.length],
        ["queued", p.queued + (p.queue.size ? " / " + p.queue.size : "")]];
      if (hl && hl.panic) facts.push(["", "PANIC"]);
      if (hl && !hl.quorum_met) facts.push(["", "below quorum"]);
      if (card.facts.children.length !== facts.length) {
        card.facts.textContent = "";
        facts.forEach(function () { card.facts.appendChild(h("span", {}, [document.createTextNode(""), h("b")])); });
      }
      facts.forEach(function (f, k) {
        var span = card.facts.children[k];
        setText(span.firstChild, f[0] ? f[0] + " " : "");
        setText(span.lastChild, f[1]);
      });
      card.rps.update(series("pool:" + p.name, "rps"), "", 1);
      card.lat.update(series("pool:" + p.name, "latency_ms"), " ms", 1);
      card.act.update(series("pool:" + p.name, "active"), "", 0);
      var rows = p.servers.slice();
      if (p.sorry_server) rows.push(Object.assign({ sorry: true }, p.sorry_server));
      var tbody = keyedTable(card.table, SERVER_HEADS, SERVER_CLASSES);
      syncRows(tbody, rows, function (s) { return s.address; }, function (tr, s) { updateServer(tr, p, s); }, SERVER_HEADS.length,
        function (tr, s) { createServer(tr, p, s); });
    });
    for (var name in poolCards) if (!seen[name]) { poolCards[name].el.remove(); delete poolCards[name]; }
  }

  function createServer(tr, p, s) {
    tr.setAttribute("data-server", s.address);
    tr.cells[0].appendChild(h("span", { cls: "badge" }));
    tr.cells[1].appendChild(h("span"));
    tr.cells[1].appendChild(h("div", { cls: "reasons" }));
    var rps = spark("rps", 120, 22);
    tr.cells[8].appendChild(rps);
    tr.cells[9].appendChild(h("div", { cls: "checks" }));
    var actions = h("div", { cls: "actions" });
    if (!s.sorry) ["ready", "drain", "maint"].forEach(function (a) {
      var b = h("button", { type: "button", "data-action": a, text: a, title: a + " " + s.address });
      b.addEventListener("click", function () { act(p.name, s.address, a); });
      actions.appendChild(b);
    });
    tr.cells[11].appendChild(actions);
  }

  function updateServer(tr, p, s) {
    var state = displayState(s);
    setAttr(tr, "data-state", state);
    var badge = tr.cells[0].firstChild;
    setAttr(badge, "data-state", state);
    setText(badge, state.toUpperCase());
    setText(tr.cells[1].firstChild, s.address + (s.sorry ? " (sorry)" : s.backup ? " (backup)" : ""));
    var reasons = s.down_reasons.filter(function (r) { return r !== "drain" && r !== "admin"; });
    setText(tr.cells[1].lastChild, reasons.length ? "down: " + reasons.join(", ") : "");
    setText(tr.cells[2], s.admin);
    setText(tr.cells[3], s.weight + " / " + s.effective_weight);
    setText(tr.cells[4], s.active);
    setText(tr.cells[5], s.max_conns || "-");
    setText(tr.cells[6], fmt(s.requests));
    setText(tr.cells[7], fmt(s.failures));
    draw(tr.cells[8].firstChild, series("server:" + p.name + "/" + s.address, "rps"));
    var checks = tr.cells[9].firstChild;
    if (checks.children.length !== s.checks.length) {
      checks.textContent = "";
      s.checks.forEach(function () { checks.appendChild(h("span", { cls: "check" })); });
    }
    s.checks.forEach(function (c, i) {
      var e = checks.children[i];
      setAttr(e, "data-up", c.up);
      setText(e, c.type + " " + (c.up === null ? "pending" : c.up ? "up" : "down") + (c.duration_ms !== null ? " " + fmt(c.duration_ms, 1) + " ms" : ""));
      setAttr(e, "title", (c.detail || "") + (c.last_check ? " (last check " + c.last_check + ", " + c.checks + " checks)" : ""));
    });
    if (s.checks.length === 0) setText(checks, "no checks");
    setText(tr.cells[10], ago(s.last_change));
    Array.prototype.forEach.call(tr.cells[11].querySelectorAll("button"), function (b) {
      setAttr(b, "data-current", b.getAttribute("data-action") === s.admin);
    });
  }

  // ------------------------------------------------------------------ vrrp and l4
  function renderVrrp(instances) {
    $("vrrp-part").hidden = instances.length === 0;
    if (instances.length === 0) return;
    var tbody = keyedTable($("vrrp"), ["state", "instance", "interface", "vrid", "priority", "addresses", "adverts sent", "received", "dropped"],
      ["", "", "", "num", "num", "", "num", "num", "num"]);
    syncRows(tbody, instances, function (i) { return i.name; }, function (tr, i) {
      var badge = tr.cells[0].firstChild || tr.cells[0].appendChild(h("span", { cls: "badge" }));
      setAttr(tr, "data-instance", i.name);
      setAttr(badge, "data-state", i.state);
      setText(badge, i.state);
      setText(tr.cells[1], i.name); setText(tr.cells[2], i.interface); setText(tr.cells[3], i.vrid);
      setText(tr.cells[4], i.priority + (i.priority !== i.configured_priority ? " (" + i.configured_priority + ")" : ""));
      setText(tr.cells[5], i.addresses.join(", "));
      setText(tr.cells[6], fmt(i.adverts.sent)); setText(tr.cells[7], fmt(i.adverts.received));
      var dropped = 0; for (var k in i.drops) dropped += i.drops[k];
      setText(tr.cells[8], fmt(dropped));
    }, 9);
  }

  function renderL4(l4) {
    var any = l4.listeners.length > 0 || l4.virtual_servers.length > 0;
    $("l4-part").hidden = !any;
    if (!any) return;
    var box = $("l4");
    if (!box.firstChild) {
      box.appendChild(h("div", { cls: "card", id: "l4-listeners" }));
      box.appendChild(h("div", { cls: "card", id: "l4-virtual" }));
    }
    var lc = $("l4-listeners");
    lc.hidden = l4.listeners.length === 0;
    if (l4.listeners.length) {
      var tbody = keyedTable(lc, ["listener", "protocol", "address", "to", "connections", "max"], ["", "", "", "", "num", "num"]);
      syncRows(tbody, l4.listeners, function (l) { return l.name; }, function (tr, l) {
        setText(tr.cells[0], l.name); setText(tr.cells[1], l.protocol + (l.accept_proxy ? " (PROXY)" : ""));
        setText(tr.cells[2], l.address);
        setText(tr.cells[3], l.pool !== null ? l.pool : l.routes.map(function (r) { return (r.sni ? r.sni.join(" ") : "*") + " -> " + r.pool; }).join("; "));
        setText(tr.cells[4], l.connections); setText(tr.cells[5], l.max_connections);
      }, 6);
      var c = l4.counters, errs = [];
      for (var k in c.errors) if (c.errors[k]) errs.push(k + " " + c.errors[k]);
      var foot = lc.querySelector(".l4-counters") || lc.appendChild(h("div", { cls: "card-head l4-counters" }));
      setText(foot, "sessions " + c.sessions + ", retries " + c.retries + (errs.length ? "; errors: " + errs.join(", ") : "; no errors"));
    }
    // As ipvsadm -Ln lists them: a virtual server, then "->" its real servers.
    var vc = $("l4-virtual");
    vc.hidden = l4.virtual_servers.length === 0;
    if (l4.virtual_servers.length) {
      vc.textContent = "";
      var table = h("table", { cls: "ipvs" });
      table.appendChild(h("thead", {}, [h("tr", {}, ["Prot LocalAddress:Port Scheduler Flags", "Forward", "Weight", "ActiveConn", "InActConn"].map(function (t, i) {
        return h("th", { text: t, cls: i > 1 ? "num" : "" });
      }))]));
      var body = h("tbody");
      l4.virtual_servers.forEach(function (v) {
        var flags = (v.persistent_seconds ? " persistent " + v.persistent_seconds : "") + (v.served ? "" : "  (not served: " + l4.director.reason + ")");
        body.appendChild(h("tr", { "data-vs": v.name }, [h("td", { cls: "vs", colspan: "5", text: v.protocol + "  " + v.virtual + " " + (v.scheduler || "-") + flags + "  [" + v.name + ", pool " + v.pool + "]" })]));
        v.real_servers.forEach(function (r) {
          body.appendChild(h("tr", { "data-state": r.state.toLowerCase() }, [h("td", { text: "  -> " + r.address }), h("td", { text: r.forward }),
            h("td", { cls: "num", text: r.weight }), h("td", { cls: "num", text: r.active === null ? "-" : r.active }), h("td", { cls: "num", text: r.inactive === null ? "-" : r.inactive })]));
        });
      });
      table.appendChild(body);
      vc.appendChild(table);
    }
  }

  function render(m) {
    renderStatus(m.status);
    renderPools(m.pools);
    renderVrrp(m.vrrp);
    renderL4(m.l4);
    document.body.setAttribute("data-rendered-at", String(Date.now()));
  }

  // ------------------------------------------------------------------ writes
  var toastTimer = null;
  function toast(text, kind) {
    var t = $("toast");
    t.textContent = text;
    t.setAttribute("data-kind", kind || "ok");
    t.setAttribute("data-show", "true");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.setAttribute("data-show", "false"); }, 4000);
  }
  var tokenWaiter = null;
  function askToken() {
    var d = $("token-dialog");
    $("token-input").value = sessionStorage.getItem(TOKEN_KEY) || "";
    if (!d.open) d.showModal();
    $("token-input").focus();
    return new Promise(function (resolve) { tokenWaiter = resolve; });
  }
  function closeToken(value) {
    var d = $("token-dialog");
    if (d.open) d.close();
    var w = tokenWaiter; tokenWaiter = null;
    if (w) w(value);
  }
  $("token-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var v = $("token-input").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    closeToken(v || null);
  });
  $("token-cancel").addEventListener("click", function () { closeToken(null); });
  $("token-forget").addEventListener("click", function () { sessionStorage.removeItem(TOKEN_KEY); toast("token forgotten"); closeToken(null); });
  $("token-dialog").addEventListener("cancel", function () { closeToken(null); });
  $("token-button").addEventListener("click", function () { askToken(); });

  function act(pool, server, action) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    var go = token ? Promise.resolve(token) : askToken();
    go.then(function (tok) {
      if (!tok) return;
      var path = "/api/pools/" + encodeURIComponent(pool) + "/servers/" + encodeURIComponent(server) + "/" + action;
      return fetch(path, { method: "POST", headers: { authorization: "Bearer " + tok } }).then(function (r) {
        return r.json().then(function (body) {
          if (r.status === 401 || r.status === 403) sessionStorage.removeItem(TOKEN_KEY);
          toast(r.ok ? body.message : action + " failed: " + body.error, r.ok ? "ok" : "error");
        });
      });
    }).catch(function (e) { toast(action + " failed: " + e.message, "error"); });
  }

  // ------------------------------------------------------------------ the feed
  function connect() {
    var es = new EventSource("/api/events");
    es.addEventListener("history", function (e) {
      var m = JSON.parse(e.data);
      fields = m.fields;
      history.times = m.times;
      history.series = m.series;
    });
    es.addEventListener("snapshot", function (e) {
      var m = JSON.parse(e.data);
      if (m.sample) addSample(m.sample);
      render(m);
    });
    es.addEventListener("open", function () { setAttr($("live"), "data-live", "live"); setText($("live"), "live"); });
    es.addEventListener("error", function () { setAttr($("live"), "data-live", "reconnecting"); setText($("live"), "reconnecting"); });
  }
  connect();
})();
`;
