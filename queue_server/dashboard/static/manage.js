// The manager dashboard: sign in (POST /api/v1/login), then the period's figures from
// GET /api/v1/stats/breakdown as key figures, four charts (Chart.js, served locally) and tables per
// field, counter and clerk; exports, late dossiers with their apology slips, devices and alerts.
// A period that includes today is live: it is fetched again when the boards' event stream
// (GET /board/stream) says today's figures changed, so nothing polls for figures.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // Live refreshes follow the stream's `today` events (at most one a second); a dashboard needs
  // no more than one fetch every few seconds however busy the centre is.
  const LIVE_MIN_INTERVAL_MS = 2000;
  // Devices and alerts have no event on the stream: they are fetched with each refresh and, in a
  // quiet hour with no refresh, every half minute.
  const SIDE_INTERVAL_MS = 30000;
  const MANAGER_ROLES = ["manager", "admin"];

  const KPIS = [
    ["tickets.issued", "Đã cấp số", "Tickets issued", "count"],
    ["tickets.served", "Đã phục vụ", "Served", "count"],
    ["tickets.no_show", "Vắng mặt", "No-show", "count"],
    ["tickets.waiting", "Còn chờ", "Still waiting", "count"],
    ["tickets.avg_wait_s", "Chờ trung bình (ph:gi)", "Average wait (min:s)", "duration"],
    ["tickets.p90_wait_s", "Chờ P90 (ph:gi)", "90th percentile wait (min:s)", "duration"],
    ["tickets.avg_service_s", "Phục vụ trung bình (ph:gi)", "Average service (min:s)", "duration"],
    ["tickets.within_target_pct", "Gọi trong thời gian mục tiêu", "Called within target", "pct"],
    ["ratings.counted", "Lượt đánh giá", "Ratings", "count"],
    ["ratings.satisfaction_pct", "Hài lòng", "Satisfaction", "pct"],
    ["ratings.index", "Chỉ số hài lòng (0–100)", "Satisfaction index (0–100)", "number"],
    ["dossiers.on_time_pct", "Hồ sơ đúng hạn", "Dossiers on time", "pct"],
  ];
  const QUEUE_COLUMNS = [
    ["tickets.issued", "Cấp số", "Issued", "count"],
    ["tickets.served", "Đã phục vụ", "Served", "count"],
    ["tickets.no_show", "Vắng mặt", "No-show", "count"],
    ["tickets.waiting", "Còn chờ", "Waiting", "count"],
    ["tickets.avg_wait_s", "Chờ TB (ph:gi)", "Avg wait (min:s)", "duration"],
    ["tickets.p90_wait_s", "Chờ P90 (ph:gi)", "P90 wait (min:s)", "duration"],
    ["tickets.avg_service_s", "Phục vụ TB (ph:gi)", "Avg service (min:s)", "duration"],
    ["tickets.within_target_pct", "Trong mục tiêu", "Within target", "pct"],
  ];
  const RATING_COLUMNS_AFTER_LEVELS = [
    ["ratings.satisfaction_pct", "Hài lòng", "Satisfaction", "pct"],
    ["ratings.index", "Chỉ số", "Index", "number"],
  ];
  const DOSSIER_COLUMNS = [
    ["received.total", "Tổng tiếp nhận", "Received, total", "count"],
    ["received.new", "Mới tiếp nhận", "New", "count"],
    ["received.online", "Trực tuyến", "Online", "count"],
    ["received.carried_over", "Kỳ trước chuyển qua", "Carried over", "count"],
    ["resolved.total", "Đã giải quyết", "Resolved", "count"],
    ["resolved.early", "Trước hạn", "Early", "count"],
    ["resolved.on_time", "Đúng hạn", "On time", "count"],
    ["resolved.late", "Trễ hạn", "Late", "count"],
    ["open.total", "Đang giải quyết", "Still open", "count"],
    ["open.within_time", "Trong hạn", "Within time", "count"],
    ["open.overdue", "Quá hạn", "Overdue", "count"],
    ["on_time_pct", "Đúng hạn %", "On time %", "pct"],
  ];
  const LINK_STATES = { online: ["Trực tuyến", "Online"], offline: ["Mất kết nối", "Offline"] };
  const PRINTER_STATES = {
    ok: ["Bình thường", "OK"], paper_low: ["Sắp hết giấy", "Paper low"], paper_out: ["Hết giấy", "Paper out"],
    offline: ["Máy in mất kết nối", "Printer offline"], error: ["Lỗi máy in", "Printer error"],
  };
  const LATE_STATES = { overdue: ["Quá hạn", "Overdue"], late: ["Trả trễ", "Returned late"] };
  const COLOURS = { primary: "#0b5bd3", wait: "#b35c00", good: "#1e8e3e" };

  const state = {
    user: null,
    data: null,
    today: null, // the server's local day
    mode: "today", // today, week, month (they move with the day) or custom
    from: null,
    to: null,
    charts: {},
    loading: false,
    again: false,
    lastLiveRefresh: 0,
    liveTimer: null,
    streaming: false,
    sideTimer: null,
  };

  // --- the API ---------------------------------------------------------------------------

  const api = motcua.api;

  function say(text, kind) {
    const box = $("message");
    box.textContent = text;
    box.dataset.kind = kind || "info";
    box.hidden = !text;
  }

  function show(view) {
    document.body.dataset.view = view;
    $("logout").hidden = view !== "dashboard";
    $("who").textContent = state.user ? `${state.user.username} (${state.user.role})` : "";
  }

  function failed(error) {
    if (error.status === 401) {
      state.user = null;
      show("login");
    } else if (error.status === 403) {
      show("forbidden");
    }
    say(error.message, "error");
  }

  // --- formatting -------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const total = Math.round(seconds);
    const hours = Math.floor(total / 3600);
    const mm = Math.floor((total % 3600) / 60);
    const ss = String(total % 60).padStart(2, "0");
    return hours ? `${hours}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  }

  function formatted(kind, value) {
    if (value === null || value === undefined) return "—";
    if (kind === "pct") return motcua.percent(value);
    if (kind === "duration") return duration(value);
    return motcua.plain(value);
  }

  function dayText(isoDay) {
    if (!isoDay) return "—";
    const [year, month, day] = isoDay.split("-");
    return `${day}/${month}/${year}`;
  }

  // An instant as dd/mm HH:MM in the centre's time zone.
  function instantText(iso) {
    if (!iso) return "—";
    const instant = new Date(iso);
    if (Number.isNaN(instant.getTime())) return "—";
    const parts = {};
    const timeZone = (state.data && state.data.site.timezone) || "Asia/Ho_Chi_Minh";
    const format = new Intl.DateTimeFormat("en-GB", { timeZone, day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    for (const part of format.formatToParts(instant)) parts[part.type] = part.value;
    return `${parts.day}/${parts.month} ${parts.hour}:${parts.minute}`;
  }

  // Whole dates as YYYY-MM-DD, moved by whole days without touching time zones.
  function shiftDay(isoDay, days) {
    const [year, month, day] = isoDay.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, day + days)).toISOString().slice(0, 10);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function bilingualPair(tag, pair, className) {
    return motcua.bilingual(tag, pair[0], pair[1], className);
  }

  // --- the period ---------------------------------------------------------------------------

  function rangeFor(mode) {
    if (!state.today) return null;
    if (mode === "today") return [state.today, state.today];
    if (mode === "week") return [shiftDay(state.today, -6), state.today];
    if (mode === "month") return [`${state.today.slice(0, 8)}01`, state.today];
    return [state.from, state.to];
  }

  function choose(mode, from, to) {
    state.mode = mode;
    const range = mode === "custom" ? [from, to] : rangeFor(mode);
    if (range) [state.from, state.to] = range;
    const query = new URLSearchParams(location.search);
    if (mode === "custom") {
      query.set("from", state.from);
      query.set("to", state.to);
    } else {
      query.delete("from");
      query.delete("to");
      if (mode === "today") query.delete("range");
      else query.set("range", mode);
    }
    const search = query.toString();
    history.replaceState(null, "", `${location.pathname}${search ? `?${search}` : ""}`);
    refresh();
  }

  function breakdownPath() {
    if (!state.from || !state.to) return "/api/v1/stats/breakdown"; // the server's today
    return `/api/v1/stats/breakdown?from=${encodeURIComponent(state.from)}&to=${encodeURIComponent(state.to)}`;
  }

  // --- fetching -------------------------------------------------------------------------------

  async function refresh() {
    if (state.loading) {
      state.again = true;
      return;
    }
    state.loading = true;
    try {
      do {
        state.again = false;
        const data = await api("GET", breakdownPath());
        render(data);
        say("", "info");
      } while (state.again);
    } catch (error) {
      failed(error);
    } finally {
      state.loading = false;
    }
    refreshSide();
  }

  // A live period is fetched again after a change, at most once every LIVE_MIN_INTERVAL_MS,
  // and always once after the last change.
  function liveChanged() {
    if (document.body.dataset.view !== "dashboard" || !state.data || !state.data.live) return;
    if (state.liveTimer) return;
    const wait = Math.max(0, state.lastLiveRefresh + LIVE_MIN_INTERVAL_MS - performance.now());
    state.liveTimer = setTimeout(() => {
      state.liveTimer = null;
      state.lastLiveRefresh = performance.now();
      refresh();
    }, wait);
  }

  function dayChanged(day) {
    if (!day || !state.today || day === state.today) return; // before the first load, that load decides
    state.today = day;
    if (state.mode !== "custom") choose(state.mode);
  }

  function refreshSide() {
    if (document.body.dataset.view !== "dashboard") return;
    loadLate();
    loadDevices();
    loadAlerts();
  }

  async function loadLate() {
    try {
      renderLate(await api("GET", "/api/v1/dossiers/late"));
    } catch (error) {
      $("late").replaceChildren(element("p", "empty", error.message));
    }
  }

  async function loadDevices() {
    try {
      renderDevices(await api("GET", "/api/v1/devices"));
    } catch (error) {
      $("devices").replaceChildren(element("p", "empty", error.message));
    }
  }

  // GET /api/v1/alerts may not exist on this server: a 404 shows "—", not an error.
  async function loadAlerts() {
    const box = $("alerts");
    try {
      renderAlerts(await api("GET", "/api/v1/alerts"));
      box.dataset.state = "ok";
    } catch (error) {
      if (error.status === 404) {
        box.dataset.state = "absent";
        box.replaceChildren(element("span", "empty", "—"));
      } else {
        box.dataset.state = "error";
        box.replaceChildren(element("p", "empty", error.message));
      }
    }
  }

  // --- rendering -------------------------------------------------------------------------------

  function render(data) {
    // Only a new period resets the date fields: a live refresh must not undo what is being typed.
    if (!state.data || state.data.from !== data.from || state.data.to !== data.to) {
      $("from").value = data.from;
      $("to").value = data.to;
    }
    state.data = data;
    state.today = data.today;
    state.from = data.from;
    state.to = data.to;
    $("site").textContent = data.site.name.vi;
    const live = $("live");
    live.dataset.live = String(data.live);
    live.replaceChildren(data.live
      ? motcua.bilingual("span", "Trực tiếp", "Live")
      : motcua.bilingual("span", `${dayText(data.from)} – ${dayText(data.to)}`, "chosen period"));
    $("updated").textContent = instantText(data.generated_at);
    for (const link of document.querySelectorAll(".exports a[data-format]")) {
      link.href = `/api/v1/exports/daily-totals?from=${data.from}&to=${data.to}&format=${link.dataset.format}`;
    }
    renderKpis(data.figures);
    renderGrading(data.figures.grading_766);
    renderCharts(data);
    renderTables(data);
    document.body.dataset.loaded = `${data.from}..${data.to}@${data.generated_at}`;
  }

  function renderKpis(figures) {
    const cards = KPIS.map(([key, vi, en, kind]) => {
      const card = element("div", "kpi");
      card.append(motcua.bilingual("div", vi, en, "label"));
      const value = motcua.pick(figures, key);
      const number = element("div", "value", formatted(kind, value));
      number.dataset.stat = key;
      number.dataset.value = JSON.stringify(value === undefined ? null : value);
      card.append(number);
      return card;
    });
    $("kpis").replaceChildren(...cards);
  }

  function renderGrading(grading) {
    for (const node of document.querySelectorAll("#grading [data-stat]")) {
      const value = motcua.pick({ grading_766: grading }, node.dataset.stat);
      node.dataset.value = JSON.stringify(value === undefined ? null : value);
      node.textContent = formatted("pct", value);
    }
    const marks = $("grading-marks");
    marks.dataset.full = String(grading.full_marks);
    if (grading.full_marks === null) marks.replaceChildren(motcua.bilingual("span", "Chưa có hồ sơ giải quyết trong kỳ", "No dossier resolved in the period"));
    else if (grading.full_marks) marks.replaceChildren(motcua.bilingual("span", "Đạt điểm tối đa", "Full marks"));
    else marks.replaceChildren(motcua.bilingual("span", "Chưa đạt điểm tối đa (dưới 90%)", "Below full marks (under 90%)"));
  }

  // --- charts ---

  function chartOptions(extra) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false, // a live dashboard redraws often; motion would only distract
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      ...extra,
    };
  }

  function makeCharts() {
    if (typeof Chart === "undefined") {
      say("Không tải được thư viện biểu đồ · The chart library did not load", "error");
      return false;
    }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = "#14213d";
    state.charts.arrivals = new Chart($("chart-arrivals"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "Lượt đến · Arrivals", data: [], backgroundColor: COLOURS.primary }] },
      options: chartOptions(),
    });
    state.charts.wait = new Chart($("chart-wait"), {
      type: "bar",
      data: { labels: [], datasets: [{ label: "Chờ TB (phút) · Avg wait (min)", data: [], backgroundColor: COLOURS.wait }] },
      options: chartOptions({ scales: { y: { beginAtZero: true } } }),
    });
    state.charts.satisfaction = new Chart($("chart-satisfaction"), {
      type: "line",
      data: { labels: [], datasets: [{ label: "Hài lòng % · Satisfied %", data: [], borderColor: COLOURS.good, backgroundColor: COLOURS.good, pointRadius: 4, spanGaps: true }] },
      // offset: a single day's point sits in the middle, not on the axis.
      options: chartOptions({ scales: { x: { offset: true }, y: { min: 0, max: 100 } } }),
    });
    state.charts.clerks = new Chart($("chart-clerks"), {
      type: "bar",
      data: {
        labels: [],
        datasets: [
          { label: "Đã phục vụ · Served", data: [], backgroundColor: COLOURS.primary, yAxisID: "y" },
          { label: "Hài lòng % · Satisfied %", data: [], backgroundColor: COLOURS.good, yAxisID: "y1" },
        ],
      },
      options: chartOptions({
        plugins: { legend: { display: true, position: "bottom" } },
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 }, position: "left" },
          y1: { min: 0, max: 100, position: "right", grid: { drawOnChartArea: false } },
        },
      }),
    });
    return true;
  }

  function setChart(chart, labels, ...series) {
    chart.data.labels = labels;
    series.forEach((values, index) => { chart.data.datasets[index].data = values; });
    chart.update("none");
  }

  function renderCharts(data) {
    if (!state.charts.arrivals && !makeCharts()) return;
    const series = data.series;
    const hours = series.hours.map((hour) => `${String(hour).padStart(2, "0")}h`);
    setChart(state.charts.arrivals, hours, series.arrivals_by_hour);
    setChart(state.charts.wait, hours, series.avg_wait_by_hour_s.map((s) => (s === null ? null : Math.round(s / 6) / 10)));
    setChart(state.charts.satisfaction, series.satisfaction_by_day.map((day) => dayText(day.day).slice(0, 5)),
      series.satisfaction_by_day.map((day) => day.satisfaction_pct));
    setChart(state.charts.clerks, series.clerks.map((clerk) => clerk.name),
      series.clerks.map((clerk) => clerk.served), series.clerks.map((clerk) => clerk.satisfaction_pct));
  }

  // --- tables ---

  function header(columns, firstVi, firstEn) {
    const head = element("thead");
    const row = element("tr");
    row.append(motcua.bilingual("th", firstVi, firstEn));
    for (const column of columns) {
      const cell = motcua.bilingual("th", column[1], column[2]);
      cell.dataset.key = column[0];
      if (column[4]) {
        const swatch = element("span", "swatch");
        swatch.style.background = column[4];
        cell.prepend(swatch);
      }
      row.append(cell);
    }
    head.append(row);
    return head;
  }

  function bodyRow(group, label, figures, columns, className) {
    const row = element("tr", className);
    row.dataset.group = group;
    row.append(motcua.bilingual("td", label.vi, label.en));
    for (const [key, , , kind] of columns) {
      const value = motcua.pick(figures, key);
      const cell = element("td", "", formatted(kind, value));
      cell.dataset.key = key;
      cell.dataset.value = JSON.stringify(value === undefined ? null : value);
      row.append(cell);
    }
    return row;
  }

  function fillTable(tableId, firstHeader, columns, groups, total) {
    const body = element("tbody");
    for (const group of groups) body.append(bodyRow(group.id, group.label, group.figures, columns));
    body.append(bodyRow("_total", { vi: "Toàn trung tâm", en: "Whole centre" }, total, columns, "total"));
    $(tableId).replaceChildren(header(columns, ...firstHeader), body);
  }

  function renderTables(data) {
    const figures = data.figures;
    const levels = data.rating_levels.map((level) => [`ratings.by_level.${level.id}`, level.name.vi, level.name.en, "count", level.colour]);
    const columns = [...QUEUE_COLUMNS, ...levels, ...RATING_COLUMNS_AFTER_LEVELS];
    const overall = { tickets: figures.tickets, ratings: figures.ratings };
    const fieldLabel = (field) => ({ vi: `${field.letter} · ${field.name.vi}`, en: field.name.en });
    fillTable("table-field", ["Lĩnh vực", "Field"], columns,
      data.fields.map((field) => ({ id: field.id, label: fieldLabel(field), figures: figures.by_field[field.id] })), overall);
    fillTable("table-dossiers", ["Lĩnh vực", "Field"], DOSSIER_COLUMNS,
      data.fields.map((field) => ({ id: field.id, label: fieldLabel(field), figures: figures.by_field[field.id].dossiers })), figures.dossiers);
    fillTable("table-counter", ["Quầy", "Counter"], columns,
      data.counters.map((counter) => ({ id: counter.id, label: { vi: `Quầy ${counter.number}`, en: `Counter ${counter.number}` }, figures: figures.by_counter[counter.id] })), overall);
    fillTable("table-clerk", ["Cán bộ", "Clerk"], columns,
      data.clerks.map((clerk) => ({ id: clerk.id, label: { vi: clerk.name, en: clerk.name === clerk.id ? "" : clerk.id }, figures: figures.by_clerk[clerk.id] })), overall);
  }

  // --- side panels ---

  function renderLate(late) {
    const summary = $("late-summary");
    summary.replaceChildren(
      motcua.bilingual("span", `Quá hạn: ${late.overdue}`, `overdue: ${late.overdue}`),
      document.createTextNode(" · "),
      motcua.bilingual("span", `Trả trễ từ ${dayText(late.since)}: ${late.returned_late}`, `returned late since ${dayText(late.since)}: ${late.returned_late}`),
    );
    if (!late.dossiers.length) {
      $("late").replaceChildren(motcua.bilingual("p", "Không có hồ sơ trễ hẹn", "No late dossiers", "empty"));
      return;
    }
    const items = late.dossiers.map((dossier) => {
      const item = element("div", "late-row");
      item.dataset.code = dossier.code;
      item.dataset.status = dossier.status;
      const top = element("div", "late-top");
      const status = bilingualPair("span", LATE_STATES[dossier.status] || [dossier.status, ""], "state");
      status.dataset.state = dossier.status === "overdue" ? "error" : "paper_low";
      top.append(element("b", "code", dossier.code), status,
        motcua.bilingual("span", `${dossier.working_days_late} ngày làm việc`, `${dossier.working_days_late} working days late`, "days"));
      item.append(top, element("div", "procedure", dossier.procedure));
      const field = dossier.field_name ? `${dossier.field_name.vi} · ` : "";
      item.append(motcua.bilingual("div", `${field}hẹn trả ${dayText(dossier.effective_due_date)}`, `due ${dayText(dossier.effective_due_date)}`, "due"));
      if (dossier.apology_url) item.append(dossier.delay_reason && dossier.new_due_date ? apologyLink(dossier) : apologyForm(dossier));
      return item;
    });
    $("late").replaceChildren(...items);
  }

  // A dossier already given a new date (and the reason) has its slip ready: the record says what it prints.
  function apologyLink(dossier) {
    const box = element("div", "apology");
    box.append(motcua.bilingual("div", `Hẹn lại ${dayText(dossier.new_due_date)}: ${dossier.delay_reason}`,
      `new date ${dayText(dossier.new_due_date)}`, "rescheduled"));
    const link = element("a", "button", "Phiếu xin lỗi · Apology slip");
    link.href = dossier.apology_url;
    link.target = "_blank";
    link.rel = "noopener";
    box.append(link);
    return box;
  }

  // Otherwise the slip needs a reason and a new date: the form records both on the dossier
  // (POST …/reschedule, kept in its history), then opens the slip, which prints what was recorded.
  function apologyForm(dossier) {
    const form = element("form", "apology");
    const reason = element("input");
    reason.name = "reason";
    reason.required = true;
    reason.maxLength = 500;
    reason.placeholder = "Lý do trễ · Reason";
    const newDate = element("input");
    newDate.name = "new_date";
    newDate.type = "date";
    newDate.required = true;
    newDate.min = state.today || "";
    newDate.value = state.today ? shiftDay(state.today, 1) : "";
    newDate.title = "Ngày hẹn trả mới · New return date";
    const button = element("button", "", "Hẹn lại và in phiếu · Reschedule and print the slip");
    button.type = "submit";
    form.append(reason, newDate, button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      // Opened now, while the click still counts as the user's: a tab opened after the request
      // would be taken for a pop-up and blocked.
      const slip = window.open("about:blank", "_blank");
      button.disabled = true;
      try {
        await api("POST", `/api/v1/dossiers/${encodeURIComponent(dossier.code)}/reschedule`,
          { reason: reason.value.trim(), new_due_date: newDate.value });
        if (slip) slip.location.href = dossier.apology_url;
        say(`Đã hẹn lại hồ sơ ${dossier.code} / Dossier ${dossier.code} rescheduled`, "ok");
        loadLate();
      } catch (error) {
        if (slip) slip.close();
        say(error.message, "error");
        button.disabled = false;
      }
    });
    return form;
  }

  function renderDevices(devices) {
    if (!devices.length) {
      $("devices").replaceChildren(motcua.bilingual("p", "Chưa có thiết bị nào", "No device yet", "empty"));
      return;
    }
    const table = element("table");
    const head = element("tr");
    head.append(motcua.bilingual("th", "Thiết bị", "Device"), motcua.bilingual("th", "Kết nối", "Link"),
      motcua.bilingual("th", "Máy in", "Printer"), motcua.bilingual("th", "Lần cuối", "Last heard"));
    const body = element("tbody");
    for (const device of devices) {
      const row = element("tr");
      row.dataset.device = device.device_id;
      const link = bilingualPair("td", LINK_STATES[device.status] || ["Chưa rõ", "Unknown"], "state");
      link.dataset.state = device.status || "unknown";
      if (device.status_since) link.append(element("div", "when", instantText(device.status_since)));
      const printer = device.printer_state
        ? bilingualPair("td", PRINTER_STATES[device.printer_state] || [device.printer_state, ""], "state")
        : element("td", "", "—");
      printer.dataset.state = device.printer_state || "none";
      if (device.printer_detail) printer.append(element("div", "when", device.printer_detail));
      row.append(element("td", "", device.device_id), link, printer, element("td", "", instantText(device.last_seen_at)));
      body.append(row);
    }
    const thead = element("thead");
    thead.append(head);
    table.append(thead, body);
    $("devices").replaceChildren(table);
  }

  function alertItem(alert, cleared) {
    const item = element("div", cleared ? "alert cleared" : "alert");
    item.dataset.severity = alert.severity;
    item.dataset.rule = alert.rule;
    const message = alert.message || {};
    item.append(motcua.bilingual("div", message.vi || alert.rule, message.en || ""));
    const when = cleared
      ? `${instantText(alert.since)} → ${instantText(alert.cleared_at)} · ${alert.subject || ""}`
      : `${alert.severity === "critical" ? "Nghiêm trọng · Critical" : "Cảnh báo · Warning"} · ${alert.subject || ""} · ${instantText(alert.since)}`;
    item.append(element("div", "when", when));
    return item;
  }

  function renderAlerts(alerts) {
    const active = alerts.active || [];
    const recent = alerts.recent || [];
    const nodes = active.length
      ? active.map((alert) => alertItem(alert, false))
      : [motcua.bilingual("p", "Không có cảnh báo đang diễn ra", "No active alerts", "empty")];
    if (recent.length) {
      nodes.push(motcua.bilingual("h3", "Đã hết", "Cleared", "cleared-title"));
      nodes.push(...recent.slice(0, 10).map((alert) => alertItem(alert, true)));
    }
    $("alerts").replaceChildren(...nodes);
  }

  // --- flow: sign in, then the dashboard ---------------------------------------------------------

  function startDashboard() {
    show("dashboard");
    const query = new URLSearchParams(location.search);
    if (query.get("from") && query.get("to")) {
      state.mode = "custom";
      state.from = query.get("from");
      state.to = query.get("to");
    } else {
      state.mode = ["week", "month"].includes(query.get("range")) ? query.get("range") : "today";
      state.from = state.to = null; // the server's today, until it has told us which day that is
    }
    refresh().then(() => {
      if (state.mode === "week" || state.mode === "month") choose(state.mode);
    });
    if (!state.sideTimer) {
      state.sideTimer = setInterval(() => {
        if (document.body.dataset.view !== "dashboard") return;
        loadDevices();
        loadAlerts();
      }, SIDE_INTERVAL_MS);
    }
    if (state.streaming) return;
    state.streaming = true;
    motcua.connect({
      snapshot(data) {
        // Every (re)connection: figures missed while disconnected, and a new day at midnight.
        motcua.syncClock(data.server_time);
        if (data.today) dayChanged(data.today.day);
        liveChanged();
      },
      today(figures) {
        dayChanged(figures.day);
        liveChanged();
      },
    });
  }

  function signedIn(user) {
    state.user = user;
    if (MANAGER_ROLES.includes(user.role)) startDashboard();
    else show("forbidden");
  }

  async function logout() {
    try {
      await api("POST", "/api/v1/logout");
    } finally {
      state.user = null;
      say("", "info");
      show("login");
    }
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const user = await api("POST", "/api/v1/login", { username: $("username").value.trim(), password: $("password").value });
      $("password").value = "";
      say("", "info");
      signedIn(user);
    } catch (error) {
      say(error.message, "error");
    }
  });
  $("logout").addEventListener("click", logout);
  $("forbidden-logout").addEventListener("click", logout);

  $("period").addEventListener("submit", (event) => {
    event.preventDefault();
    const from = $("from").value;
    const to = $("to").value;
    if (!from || !to) return;
    if (from > to) {
      say("'Từ ngày' phải trước 'Đến ngày' · 'From' must not be after 'To'", "error");
      return;
    }
    if (from === to && from === state.today) choose("today");
    else choose("custom", from, to);
  });
  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => choose(button.dataset.range));
  }

  (async () => {
    try {
      signedIn(await api("GET", "/api/v1/me"));
    } catch (error) {
      if (error.status !== 401) say(error.message, "error");
      show("login");
    }
  })();
})();
