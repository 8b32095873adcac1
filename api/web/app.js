// hearsay web UI. Every string that comes from the peer (and so possibly
// from another user) is inserted with textContent, never as HTML; the
// page's Content-Security-Policy allows no inline script.
"use strict";

const state = {
  token: "",
  self: null,
  current: "lobby",     // room name, or "@peer" for a direct conversation
  convs: new Map(),     // name -> {items: [], seen: Set, unread: bool}
  lastEventID: "",
  members: [],
};

const maxItems = 1000;

function $(id) { return document.getElementById(id); }

function readToken() {
  const m = /(?:^|[#&])token=([0-9a-f]+)/.exec(location.hash);
  if (m) {
    state.token = m[1];
    sessionStorage.setItem("hearsay-token", m[1]);
    // The token leaves the address bar (and the history entry).
    history.replaceState(null, "", location.pathname);
  } else {
    state.token = sessionStorage.getItem("hearsay-token") || "";
  }
}

function showError(msg) {
  const e = $("error");
  e.className = "";
  e.textContent = msg || "";
}

function showNotice(msg) {
  const e = $("error");
  e.className = "notice";
  e.textContent = msg;
}

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = data && data.message ? data.message : res.status + " " + res.statusText;
    if (res.status === 401) setStatus("token rejected: open the URL hearsay --web prints", false);
    throw new Error(msg);
  }
  return data;
}

function setStatus(text, ok) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (ok ? "ok" : "bad");
}

function conv(name) {
  let c = state.convs.get(name);
  if (!c) {
    c = { items: [], seen: new Set(), unread: false };
    state.convs.set(name, c);
  }
  return c;
}

function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString();
}

// addItem stores an event in its conversation (once per message ID) and
// shows it if that conversation is open.
function addItem(name, ev) {
  const c = conv(name);
  if (ev.id) {
    if (c.seen.has(ev.id)) return;
    c.seen.add(ev.id);
  }
  c.items.push(ev);
  if (c.items.length > maxItems) {
    const old = c.items.shift();
    if (old.id) c.seen.delete(old.id);
  }
  if (name === state.current) {
    appendItem(ev);
  } else {
    c.unread = true;
    renderRooms();
  }
}

function appendItem(ev) {
  const chat = $("chat");
  const li = document.createElement("li");
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = fmtTime(ev.time);
  li.appendChild(time);
  if (ev.type === "message" || ev.type === "history" || ev.type === "direct") {
    li.className = "msg" + (ev.late ? " late" : "");
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = ev.from || ev.from_id || "?";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = ev.text || "";
    li.appendChild(from);
    li.appendChild(text);
    if (ev.id) li.dataset.id = ev.id;
  } else {
    li.className = "system";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = describe(ev);
    li.appendChild(text);
  }
  const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
  chat.appendChild(li);
  while (chat.children.length > maxItems) chat.removeChild(chat.firstChild);
  if (atBottom) chat.scrollTop = chat.scrollHeight;
}

function describe(ev) {
  switch (ev.type) {
    case "join": return (ev.from || ev.from_id) + " joined";
    case "leave": return (ev.from || ev.from_id) + " left";
    case "failed": return (ev.from || ev.from_id) + " failed";
    case "nick": return (ev.text || "?") + " is now " + (ev.from || "?");
    default: return ev.text || ev.type;
  }
}

function renderChat() {
  $("chat-title").textContent = state.current.startsWith("@") ? state.current : "#" + state.current;
  const chat = $("chat");
  chat.replaceChildren();
  for (const ev of conv(state.current).items) appendItem(ev);
  chat.scrollTop = chat.scrollHeight;
}

function renderRooms() {
  const ul = $("rooms");
  ul.replaceChildren();
  for (const [name, c] of state.convs) {
    const li = document.createElement("li");
    li.textContent = name.startsWith("@") ? name : "#" + name;
    li.dataset.room = name;
    if (name === state.current) li.classList.add("current");
    if (c.unread) li.classList.add("unread");
    li.addEventListener("click", () => openConv(name));
    ul.appendChild(li);
  }
}

async function openConv(name) {
  state.current = name;
  const c = conv(name);
  c.unread = false;
  renderRooms();
  if (!name.startsWith("@") && !c.loaded) {
    c.loaded = true;
    try {
      const evs = await api("GET", "/v1/rooms/" + encodeURIComponent(name) + "/history?limit=200");
      const live = c.items;
      c.items = [];
      c.seen = new Set();
      for (const ev of evs) { ev.type = "message"; storeOnly(c, ev); }
      for (const ev of live) storeOnly(c, ev);
    } catch (e) { showError(e.message); }
  }
  if (state.current === name) renderChat();
}

function storeOnly(c, ev) {
  if (ev.id) {
    if (c.seen.has(ev.id)) return;
    c.seen.add(ev.id);
  }
  c.items.push(ev);
}

function renderMembers() {
  const ul = $("members");
  ul.replaceChildren();
  for (const m of state.members) {
    const li = document.createElement("li");
    const nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = m.display_name || m.nick;
    nick.title = m.id + " " + (m.addr || "");
    const st = document.createElement("span");
    st.className = "state " + m.state;
    st.textContent = m.self ? m.state + " (you)" : m.state;
    li.dataset.id = m.id;
    li.appendChild(nick);
    li.appendChild(st);
    ul.appendChild(li);
  }
}

async function refreshMembers() {
  try {
    state.members = await api("GET", "/v1/members");
    renderMembers();
  } catch (e) { showError(e.message); }
}

async function refreshRooms() {
  try {
    const rooms = await api("GET", "/v1/rooms");
    for (const r of rooms) if (r.joined) conv(r.name);
    renderRooms();
  } catch (e) { showError(e.message); }
}

async function refreshSelf() {
  state.self = await api("GET", "/v1/self");
  $("self-id").textContent = state.self.id;
  $("self-addr").textContent = state.self.addr || "(not started)";
  if (document.activeElement !== $("nick-input")) $("nick-input").value = state.self.nick;
}

function handleEvent(ev) {
  switch (ev.type) {
    case "message":
      addItem(ev.room || "lobby", ev);
      break;
    case "direct": {
      // One conversation per peer ID, whichever way the message went
      // (nicks change and can be shared; IDs cannot).
      const peer = ev.from_id === (state.self && state.self.id) ? (ev.to_id || "?") : (ev.from_id || "?");
      addItem("@" + peer, ev);
      break;
    }
    case "join": case "leave": case "failed": case "nick":
      addItem(state.current, ev);
      refreshMembers();
      if (ev.type === "nick" && ev.from_id === (state.self && state.self.id)) refreshSelf();
      break;
    case "gap":
      addItem(state.current, ev);
      break;
    case "error":
      showError(ev.text || "error");
      break;
    default:
      if (ev.room) addItem(ev.room, ev);
  }
}

// stream reads /v1/events with fetch (EventSource cannot send the
// Authorization header) and resumes with Last-Event-ID after a drop.
async function stream() {
  for (;;) {
    try {
      const headers = { "Authorization": "Bearer " + state.token };
      if (state.lastEventID) headers["Last-Event-ID"] = state.lastEventID;
      const res = await fetch("/v1/events", { headers });
      if (!res.ok) throw new Error("event stream: " + res.status);
      setStatus("live", true);
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = "", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (id) state.lastEventID = id;
          if (data) {
            try { handleEvent(JSON.parse(data)); } catch (e) { showError("bad event: " + e.message); }
          }
        }
      }
    } catch (e) {
      showError(e.message);
    }
    setStatus("reconnecting…", false);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function wireForms() {
  $("send-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("send-text");
    const text = input.value;
    if (!text) return;
    const body = state.current.startsWith("@") ? { to: state.current.slice(1), text } : { room: state.current, text };
    try {
      await api("POST", "/v1/messages", body);
      input.value = "";
      showError("");
    } catch (err) { showError(err.message); }
  });
  $("nick-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("PUT", "/v1/nick", { nick: $("nick-input").value });
      $("nick-input").blur();
      await refreshSelf();
      await refreshMembers();
      showError("");
    } catch (err) { showError(err.message); }
  });
  $("join-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const room = $("join-input").value.trim().replace(/^#/, "").toLowerCase();
    if (!room) return;
    try {
      await api("POST", "/v1/rooms", { room });
      $("join-input").value = "";
      conv(room);
      await openConv(room);
      showError("");
    } catch (err) { showError(err.message); }
  });
  $("contact-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await api("POST", "/v1/contacts", { addr: $("contact-input").value.trim() });
      $("contact-input").value = "";
      showNotice("joined " + r.joined + " node(s)");
      await refreshMembers();
    } catch (err) { showError(err.message); }
  });
}

async function main() {
  readToken();
  wireForms();
  if (!state.token) {
    setStatus("no token: open the URL hearsay --web prints", false);
    return;
  }
  try {
    await refreshSelf();
    // Events after this ID are streamed; history covers what came before
    // (a message in both is shown once, by its ID).
    state.lastEventID = state.self.last_event_id;
    await refreshRooms();
    conv("lobby");
    await openConv("lobby");
    await refreshMembers();
  } catch (e) {
    showError(e.message);
  }
  stream();
  // Member states change without events (suspect, for one): poll them.
  setInterval(refreshMembers, 3000);
  setInterval(refreshRooms, 5000);
}

document.addEventListener("DOMContentLoaded", main);
