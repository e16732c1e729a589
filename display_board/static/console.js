// The clerk console: sign in (POST /api/v1/login), choose a counter, then call, recall, start,
// no-show, finish and transfer with buttons or single keys, and record dossiers. Every action
// goes through the API; what the console shows comes back through the boards' event stream.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const STORED_COUNTER = "motcua.console.counter";
  const KEYS = { n: "next", r: "recall", s: "start", v: "no-show", x: "finish", c: "transfer-open" };
  const STATUS = {
    idle: ["Sẵn sàng", "Ready"], serving: ["Đang phục vụ", "Serving"], called: ["Đã gọi, chờ công dân", "Called, waiting for the citizen"],
    rating: ["Chờ công dân đánh giá", "Waiting for the rating"], closed: ["Tạm nghỉ", "Closed"],
  };
  const OUTCOMES = {
    early: ["Trước hạn", "Early"], on_time: ["Đúng hạn", "On time"], late: ["Trễ hạn", "Late"],
    within_time: ["Trong hạn", "Within time"], overdue: ["Quá hạn", "Overdue"],
  };
  const state = { config: null, user: null, counterId: null, counter: null, counters: new Map(), queues: new Map(), streaming: false };

  // --- the API ---------------------------------------------------------------------------

  const api = motcua.api;

  function say(text, kind) {
    const box = $("message");
    box.textContent = text;
    box.dataset.kind = kind || "info";
    box.hidden = !text;
  }

  function failed(error) {
    if (error.status === 401) {
      state.user = null;
      show("login");
    }
    say(error.message, "error");
  }

  function show(view) {
    document.body.dataset.view = view;
    $("logout").hidden = view === "login";
    $("who").textContent = state.user ? state.user.username : "";
  }

  function option(value, text) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = text;
    return element;
  }

  // --- what the console shows -----------------------------------------------------------

  function fieldName(fieldId) {
    const field = state.config.fields.find((item) => item.id === fieldId);
    return field ? field.name : { vi: fieldId || "", en: "" };
  }

  function renderCounter() {
    const counter = state.counters.get(state.counterId);
    state.counter = counter || null;
    if (!counter) return;
    $("counter-number").textContent = counter.number;
    const key = motcua.counterStatus(counter);
    const [vi, en] = STATUS[key] || [counter.status, ""];
    $("counter-status").replaceChildren(motcua.bilingual("span", vi, en));
    document.body.dataset.status = key;
    $("current-ticket").textContent = counter.ticket || "—";
    const field = counter.ticket ? fieldName(counter.ticket_field) : null;
    $("current-field").replaceChildren(...(field ? [motcua.bilingual("span", field.vi, field.en)] : []));
    if (counter.ticket_field) $("dossier-field").value = counter.ticket_field;
    const holding = Boolean(counter.ticket_id);
    const closed = counter.status === "closed";
    for (const button of document.querySelectorAll("[data-action]")) {
      const action = button.dataset.action;
      let enabled = !closed;
      if (["recall", "no-show", "finish", "transfer-open"].includes(action)) enabled = !closed && holding;
      if (action === "start") enabled = !closed && holding && counter.ticket_status === "called";
      if (action === "open") enabled = closed;
      if (action === "close") enabled = !closed && !holding;
      button.disabled = !enabled;
    }
    if (!holding) $("transfer").hidden = true;
    renderTimer();
  }

  function renderTimer() {
    const since = state.counter && state.counter.ticket_id ? state.counter.ticket_called_at : null;
    if (!since) {
      $("timer").textContent = "00:00";
      return;
    }
    const seconds = Math.max(0, Math.floor((motcua.now() - Date.parse(since)) / 1000));
    const hours = Math.floor(seconds / 3600);
    const mm = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
    const ss = String(seconds % 60).padStart(2, "0");
    $("timer").textContent = hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function renderQueues() {
    const mine = state.counter ? state.counter.fields : [];
    const body = $("queues");
    body.replaceChildren();
    for (const field of state.config.fields) {
      const queue = state.queues.get(field.id) || { waiting: 0, priority_waiting: 0 };
      const row = document.createElement("tr");
      row.dataset.field = field.id;
      row.className = mine.includes(field.id) ? "mine" : "";
      const letter = document.createElement("td");
      letter.className = "letter";
      letter.textContent = field.letter;
      const name = motcua.bilingual("td", field.name.vi, field.name.en, "name");
      const waiting = document.createElement("td");
      waiting.className = "waiting";
      waiting.textContent = queue.waiting;
      const priority = motcua.bilingual("td", queue.priority_waiting ? `${queue.priority_waiting} ưu tiên` : "", queue.priority_waiting ? "priority" : "", "priority");
      row.append(letter, name, waiting, priority);
      body.append(row);
    }
  }

  // --- actions ------------------------------------------------------------------------------

  async function act(action) {
    if (!state.counterId) return;
    if (action === "transfer-open") {
      if (state.counter && state.counter.ticket_id) $("transfer").hidden = !$("transfer").hidden;
      return;
    }
    const button = document.querySelector(`[data-action="${action}"]`);
    if (button && button.disabled) return;
    try {
      const view = await api("POST", `/api/v1/counters/${encodeURIComponent(state.counterId)}/${action}`);
      say(view.ticket ? `${view.ticket} · Quầy ${view.number}` : "", "info");
    } catch (error) {
      failed(error);
    }
  }

  async function transfer(event) {
    event.preventDefault();
    const body = { keep_place: $("transfer-keep").checked };
    if ($("transfer-field").value) body.field = $("transfer-field").value;
    if ($("transfer-counter").value) body.counter = $("transfer-counter").value;
    try {
      await api("POST", `/api/v1/counters/${encodeURIComponent(state.counterId)}/transfer`, body);
      $("transfer").hidden = true;
      say("Đã chuyển · Transferred", "info");
    } catch (error) {
      failed(error);
    }
  }

  function outcomeText(dossier) {
    const [vi, en] = OUTCOMES[dossier.outcome] || [dossier.outcome, ""];
    return `${vi} · ${en}`;
  }

  async function receiveDossier(event) {
    event.preventDefault();
    const counter = state.counter || {};
    const body = {
      code: $("dossier-code").value.trim(),
      procedure: $("dossier-procedure").value.trim(),
      field: $("dossier-field").value,
    };
    const ticket = counter.ticket_id || counter.rating_ticket_id; // the one being served, or the one just finished
    if (ticket) body.ticket = ticket;
    if ($("dossier-due").value) body.due_date = $("dossier-due").value;
    else if ($("dossier-days").value) body.working_days = Number($("dossier-days").value);
    try {
      const dossier = await api("POST", "/api/v1/dossiers", body);
      $("dossier-result").textContent = `Đã tiếp nhận ${dossier.code}, hẹn trả ${dossier.due_date} · Received, due ${dossier.due_date}`;
      $("dossier-result").dataset.code = dossier.code;
      $("dossier-receive").reset();
      if (state.counter && state.counter.ticket_field) $("dossier-field").value = state.counter.ticket_field;
    } catch (error) {
      failed(error);
    }
  }

  async function returnDossier(event) {
    event.preventDefault();
    const code = $("return-code").value.trim();
    try {
      const dossier = await api("POST", `/api/v1/dossiers/${encodeURIComponent(code)}/return`);
      $("dossier-result").textContent = `Đã trả ${dossier.code}: ${outcomeText(dossier)}`;
      $("dossier-result").dataset.code = dossier.code;
      $("dossier-result").dataset.outcome = dossier.outcome;
      $("dossier-return").reset();
    } catch (error) {
      failed(error);
    }
  }

  // --- flow: sign in, choose, work ------------------------------------------------------------

  function work() {
    show("work");
    renderCounter();
    renderQueues();
    if (state.streaming) return;
    state.streaming = true;
    motcua.connect({
      snapshot(data) {
        motcua.syncClock(data.server_time);
        state.counters = new Map(data.counters.map((counter) => [counter.counter, counter]));
        state.queues = new Map(data.queues.map((queue) => [queue.field, queue]));
        renderCounter();
        renderQueues();
      },
      counter(counter) {
        state.counters.set(counter.counter, counter);
        if (counter.counter === state.counterId) renderCounter();
      },
      queue(queue) {
        state.queues.set(queue.field, queue);
        renderQueues();
      },
    });
  }

  function afterSignIn() {
    const stored = localStorage.getItem(STORED_COUNTER);
    if (stored && state.config.counters.some((counter) => counter.id === stored)) {
      state.counterId = stored;
      work();
    } else {
      show("pick");
    }
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      state.user = await api("POST", "/api/v1/login", { username: $("username").value.trim(), password: $("password").value });
      $("password").value = "";
      say("", "info");
      afterSignIn();
    } catch (error) {
      say(error.message, "error");
    }
  });

  $("pick").addEventListener("submit", (event) => {
    event.preventDefault();
    state.counterId = $("counter-choice").value;
    localStorage.setItem(STORED_COUNTER, state.counterId);
    work();
  });

  $("change-counter").addEventListener("click", () => {
    localStorage.removeItem(STORED_COUNTER);
    show("pick");
  });

  $("logout").addEventListener("click", async () => {
    try {
      await api("POST", "/api/v1/logout");
    } finally {
      state.user = null;
      show("login");
    }
  });

  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }
  $("transfer").addEventListener("submit", transfer);
  $("transfer-cancel").addEventListener("click", () => { $("transfer").hidden = true; });
  $("dossier-receive").addEventListener("submit", receiveDossier);
  $("dossier-return").addEventListener("submit", returnDossier);

  document.addEventListener("keydown", (event) => {
    if (document.body.dataset.view !== "work" || event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.target.closest("input, select, textarea")) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "Escape") {
      $("transfer").hidden = true;
      return;
    }
    const action = KEYS[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      act(action);
    }
  });

  setInterval(() => {
    renderTimer();
    if (state.counter && document.body.dataset.status !== motcua.counterStatus(state.counter)) renderCounter();
  }, 1000);

  (async () => {
    try {
      state.config = await api("GET", "/api/v1/config");
    } catch (error) {
      say(`Không tải được cấu hình · Cannot load the configuration: ${error.message}`, "error");
      return;
    }
    $("site").textContent = state.config.site.name.vi;
    for (const counter of state.config.counters) {
      $("counter-choice").append(option(counter.id, `Quầy ${counter.number} · Counter ${counter.number}`));
      $("transfer-counter").append(option(counter.id, `Quầy ${counter.number}`));
    }
    for (const field of state.config.fields) {
      $("transfer-field").append(option(field.id, `${field.letter} · ${field.name.vi}`));
      $("dossier-field").append(option(field.id, `${field.letter} · ${field.name.vi}`));
    }
    try {
      state.user = await api("GET", "/api/v1/me");
      afterSignIn();
    } catch (error) {
      if (error.status !== 401) say(error.message, "error");
      show("login");
    }
  })();
})();
