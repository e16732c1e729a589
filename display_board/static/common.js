// Shared by the lobby board, the counter displays and the clerk console:
// the live event stream (server-sent events, no polling) and bilingual formatting.
"use strict";

const motcua = (() => {
  const WEEKDAYS_VI = ["Chủ nhật", "Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy"];
  const WEEKDAYS_EN = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

  // Follow GET /board/stream. `handlers` maps event names (snapshot, counter, call, queue, today)
  // to functions of the parsed data. The page's <body data-connection> says "connecting",
  // "live" (a snapshot arrived on this connection) or "reconnecting". EventSource reconnects
  // by itself after a network error; if the browser gives up (CLOSED), a new one is made.
  function connect(handlers, onConnection) {
    let source = null;
    const setState = (state) => {
      document.body.dataset.connection = state;
      if (onConnection) onConnection(state);
    };
    const open = () => {
      source = new EventSource("/board/stream");
      for (const [name, handler] of Object.entries(handlers)) {
        source.addEventListener(name, (event) => {
          let data;
          try {
            data = JSON.parse(event.data);
          } catch (error) {
            console.error("bad event", name, error);
            return;
          }
          handler(data);
          if (name === "snapshot") setState("live");
        });
      }
      source.onerror = () => {
        setState("reconnecting");
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(open, 2000);
        }
      };
    };
    setState("connecting");
    open();
  }

  // Milliseconds between the server's clock and this screen's: the board shows the server's time.
  let clockOffsetMs = 0;
  function syncClock(serverTimeIso) {
    const server = Date.parse(serverTimeIso);
    if (!Number.isNaN(server)) clockOffsetMs = server - Date.now();
  }
  function now() {
    return new Date(Date.now() + clockOffsetMs);
  }

  // Date parts of an instant in the centre's time zone (Asia/Ho_Chi_Minh by default).
  function localParts(date, timeZone) {
    const parts = {};
    const format = new Intl.DateTimeFormat("en-GB", {
      timeZone: timeZone || "Asia/Ho_Chi_Minh", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short", hourCycle: "h23",
    });
    for (const part of format.formatToParts(date)) parts[part.type] = part.value;
    const weekday = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(parts.weekday);
    return { ...parts, weekdayIndex: weekday };
  }
  function clockText(date, timeZone) {
    const p = localParts(date, timeZone);
    return `${p.hour}:${p.minute}`;
  }
  function dateTexts(date, timeZone) {
    const p = localParts(date, timeZone);
    return {
      vi: `${WEEKDAYS_VI[p.weekdayIndex]}, ${p.day}/${p.month}/${p.year}`,
      en: `${WEEKDAYS_EN[p.weekdayIndex]} ${p.day}/${p.month}/${p.year}`,
    };
  }
  function timeOf(iso, timeZone) {
    return clockText(new Date(iso), timeZone);
  }

  // What a counter is doing now: called (waiting for the citizen), serving, rating (its window
  // still open: no event marks its end, so the screen works it out), idle or closed.
  function counterStatus(counter) {
    if (counter.status === "serving") return counter.ticket_status === "called" ? "called" : "serving";
    if (counter.status === "rating" && counter.rating_until && Date.parse(counter.rating_until) <= now().getTime()) return "idle";
    return counter.status;
  }

  function percent(value) {
    return value === null || value === undefined ? "—" : `${Number(value).toLocaleString("vi-VN", { maximumFractionDigits: 1 })}%`;
  }
  function plain(value) {
    return value === null || value === undefined ? "—" : Number(value).toLocaleString("vi-VN", { maximumFractionDigits: 1 });
  }
  function minutes(seconds) {
    if (seconds === null || seconds === undefined) return { vi: "—", en: "—" };
    if (seconds <= 0) return { vi: "không phải chờ", en: "no wait" };
    const m = Math.max(1, Math.round(seconds / 60));
    return { vi: `khoảng ${m} phút`, en: `about ${m} min` };
  }

  // An element with Vietnamese text and, under it, the English (smaller).
  function bilingual(tag, vi, en, className) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    const viSpan = document.createElement("span");
    viSpan.className = "vi";
    viSpan.textContent = vi;
    element.append(viSpan);
    if (en) {
      const enSpan = document.createElement("span");
      enSpan.className = "en";
      enSpan.textContent = en;
      element.append(" ", enSpan);
    }
    return element;
  }

  // A value inside a JSON object by a dotted path ("ratings.by_level.satisfied").
  function pick(object, path) {
    return path.split(".").reduce((value, key) => (value === null || value === undefined ? undefined : value[key]), object);
  }

  // A call to the JSON API with the page's session cookie. A failure throws an Error carrying the
  // API's bilingual message, its HTTP status and its error code.
  async function api(method, path, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const failure = new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
      failure.status = response.status;
      failure.code = data && data.error ? data.error.code : null;
      throw failure;
    }
    return data;
  }

  return { connect, syncClock, now, counterStatus, clockText, dateTexts, timeOf, percent, plain, minutes, bilingual, pick, api };
})();
