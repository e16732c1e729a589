// A counter's own display (GET /counter/{counter}): the number being served and the clerk,
// from the same event stream as the lobby board, filtered to this counter.
"use strict";

(() => {
  const COUNTER_ID = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const FLASH_MS = 10000;
  const STATUS_TEXT = {
    called: ["Xin mời", "Please come in"],
    serving: ["Đang phục vụ", "Now serving"],
    rating: ["Xin đánh giá mức độ hài lòng", "Please rate our service"],
    idle: ["Sẵn sàng", "Ready"],
    closed: ["Tạm nghỉ", "Closed"],
  };
  const $ = (id) => document.getElementById(id);
  const fields = new Map();
  let flashTimer = null;
  let shown = null;

  function show(counter) {
    shown = counter;
    $("number").textContent = counter.number;
    $("number-en").textContent = counter.number;
    document.title = `Quầy ${counter.number} · Counter ${counter.number}`;
    const ticket = counter.status === "serving" ? counter.ticket : null;
    $("ticket").textContent = ticket || "—";
    document.body.dataset.ticket = ticket || "";
    const field = ticket ? fields.get(counter.ticket_field) : null;
    $("field").replaceChildren(...(field ? [motcua.bilingual("span", field.name.vi, field.name.en)] : []));
    const key = motcua.counterStatus(counter);
    const [vi, en] = STATUS_TEXT[key] || ["", ""];
    $("status").replaceChildren(motcua.bilingual("span", vi, en));
    document.body.dataset.status = key;
    $("clerk").replaceChildren(...(counter.clerk_name ? [motcua.bilingual("span", `Cán bộ: ${counter.clerk_name}`, "Clerk")] : []));
  }

  function flash() {
    document.body.classList.add("flash");
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => document.body.classList.remove("flash"), FLASH_MS);
  }

  // The rating window closes without an event: look again every second.
  setInterval(() => {
    if (shown && document.body.dataset.status !== motcua.counterStatus(shown)) show(shown);
  }, 1000);

  motcua.connect({
    snapshot(data) {
      motcua.syncClock(data.server_time);
      fields.clear();
      data.fields.forEach((field) => fields.set(field.id, field));
      const counter = data.counters.find((item) => item.counter === COUNTER_ID);
      if (counter) show(counter);
    },
    counter(counter) {
      if (counter.counter === COUNTER_ID) show(counter);
    },
    call(call) {
      if (call.counter === COUNTER_ID) flash();
    },
  });
})();
