// The lobby board: state from the event stream, calls announced one after another
// (chime, then the spoken call twice), never two at once.
//
// Query parameters: ?notice=text (scrolling line), ?voice=vi or vi,en (languages spoken),
// ?style=number|digits (how "A015" is read), ?sound=0 (silent board).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const VOICE_LANGS = (params.get("voice") || "vi").split(",").filter((lang) => lang === "vi" || lang === "en");
  const VOICE_STYLE = params.get("style") === "digits" ? "digits" : "number";
  const SOUND = params.get("sound") !== "0";
  const SAY_TIMES = 2; // each call is said twice
  const CLIP_TIMEOUT_MS = 30000; // a clip that never ends must not block the calls behind it
  const MAX_CALLS_SHOWN = 6;
  const FLASH_MS = 12000;
  // A silent board has nothing to wait for between calls: it shows each at once, highlighted
  // for about as long as a call takes to say (chime and the call twice).
  const SILENT_FLASH_MS = 8000;
  const CHIME = "/board/static/chime.wav";

  const state = { site: null, fields: new Map(), levels: [], counters: new Map(), counterOrder: [], queues: new Map(), calls: [], today: null };
  const seenCalls = new Set();
  const $ = (id) => document.getElementById(id);

  // --- rendering -------------------------------------------------------------------------

  function fieldName(fieldId) {
    const field = state.fields.get(fieldId);
    return field ? field.name : { vi: fieldId || "", en: "" };
  }

  function renderSite() {
    $("site-vi").textContent = state.site.name.vi;
    $("site-en").textContent = state.site.name.en;
    document.title = `${state.site.name.vi} · Bảng thông tin`;
  }

  // The clock shows hours and minutes: it is formatted and written only when the minute (or the
  // site's time zone) changed, not at every tick. Time zones are whole minutes off UTC, so the
  // minute of the epoch changes when the local minute does. A text set, even to the same
  // string, costs a layout, a repaint and a frame on every board.
  let clockShown = "";

  function renderClock() {
    const timeZone = state.site ? state.site.timezone : undefined;
    const now = motcua.now();
    const minute = `${Math.floor(now.getTime() / 60000)}|${timeZone}`;
    if (minute === clockShown) return;
    clockShown = minute;
    $("clock").textContent = motcua.clockText(now, timeZone);
    const dates = motcua.dateTexts(now, timeZone);
    $("date-vi").textContent = dates.vi;
    $("date-en").textContent = dates.en;
  }

  // Puts `wanted` (elements, in order) in `parent` with as few DOM operations as possible:
  // elements left out are removed, the others stay where they are unless out of place. An
  // element taken out and put back (as replaceChildren does with every child) loses its
  // layout: its style, layout and text shaping are done again.
  function placeChildren(parent, wanted) {
    const keep = new Set(wanted);
    for (const child of [...parent.children]) {
      if (!keep.has(child)) child.remove();
    }
    wanted.forEach((child, index) => {
      const here = parent.children[index] || null;
      if (here !== child) parent.insertBefore(child, here);
    });
  }

  function renderServing() {
    // Only tiles whose content changed are rebuilt: the others keep their element (and a
    // running glow), so a call costs one tile of layout and paint, not the whole grid.
    const grid = $("serving");
    const existing = new Map([...grid.children].map((tile) => [tile.dataset.counter, tile]));
    const tiles = state.counterOrder.map((counterId) => {
      const counter = state.counters.get(counterId);
      const flashing = Boolean(counter.flashUntil && counter.flashUntil > Date.now());
      const signature = [motcua.counterStatus(counter), counter.status, counter.ticket || "", counter.ticket_field || "",
        counter.number, flashing].join("|");
      const old = existing.get(String(counter.counter));
      return old && old.dataset.signature === signature ? old : servingTile(counter, flashing, signature);
    });
    placeChildren(grid, tiles);
  }

  function servingTile(counter, flashing, signature) {
    const tile = document.createElement("div");
    tile.className = `tile status-${motcua.counterStatus(counter)}`;
    tile.dataset.counter = counter.counter;
    tile.dataset.ticket = counter.ticket || "";
    tile.dataset.signature = signature;
    const head = motcua.bilingual("div", `Quầy ${counter.number}`, `Counter ${counter.number}`, "tile-counter");
    const code = document.createElement("div");
    code.className = "tile-ticket";
    code.textContent = counter.ticket || "—";
    tile.append(head, code);
    if (counter.ticket) {
      const name = fieldName(counter.ticket_field);
      tile.append(motcua.bilingual("div", name.vi, name.en, "tile-field"));
    } else if (counter.status === "closed") {
      tile.append(motcua.bilingual("div", "Tạm nghỉ", "Closed", "tile-field"));
    } else {
      tile.append(motcua.bilingual("div", "Sẵn sàng", "Ready", "tile-field"));
    }
    if (flashing) tile.classList.add("flash");
    return tile;
  }

  function renderCalls() {
    // As the tiles: a new call adds one item at the top, the others keep theirs (a call's
    // item never changes: a recall is a new call id).
    const list = $("calls");
    const timeZone = state.site && state.site.timezone;
    const existing = new Map([...list.children].map((item) => [item.dataset.callId, item]));
    const items = state.calls.slice(0, MAX_CALLS_SHOWN).map((call) => {
      const signature = [call.ticket, call.counter_number, call.at, timeZone].join("|");
      const old = existing.get(call.id);
      return old && old.dataset.signature === signature ? old : callItem(call, timeZone, signature);
    });
    placeChildren(list, items);
  }

  function callItem(call, timeZone, signature) {
    const item = document.createElement("li");
    item.dataset.callId = call.id;
    item.dataset.ticket = call.ticket;
    item.dataset.signature = signature;
    const code = document.createElement("span");
    code.className = "call-ticket";
    code.textContent = call.ticket;
    const where = motcua.bilingual("span", `Quầy ${call.counter_number}`, `Counter ${call.counter_number}`, "call-counter");
    const time = document.createElement("span");
    time.className = "call-time";
    time.textContent = motcua.timeOf(call.at, timeZone);
    item.append(code, where, time);
    return item;
  }

  function renderQueues() {
    // As the tiles: a row is rebuilt only when what it shows changed.
    const body = $("queues");
    const existing = new Map([...body.children].map((row) => [row.dataset.field, row]));
    const rows = [...state.fields].map(([fieldId, field]) => {
      const queue = state.queues.get(fieldId) || { waiting: 0, priority_waiting: 0, est_wait_s: null };
      const signature = [field.letter, field.name.vi, field.name.en, queue.waiting, queue.waiting ? queue.est_wait_s : 0].join("|");
      const old = existing.get(fieldId);
      return old && old.dataset.signature === signature ? old : queueRow(fieldId, field, queue, signature);
    });
    placeChildren(body, rows);
  }

  function queueRow(fieldId, field, queue, signature) {
    const row = document.createElement("tr");
    row.dataset.field = fieldId;
    row.dataset.signature = signature;
    row.dataset.waiting = queue.waiting;
    const letter = document.createElement("td");
    letter.className = "queue-letter";
    letter.textContent = field.letter;
    const name = motcua.bilingual("td", field.name.vi, field.name.en, "queue-name");
    const waiting = document.createElement("td");
    waiting.className = "queue-waiting";
    waiting.textContent = queue.waiting;
    const wait = motcua.minutes(queue.waiting ? queue.est_wait_s : 0);
    const estimate = motcua.bilingual("td", wait.vi, wait.en, "queue-estimate");
    row.append(letter, name, waiting, estimate);
    return row;
  }

  function renderLevels() {
    const box = $("rating-stats");
    box.querySelectorAll(".stat.level").forEach((element) => element.remove());
    const first = box.firstElementChild;
    for (const level of state.levels) {
      const stat = document.createElement("div");
      stat.className = "stat level";
      stat.dataset.stat = `ratings.by_level.${level.id}`;
      stat.dataset.format = "plain";
      stat.style.setProperty("--level-colour", level.colour);
      const value = document.createElement("b");
      const vi = document.createElement("span");
      vi.className = "vi";
      vi.textContent = level.name.vi;
      const en = document.createElement("span");
      en.className = "en";
      en.textContent = level.name.en;
      stat.append(value, vi, en);
      box.insertBefore(stat, first);
    }
  }

  function renderToday() {
    if (!state.today) return;
    // Only figures that changed are written: an unchanged text still costs a relayout when set.
    document.querySelectorAll("[data-stat]").forEach((element) => {
      const value = motcua.pick(state.today, element.dataset.stat);
      const encoded = JSON.stringify(value === undefined ? null : value);
      if (element.dataset.value === encoded) return;
      element.dataset.value = encoded;
      element.querySelector("b").textContent = element.dataset.format === "percent" ? motcua.percent(value) : motcua.plain(value);
    });
  }

  function showLatest(call, flashing) {
    // Written only when it changed: the end of an announcement only stops the flash.
    const box = $("latest");
    const field = call ? fieldName(call.field) : null;
    const signature = call ? [call.id, call.ticket, call.counter_number, field.vi, field.en].join("|") : "";
    if (box.dataset.signature !== signature) {
      box.dataset.signature = signature;
      box.dataset.callId = call ? call.id : "";
      $("latest-ticket").textContent = call ? call.ticket : "—";
      $("latest-counter").textContent = call ? call.counter_number : "—";
      $("latest-field").replaceChildren(...(field ? [motcua.bilingual("span", field.vi, field.en)] : []));
    }
    box.classList.toggle("flash", Boolean(flashing));
  }

  // --- announcing ------------------------------------------------------------------------

  const announcer = (() => {
    const player = $("player");
    const pending = [];
    let busy = false;
    let current = null;

    function voiceUrl(call, lang) {
      return `/board/voice/${encodeURIComponent(call.ticket)}/${encodeURIComponent(call.counter)}.wav?lang=${lang}&style=${VOICE_STYLE}`;
    }

    // Play one clip to its end (or its failure); resolves either way.
    function play(url) {
      return new Promise((resolve) => {
        let timer = null;
        const done = () => {
          clearTimeout(timer);
          player.onended = player.onerror = null;
          resolve();
        };
        player.onended = done;
        player.onerror = done;
        timer = setTimeout(done, CLIP_TIMEOUT_MS);
        player.src = url;
        player.play().catch((error) => {
          if (error && error.name === "NotAllowedError") $("sound-unlock").hidden = false;
          done();
        });
      });
    }

    async function run() {
      if (busy) return;
      busy = true;
      while (pending.length) {
        current = pending.shift();
        showLatest(current, true);
        const urls = VOICE_LANGS.map((lang) => voiceUrl(current, lang));
        urls.forEach((url) => fetch(url).catch(() => {})); // synthesised while the chime plays
        await play(CHIME);
        for (let time = 0; time < SAY_TIMES; time += 1) {
          for (const url of urls) await play(url);
        }
        showLatest(current, false);
      }
      current = null;
      busy = false;
    }

    let silentTimer = null;

    return {
      enqueue(call) {
        if (!SOUND) {
          current = call;
          showLatest(call, true);
          clearTimeout(silentTimer);
          silentTimer = setTimeout(() => {
            current = null;
            showLatest(call, false);
          }, SILENT_FLASH_MS);
          return;
        }
        pending.push(call);
        run();
      },
      get current() {
        return current;
      },
    };
  })();

  $("sound-unlock").addEventListener("click", () => {
    $("sound-unlock").hidden = true;
    const player = $("player");
    player.src = CHIME;
    player.play().catch(() => {});
  });

  // --- events ------------------------------------------------------------------------------

  function rememberCall(call) {
    state.calls = [call, ...state.calls.filter((earlier) => earlier.ticket_id !== call.ticket_id)].slice(0, 20);
  }

  motcua.connect({
    snapshot(data) {
      motcua.syncClock(data.server_time);
      state.site = data.site;
      state.fields = new Map(data.fields.map((field) => [field.id, field]));
      state.levels = data.rating_levels;
      state.counterOrder = data.counters.map((counter) => counter.counter);
      state.counters = new Map(data.counters.map((counter) => [counter.counter, counter]));
      state.queues = new Map(data.queues.map((queue) => [queue.field, queue]));
      state.calls = data.calls;
      data.calls.forEach((call) => seenCalls.add(call.id)); // known calls are shown, not announced again
      state.today = data.today;
      renderSite();
      renderClock();
      renderLevels();
      renderServing();
      renderCalls();
      renderQueues();
      renderToday();
      if (!announcer.current) showLatest(state.calls[0] || null, false);
    },
    counter(counter) {
      const known = state.counters.get(counter.counter);
      if (known && known.flashUntil && known.ticket === counter.ticket) counter.flashUntil = known.flashUntil;
      if (!state.counterOrder.includes(counter.counter)) state.counterOrder.push(counter.counter);
      state.counters.set(counter.counter, counter);
      renderServing();
    },
    call(call) {
      if (seenCalls.has(call.id)) return;
      seenCalls.add(call.id);
      rememberCall(call);
      const counter = state.counters.get(call.counter);
      if (counter) counter.flashUntil = Date.now() + FLASH_MS;
      renderServing();
      renderCalls();
      announcer.enqueue(call);
    },
    queue(queue) {
      state.queues.set(queue.field, queue);
      renderQueues();
    },
    today(today) {
      motcua.syncClock(today.generated_at); // the screen's clock drifts; the server's is the reference
      renderClock();
      if (state.today && state.today.ratings_through > today.ratings_through) {
        // A press shown already is newer than these figures: keep its counts.
        today.ratings = state.today.ratings;
        today.ratings_through = state.today.ratings_through;
      }
      state.today = today;
      renderToday();
    },
    ratings(update) {
      // A press, sent the moment it is counted (or flagged), ahead of the day's full figures.
      if (!state.today || update.through <= state.today.ratings_through) return;
      state.today.ratings = update.ratings;
      state.today.ratings_through = update.through;
      renderToday();
    },
  });

  const notice = params.get("notice");
  if (notice) {
    $("notice").textContent = notice;
    $("notice-bar").hidden = false;
  }
  renderClock();
  setInterval(renderClock, 1000);
  setInterval(() => {
    // The flash of a newly called counter ends by itself.
    let expired = false;
    for (const counter of state.counters.values()) {
      if (counter.flashUntil && counter.flashUntil <= Date.now()) {
        counter.flashUntil = 0;
        expired = true;
      }
    }
    if (expired) renderServing();
  }, 1000);
  const BLINK_MS = 500;
  setInterval(() => {
    // Only while something is flashing; the reduced-motion CSS shows a steady glow instead.
    const blinking = document.querySelector(".flash") !== null;
    document.body.classList.toggle("blink-on", blinking && !document.body.classList.contains("blink-on"));
  }, BLINK_MS);
})();
