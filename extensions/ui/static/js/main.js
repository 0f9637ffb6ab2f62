// Start-up: routing between the chat and the pages (#/models, #/assistants, #/status), the
// theme, the side panels on small screens.
import { $ } from "./dom.js";
import { state, on } from "./state.js";
import * as chat from "./chat.js";
import * as threads from "./threads.js";
import * as panel from "./panel.js";

// The pages other than the chat load on first visit: fewer modules before the composer works.
let modelsPage = null;
let otherPages = null;
const models = () => (modelsPage ||= import("./models.js").then((m) => { m.init(); return m; }));
const pages = () => (otherPages ||= import("./pages.js").then((m) => { m.init(); return m; }));

const VIEWS = ["chat", "models", "assistants", "status"];

function route() {
  const name = (location.hash.replace(/^#\/?/, "").split("/")[0]) || "chat";
  const view = VIEWS.includes(name) ? name : "chat";
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll(".nav-links a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("panel").hidden = view !== "chat";
  $("layout").classList.toggle("no-panel", view !== "chat");
  $("layout").classList.remove("sidebar-open");
  if (view === "models") models().then((m) => m.show());
  if (view === "assistants") pages().then((m) => m.showAssistants());
  if (view === "status") pages().then((m) => m.showStatus());
}

const THEMES = ["auto", "light", "dark"];
function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("theme-toggle").textContent = `Theme: ${theme}`;
  localStorage.setItem("jan.theme", theme);
}

function init() {
  applyTheme(localStorage.getItem("jan.theme") || "auto");
  $("theme-toggle").addEventListener("click", () => {
    const now = localStorage.getItem("jan.theme") || "auto";
    applyTheme(THEMES[(THEMES.indexOf(now) + 1) % THEMES.length]);
  });
  const layout = $("layout");
  const narrow = () => matchMedia("(max-width: 1100px)").matches;
  if (narrow()) layout.classList.add("panel-closed");
  const syncPanel = () => $("toggle-panel").setAttribute("aria-expanded", String(!layout.classList.contains("panel-closed")));
  syncPanel();
  $("toggle-panel").addEventListener("click", () => { layout.classList.toggle("panel-closed"); syncPanel(); });
  const openSidebar = () => { layout.classList.add("sidebar-open"); $("new-chat").focus(); };
  $("open-sidebar").addEventListener("click", openSidebar);
  for (const b of document.querySelectorAll("[data-open-sidebar]")) b.addEventListener("click", openSidebar);
  $("close-sidebar").addEventListener("click", () => layout.classList.remove("sidebar-open"));
  $("new-chat").addEventListener("click", () => {
    location.hash = "#/";
    chat.open(null);
    $("composer-input").focus();
  });
  on("open-thread", (t) => { location.hash = "#/"; chat.open(t).then(() => $("composer-input").focus()); });
  on("thread-opened", () => threads.render());
  on("thread-deleted", (t) => { if (state.thread && state.thread.id === t.id) chat.open(null); });
  on("thread-updated", (t) => { if (state.thread && state.thread.id === t.id) { state.thread = t; $("chat-title").textContent = threads.titleOf(t); } });
  chat.init();
  window.addEventListener("hashchange", route);
  route();
  $("composer-input").focus();
  performance.mark("jan-composer-ready");  // the composer takes input from here (bench_ui.py)
  Promise.all([threads.init(), panel.init()]).then(() => {
    document.body.dataset.ready = "true";  // tests and the benchmark wait for this
  });
}

init();
