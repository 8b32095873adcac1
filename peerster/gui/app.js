// Peerster GUI: polls /message, /node and /id and posts the three forms.
// Text from peers is inserted with textContent only, never as HTML.
"use strict";

function $(id) { return document.getElementById(id); }

function showError(err) { $("error").textContent = err ? String(err) : ""; }

async function api(method, path, body) {
  const opts = { method: method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const data = await resp.json();
  if (!resp.ok) { throw new Error(data.error || resp.statusText); }
  return data;
}

function fillList(list, items, render) {
  const el = $(list);
  const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  el.replaceChildren(...items.map(render));
  if (atBottom) { el.scrollTop = el.scrollHeight; }
}

function renderMessage(m) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "origin";
  who.textContent = m.id ? m.origin + " #" + m.id : m.origin;
  const text = document.createElement("span");
  text.textContent = m.text;
  li.append(who, text);
  return li;
}

function renderNode(addr) {
  const li = document.createElement("li");
  li.textContent = addr;
  return li;
}

async function refresh() {
  try {
    const [msgs, nodes, id] = await Promise.all([api("GET", "/message"), api("GET", "/node"), api("GET", "/id")]);
    fillList("messages", msgs.messages || [], renderMessage);
    fillList("nodes", nodes.peers || [], renderNode);
    $("name").textContent = id.name;
  } catch (e) {
    showError(e.message);
  }
}

function onSubmit(form, input, path, field) {
  $(form).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = $(input).value.trim();
    if (!value) { return; }
    try {
      await api("POST", path, { [field]: value });
      $(input).value = "";
      showError("");
      await refresh();
    } catch (e) {
      showError(e.message);
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  onSubmit("send-form", "message", "/message", "text");
  onSubmit("node-form", "node", "/node", "addr");
  onSubmit("id-form", "new-name", "/id", "name");
  refresh();
  setInterval(refresh, 1000);
});
