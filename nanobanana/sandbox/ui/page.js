"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const chat = $("chat"), list = $("list"), input = $("input"), sendBtn = $("send");
  const messages = new Map();           // message id -> view from the server
  const nodes = new Map();              // render key -> {sig, el}
  let seq = 0, botName = document.title, typingTimer = null;

  // --- server ------------------------------------------------------------
  async function post(path, body) {
    const init = { method: "POST" };
    if (body instanceof FormData) init.body = body;
    else { init.body = JSON.stringify(body || {}); init.headers = { "Content-Type": "application/json" }; }
    const res = await fetch(path, init);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) toast(data.error || "Request failed");
    return data;
  }

  // The first request answers at once; later ones long-poll. "#static" stops after the first (screenshots).
  async function poll() {
    for (let first = true; ; first = false) {
      if (!first && location.hash === "#static") return;
      try {
        const res = await fetch(`ui/api/events?after=${seq}&wait=${first ? 0 : 20}`, { cache: "no-store" });
        if (!res.ok) throw new Error(String(res.status));
        apply(await res.json());
      } catch (error) {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  function apply(ev) {
    if (ev.reset) { messages.clear(); nodes.clear(); list.textContent = ""; }
    for (const m of ev.messages) {
      if (m.deleted) messages.delete(m.id); else messages.set(m.id, m);
    }
    seq = ev.seq;
    for (const n of ev.notices) n.alert ? alertBox(n.text) : toast(n.text);
    setLanguage(ev.language_code);
    setStatus(ev);
    render();
  }

  // --- header and status -------------------------------------------------
  const ACTIONS = { typing: "typing", upload_photo: "sending photo", upload_document: "sending file",
    upload_video: "sending video", record_video: "recording video", record_voice: "recording voice",
    upload_voice: "sending voice", choose_sticker: "choosing sticker" };

  function setStatus(ev) {
    const sub = $("bot-sub");
    if (ev.action) {
      sub.innerHTML = "";
      const s = document.createElement("span");
      s.className = "dots";
      s.textContent = ACTIONS[ev.action] || ev.action;
      sub.append(s);
      sub.classList.add("active");
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { sub.textContent = "bot"; sub.classList.remove("active"); }, 5500);
    } else if (!typingTimer || sub.textContent === "bot") {
      sub.textContent = "bot"; sub.classList.remove("active");
    }
    const st = ev.status, banner = $("banner");
    let note = "";
    if (st.pending > 0 && st.mode === "webhook" && st.last_error) {
      note = `The bot's webhook is not answering (${st.last_error}); ${st.pending} update(s) waiting, retrying…`;
    } else if (st.pending > 0 && st.mode === "polling" && (!st.last_poll || st.now - st.last_poll > 30)) {
      note = `Waiting for the bot to connect: ${st.pending} update(s) queued. Is the worker running?`;
    }
    banner.textContent = note;
    banner.hidden = !note;
  }

  function setLanguage(code) {
    for (const b of document.querySelectorAll(".lang button")) b.classList.toggle("on", b.dataset.lang === code);
  }

  // --- rendering ---------------------------------------------------------
  const esc = (s) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const safeUrl = (u) => (/^(https?:|tg:)/i.test(u || "") ? u : "#");

  function wrap(e, inner, text) {
    switch (e.type) {
      case "bold": return `<b>${inner}</b>`;
      case "italic": return `<i>${inner}</i>`;
      case "underline": return `<u>${inner}</u>`;
      case "strikethrough": return `<s>${inner}</s>`;
      case "code": return `<code class="b-code">${inner}</code>`;
      case "pre": return `<pre class="b-pre">${inner}</pre>`;
      case "spoiler": return `<span class="spoiler">${inner}</span>`;
      case "blockquote": case "expandable_blockquote": return `<blockquote>${inner}</blockquote>`;
      case "text_link": return `<a href="${esc(safeUrl(e.url))}" target="_blank" rel="noopener noreferrer">${inner}</a>`;
      case "url": return `<a href="${esc(safeUrl(text))}" target="_blank" rel="noopener noreferrer">${inner}</a>`;
      case "bot_command": return `<span class="cmd" data-cmd="${esc(text)}">${inner}</span>`;
      default: return inner;
    }
  }

  // Offsets are UTF-16 code units, which is exactly how JS strings index.
  function formatRange(text, ents, start, end) {
    let out = "", pos = start, i = 0;
    while (i < ents.length) {
      const e = ents[i], eEnd = e.offset + e.length;
      if (e.offset < pos || eEnd > end) { i++; continue; }
      out += esc(text.slice(pos, e.offset));
      const inside = [];
      let j = i + 1;
      while (j < ents.length && ents[j].offset < eEnd) { if (ents[j].offset + ents[j].length <= eEnd) inside.push(ents[j]); j++; }
      out += wrap(e, formatRange(text, inside, e.offset, eEnd), text.slice(e.offset, eEnd));
      pos = eEnd; i = j;
    }
    return out + esc(text.slice(pos, end));
  }

  function formatted(text, entities) {
    const ents = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
    return formatRange(text, ents, 0, text.length);
  }

  const time = (d) => new Date(d * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const size = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
  const fileUrl = (id) => `ui/files/${encodeURIComponent(id)}`;
  const el = (tag, cls, html) => { const x = document.createElement(tag); if (cls) x.className = cls; if (html != null) x.innerHTML = html; return x; };

  function meta(m) {
    return `<span class="meta">${m.edited ? '<span class="edited">edited</span>' : ""}${time(m.date)}${m.outgoing ? "" : '<span class="tick">✓✓</span>'}</span>`;
  }

  function photoImg(p, cls) {
    const img = el("img", cls || "photo");
    img.src = fileUrl(p.file_id); img.loading = "lazy"; img.alt = "photo";
    if (p.width && p.height) { img.width = p.width; img.height = p.height; }
    img.addEventListener("click", () => window.open(fileUrl(p.file_id), "_blank"));
    img.addEventListener("load", keepBottom);
    return img;
  }

  function bubbleFor(m) {
    const b = el("div", "bubble");
    if (m.reply_to) b.append(el("div", "reply-to", esc(m.reply_to.text || "message")));
    const cap = m.caption ? `<div class="caption text">${formatted(m.caption, m.caption_entities)}${meta(m)}</div>` : "";
    if (m.photo || m.video) {
      b.classList.add("media");
      if (m.photo) b.append(photoImg(m.photo));
      else {
        const v = el("video", "photo");
        v.src = fileUrl(m.video.file_id); v.controls = true; v.preload = "metadata"; v.loop = !!m.video.loop;
        b.append(v);
      }
      if (cap) b.insertAdjacentHTML("beforeend", cap); else { b.classList.add("bare"); b.insertAdjacentHTML("beforeend", meta(m)); }
    } else if (m.document) {
      const d = m.document;
      if (d.is_image) b.append(photoImg({ file_id: d.file_id }, "file-preview"));
      const ext = (d.file_name.split(".").pop() || "file").slice(0, 4);
      const a = el("a", "file");
      a.href = `${fileUrl(d.file_id)}?download=1`;
      a.innerHTML = `<div class="file-icon">${esc(ext)}</div><div><div class="file-name">${esc(d.file_name)}</div><div class="file-size">${size(d.size)}</div></div>`;
      b.append(a);
      b.insertAdjacentHTML("beforeend", cap || `<div>${meta(m)}</div>`);
    } else if (m.sticker) {
      b.classList.add("media", "bare");
      b.style.background = "transparent"; b.style.boxShadow = "none";
      b.insertAdjacentHTML("beforeend", `<div class="sticker">${esc(m.sticker.emoji || "🙂")}</div>${meta(m)}`);
    } else if (m.voice) {
      b.insertAdjacentHTML("beforeend", `<div class="voice"><div class="play">▶</div><div>Voice message · 0:${String(m.voice.duration).padStart(2, "0")}</div></div>${meta(m)}`);
    } else if (m.invoice) {
      const inv = m.invoice, stars = inv.currency === "XTR";
      const price = stars ? `⭐ ${inv.total_amount}` : `${inv.total_amount / 100} ${inv.currency}`;
      b.insertAdjacentHTML("beforeend", `<div class="invoice-title">${esc(inv.title)}</div><div class="invoice-desc">${esc(inv.description)}</div>`);
      const pay = el("button", "pay-btn", `Pay ${esc(price)}`);
      pay.type = "button";
      pay.addEventListener("click", () => post("ui/api/pay", { message_id: m.id }));
      b.append(pay);
      b.insertAdjacentHTML("beforeend", `<div>${meta(m)}</div>`);
    } else {
      b.insertAdjacentHTML("beforeend", `<span class="text">${formatted(m.text || "", m.entities)}</span>${meta(m)}`);
    }
    return b;
  }

  function keyboardFor(m) {
    const kb = el("div", "keyboard");
    for (const row of m.buttons) {
      const r = el("div", "kb-row");
      for (const btn of row) {
        const x = el("button", "kb-btn");
        x.type = "button";
        x.textContent = btn.text;
        if (btn.url) {
          x.insertAdjacentHTML("beforeend", '<span class="corner">↗</span>');
          x.addEventListener("click", () => window.open(safeUrl(btn.url), "_blank", "noopener"));
        } else if (btn.callback_data != null) {
          x.addEventListener("click", async () => {
            x.classList.add("busy");
            await post("ui/api/press", { message_id: m.id, data: btn.callback_data });
            setTimeout(() => x.classList.remove("busy"), 400);
          });
        } else if (btn.pay) {
          x.addEventListener("click", () => post("ui/api/pay", { message_id: m.id }));
        }
        r.append(x);
      }
      kb.append(r);
    }
    return kb;
  }

  function unitsOf(sorted) {
    const units = [];
    for (const m of sorted) {
      const last = units[units.length - 1];
      if (m.media_group_id && last && last.group === m.media_group_id) { last.items.push(m); continue; }
      units.push({ key: m.media_group_id ? `g${m.media_group_id}` : `m${m.id}`, group: m.media_group_id, items: [m] });
    }
    return units;
  }

  function buildUnit(u, tail) {
    const first = u.items[0], lastItem = u.items[u.items.length - 1];
    if (first.payment) {
      const p = first.payment, amount = p.currency === "XTR" ? `⭐ ${p.total_amount}` : `${p.total_amount / 100} ${p.currency}`;
      const row = el("div", "row service");
      row.append(el("div", "service-pill", `You paid ${esc(amount)}`));
      return row;
    }
    const row = el("div", `row ${first.outgoing ? "in" : "out"}${tail ? " tail" : ""}`);
    if (u.items.length > 1 && u.items.every((m) => m.photo || m.video)) {
      const b = el("div", "bubble media");
      const grid = el("div", `album n${Math.min(u.items.length, 3)}`);
      for (const m of u.items) grid.append(m.photo ? photoImg(m.photo) : bubbleFor(m));
      b.append(grid);
      const withCap = u.items.find((m) => m.caption);
      if (withCap) b.insertAdjacentHTML("beforeend", `<div class="caption text">${formatted(withCap.caption, withCap.caption_entities)}${meta(lastItem)}</div>`);
      else { b.classList.add("bare"); b.insertAdjacentHTML("beforeend", meta(lastItem)); }
      row.append(b);
    } else {
      for (const m of u.items) row.append(bubbleFor(m));
    }
    if (lastItem.buttons && lastItem.buttons.length) row.append(keyboardFor(lastItem));
    return row;
  }

  function dayLabel(d) {
    const date = new Date(d * 1000), today = new Date();
    if (date.toDateString() === today.toDateString()) return "Today";
    return date.toLocaleDateString([], { day: "numeric", month: "long" });
  }

  function render() {
    const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
    const sorted = [...messages.values()].sort((a, b) => a.id - b.id);
    const units = unitsOf(sorted);
    const wanted = [];
    let lastDay = "";
    units.forEach((u, i) => {
      const day = dayLabel(u.items[0].date);
      if (day !== lastDay) {
        lastDay = day;
        const key = `d${day}`;
        if (!nodes.has(key)) nodes.set(key, { sig: day, el: el("div", "day", esc(day)) });
        wanted.push(key);
      }
      const next = units[i + 1];
      const tail = !next || next.items[0].outgoing !== u.items[0].outgoing;
      const sig = u.items.map((m) => `${m.id}:${m.seq}`).join(",") + (tail ? "t" : "");
      const have = nodes.get(u.key);
      if (!have || have.sig !== sig) {
        const fresh = buildUnit(u, tail);
        if (have) have.el.replaceWith(fresh);
        nodes.set(u.key, { sig, el: fresh });
      }
      wanted.push(u.key);
    });
    const keep = new Set(wanted);
    for (const [key, n] of nodes) if (!keep.has(key)) { n.el.remove(); nodes.delete(key); }
    wanted.forEach((key, i) => {
      const node = nodes.get(key).el;
      if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    });
    $("empty").hidden = messages.size > 0;
    renderReplyKeyboard(sorted);
    if (atBottom) keepBottom();
  }

  function renderReplyKeyboard(sorted) {
    const box = $("reply-kb");
    const last = [...sorted].reverse().find((m) => m.outgoing && (m.keyboard || m.remove_keyboard));
    box.textContent = "";
    box.hidden = !(last && last.keyboard);
    if (box.hidden) return;
    for (const row of last.keyboard) {
      const r = el("div", "kb-row");
      for (const label of row) {
        const x = el("button");
        x.type = "button"; x.textContent = label;
        x.addEventListener("click", () => sendText(label));
        r.append(x);
      }
      box.append(r);
    }
  }

  function keepBottom() { chat.scrollTop = chat.scrollHeight; }

  // --- feedback ------------------------------------------------------------
  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text; t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 2600);
  }
  function alertBox(text) { $("modal-text").textContent = text; $("modal").hidden = false; }
  $("modal-ok").addEventListener("click", () => { $("modal").hidden = true; });

  // --- input ---------------------------------------------------------------
  async function sendText(text) {
    text = text.trim();
    if (!text) return;
    await post("ui/api/send", { text });
  }

  function syncComposer() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
    sendBtn.disabled = !input.value.trim();
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = ""; syncComposer(); input.focus();
    sendText(text);
  });
  input.addEventListener("input", syncComposer);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("file").addEventListener("change", async (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    if (!files.length) return;
    const form = new FormData();
    files.slice(0, 10).forEach((f, i) => form.append(`file${String(i).padStart(2, "0")}`, f, f.name));
    const caption = input.value.trim();
    if (caption) { form.append("caption", caption); input.value = ""; syncComposer(); }
    await post("ui/api/upload", form);
  });
  list.addEventListener("click", (e) => {
    const target = e.target;
    if (target.classList.contains("spoiler")) target.classList.add("open");
    if (target.classList.contains("cmd")) sendText(target.dataset.cmd);
  });
  $("start").addEventListener("click", () => sendText("/start"));
  $("reset").addEventListener("click", async () => {
    if (confirm("Clear this chat? The bot keeps its own data.")) await post("ui/api/reset");
  });
  for (const b of document.querySelectorAll(".lang button")) {
    b.addEventListener("click", () => { setLanguage(b.dataset.lang); post("ui/api/language", { language_code: b.dataset.lang }); });
  }

  (async () => {
    try {
      const st = await (await fetch("ui/api/state", { cache: "no-store" })).json();
      botName = st.bot.name;
      $("bot-name").textContent = botName;
      setLanguage(st.user.language_code);
    } catch (error) { /* the poll loop retries */ }
    syncComposer();
    poll();
  })();
})();
