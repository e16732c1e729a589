// The accounts page for admins: sign in (POST /api/v1/login), then list, add, change the role
// of, disable or re-enable accounts and reset passwords, all through /api/v1/users. A password
// the server generates is shown once, in the yellow box, and never again.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ROLES = {
    clerk: ["Cán bộ tiếp nhận", "Clerk"],
    manager: ["Lãnh đạo", "Manager"],
    admin: ["Quản trị viên", "Admin"],
  };
  const state = { user: null, timeZone: "Asia/Ho_Chi_Minh", users: [] };

  // --- the API (motcua.api in common.js, as the clerk console and the dashboard use it) -------

  const api = motcua.api;

  function say(text, kind) {
    const box = $("message");
    box.textContent = text || "";
    box.dataset.kind = kind || "info";
    box.hidden = !text;
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

  function show(view) {
    document.body.dataset.view = view;
    $("logout").hidden = view === "login" || view === "loading";
    $("who").textContent = state.user ? `${state.user.username} (${ROLES[state.user.role] ? ROLES[state.user.role][0] : state.user.role})` : "";
  }

  // --- what the page shows ------------------------------------------------------------------

  function roleOptions(select, selected) {
    select.replaceChildren();
    for (const [role, [vi, en]] of Object.entries(ROLES)) {
      const option = document.createElement("option");
      option.value = role;
      option.textContent = `${vi} · ${en}`;
      option.selected = role === selected;
      select.append(option);
    }
  }

  function createdText(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat("vi-VN", { timeZone: state.timeZone, day: "2-digit", month: "2-digit", year: "numeric" }).format(new Date(iso));
  }

  function button(vi, en, className, onClick) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = className || "";
    element.textContent = `${vi} · ${en}`;
    element.addEventListener("click", onClick);
    return element;
  }

  function renderUsers() {
    const body = $("users");
    body.replaceChildren();
    for (const user of state.users) {
      const mine = state.user && user.username === state.user.username;
      const row = document.createElement("tr");
      row.dataset.username = user.username;
      row.dataset.disabled = String(user.disabled);

      const name = document.createElement("td");
      name.className = "username";
      name.textContent = user.username;
      if (mine) name.append(" ", motcua.bilingual("span", "(bạn)", "(you)", "you"));

      const roleCell = document.createElement("td");
      const select = document.createElement("select");
      select.className = "role";
      roleOptions(select, user.role);
      // Demoting oneself is refused by the server; the page does not offer it.
      select.disabled = mine;
      select.addEventListener("change", () => changeRole(user, select));
      roleCell.append(select);

      const status = user.disabled ? ["Đã khoá", "Disabled", "disabled"] : ["Đang hoạt động", "Active", "active"];
      const statusCell = motcua.bilingual("td", status[0], status[1], "state");
      statusCell.dataset.state = status[2];

      const created = document.createElement("td");
      created.textContent = createdText(user.created_at);

      const actionsCell = document.createElement("td");
      const actions = document.createElement("div");
      actions.className = "actions";
      actionsCell.append(actions);
      actions.append(button("Đặt lại mật khẩu", "Reset password", "reset", () => resetPassword(user)));
      const toggle = user.disabled
        ? button("Mở khoá", "Enable", "enable", () => setDisabled(user, false))
        : button("Khoá", "Disable", "disable danger", () => setDisabled(user, true));
      toggle.disabled = mine && !user.disabled;
      actions.append(toggle);

      row.append(name, roleCell, statusCell, created, actionsCell);
      body.append(row);
    }
    $("count").textContent = `(${state.users.length})`;
  }

  function showOnce(username, password) {
    $("once-username").textContent = username;
    $("once-password").textContent = password;
    $("once").hidden = false;
  }

  function hideOnce() {
    $("once-password").textContent = "";
    $("once").hidden = true;
  }

  async function loadUsers() {
    state.users = await api("GET", "/api/v1/users");
    renderUsers();
  }

  // --- actions ------------------------------------------------------------------------------

  async function changeRole(user, select) {
    const [vi, en] = ROLES[select.value];
    try {
      await api("PATCH", `/api/v1/users/${encodeURIComponent(user.username)}`, { role: select.value });
      say(`Đã đổi vai trò của ${user.username} thành ${vi} / ${user.username} is now ${en}`);
      await loadUsers();
    } catch (error) {
      select.value = user.role;
      failed(error);
    }
  }

  async function setDisabled(user, disabled) {
    if (disabled && !window.confirm(`Khoá tài khoản ${user.username}? Mọi phiên đăng nhập của tài khoản sẽ kết thúc.\nDisable ${user.username}? Every session of the account ends.`)) return;
    try {
      await api("PATCH", `/api/v1/users/${encodeURIComponent(user.username)}`, { disabled });
      say(disabled
        ? `Đã khoá ${user.username} / ${user.username} is disabled`
        : `Đã mở khoá ${user.username} / ${user.username} is enabled`);
      await loadUsers();
    } catch (error) {
      failed(error);
    }
  }

  async function resetPassword(user) {
    if (!window.confirm(`Đặt lại mật khẩu của ${user.username}? Mật khẩu cũ hết hiệu lực ngay.\nReset the password of ${user.username}? The old one stops working at once.`)) return;
    try {
      const result = await api("POST", `/api/v1/users/${encodeURIComponent(user.username)}/password`, {});
      showOnce(result.username, result.password);
      say(`Đã đặt lại mật khẩu của ${user.username} / Password of ${user.username} reset`);
    } catch (error) {
      failed(error);
    }
  }

  async function addUser(event) {
    event.preventDefault();
    const body = { username: $("new-username").value.trim(), role: $("new-role").value };
    const password = $("new-password").value;
    if (password) body.password = password;
    try {
      const created = await api("POST", "/api/v1/users", body);
      $("add").reset();
      roleOptions($("new-role"), "clerk");
      if (created.password) showOnce(created.username, created.password);
      else hideOnce();
      say(`Đã thêm tài khoản ${created.username} / Account ${created.username} added`);
      await loadUsers();
    } catch (error) {
      failed(error);
    }
  }

  // --- signing in and out ---------------------------------------------------------------------

  async function start() {
    try {
      state.user = await api("GET", "/api/v1/me");
    } catch (error) {
      state.user = null;
      if (error.status === 401) {
        show("login");
        return;
      }
      failed(error);
      return;
    }
    if (state.user.role !== "admin") {
      show("forbidden");
      return;
    }
    try {
      await loadUsers();
      show("accounts");
    } catch (error) {
      failed(error);
    }
  }

  async function login(event) {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/login", { username: $("username").value.trim(), password: $("password").value });
      $("password").value = "";
      say("");
      await start();
    } catch (error) {
      say(error.message, "error");
    }
  }

  async function logout() {
    try {
      await api("POST", "/api/v1/logout");
    } finally {
      state.user = null;
      state.users = [];
      hideOnce();
      say("");
      show("login");
    }
  }

  async function loadSite() {
    try {
      const config = await api("GET", "/api/v1/config");
      state.timeZone = config.site.timezone || state.timeZone;
      $("site").replaceChildren(motcua.bilingual("span", config.site.name.vi, config.site.name.en));
    } catch (error) {
      console.error("no site config", error);
    }
  }

  roleOptions($("new-role"), "clerk");
  $("login").addEventListener("submit", login);
  $("add").addEventListener("submit", addUser);
  $("logout").addEventListener("click", logout);
  $("forbidden-logout").addEventListener("click", logout);
  $("once-close").addEventListener("click", hideOnce);
  loadSite().then(start);
})();
