// Browser UI for the blog API. Plain ES module, no build step, no network
// access beyond same-origin /api calls. Every piece of user content goes into
// the DOM as text (textContent / text nodes), never as HTML.

const PAGE_SIZE = 20;
const COMMENT_PAGE_SIZE = 20;
const LOG_SIZE = 10;
const DEFAULT_TITLE = "Blog · monolith to microservices";
const KNOWN_COMPONENTS = new Set(["monolith", "posts", "comments", "gateway"]);

// ---------------------------------------------------------------------------
// DOM helpers

/** Build an element. Strings among the children become text nodes. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const $main = () => document.getElementById("main");

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------
// Time formatting

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absoluteFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});

function humanTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const seconds = (date.getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relativeFormat.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return relativeFormat.format(Math.round(seconds / 3600), "hour");
  if (abs < 7 * 86400) return relativeFormat.format(Math.round(seconds / 86400), "day");
  return absoluteFormat.format(date);
}

function timeEl(iso, testid) {
  return h("time", { datetime: iso, title: iso, testid }, humanTime(iso));
}

// Keep "just now" / "5 minutes ago" honest while the page stays open.
setInterval(() => {
  for (const el of document.querySelectorAll("time[datetime]")) {
    el.textContent = humanTime(el.getAttribute("datetime"));
  }
}, 30_000);

// ---------------------------------------------------------------------------
// Served-by badges

function badge(section) {
  return h(
    "span",
    { class: "badge", testid: `served-by-${section}`, dataset: { component: "pending" } },
    h("span", { class: "badge-label" }, "served by"),
    " ",
    h("span", { class: "badge-value" }, "…"),
  );
}

function setBadge(el, response) {
  if (!el || !response) return;
  const component = response.servedBy || "unknown";
  el.dataset.component = KNOWN_COMPONENTS.has(component) ? component : "unknown";
  el.querySelector(".badge-value").textContent = component;
  el.title = `X-Served-By: ${component}\nX-Request-ID: ${response.requestId || "(none)"}`;
}

// ---------------------------------------------------------------------------
// Error banner (non-blocking)

function showBanner(message, meta) {
  const region = document.getElementById("banner-region");
  const details = meta ? h("span", { class: "banner-meta" }, meta) : null;
  const banner = h(
    "div",
    { class: "banner banner-error", role: "alert", testid: "error-banner" },
    h("p", { class: "banner-text" }, h("strong", {}, "Something went wrong: "), message, details ? " " : null, details),
    h(
      "button",
      {
        type: "button",
        class: "banner-close",
        "aria-label": "Dismiss error",
        testid: "error-banner-close",
        onclick: () => banner.remove(),
      },
      "×",
    ),
  );
  region.replaceChildren(banner);
}

function clearBanner() {
  document.getElementById("banner-region").replaceChildren();
}

// ---------------------------------------------------------------------------
// API client + call log

const callLog = [];

function logCall(entry) {
  callLog.unshift(entry);
  callLog.length = Math.min(callLog.length, LOG_SIZE);
  renderLog();
}

// Shorten ids in logged paths so the interesting tail ("/comments/") stays visible.
function shortPath(path) {
  return path.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, (id) => `${id.slice(0, 8)}…`);
}

function statusClass(status) {
  if (typeof status !== "number") return "status-err";
  if (status >= 500) return "status-err";
  if (status >= 400) return "status-warn";
  return "status-ok";
}

function renderLog() {
  const body = document.getElementById("api-log-body");
  if (!body) return;
  if (callLog.length === 0) {
    body.replaceChildren(h("tr", { class: "api-log-empty" }, h("td", { colspan: 6 }, "No calls yet.")));
    return;
  }
  body.replaceChildren(
    ...callLog.map((call) => {
      const component = call.servedBy || "—";
      return h(
        "tr",
        { testid: "api-log-entry" },
        h("td", { class: "method" }, call.method),
        h("td", { class: "path" }, h("code", { title: call.path }, shortPath(call.path))),
        h(
          "td",
          {
            class: `status ${statusClass(call.status)}`,
            testid: "api-log-status",
            title: call.replayed ? "Idempotent-Replayed: the first answer to this Idempotency-Key" : null,
          },
          String(call.status),
          call.replayed ? h("span", { class: "replayed", testid: "api-log-replayed" }, " (replayed)") : null,
        ),
        h(
          "td",
          {},
          h(
            "span",
            {
              class: "badge",
              testid: "api-log-served-by",
              dataset: { component: KNOWN_COMPONENTS.has(component) ? component : "unknown" },
            },
            h("span", { class: "badge-value" }, component),
          ),
        ),
        h("td", { class: "num ms" }, String(call.ms)),
        h("td", { class: "request-id" }, h("code", { title: call.requestId || "" }, call.requestId || "—")),
      );
    }),
  );
}

class NetworkError extends Error {}

/**
 * Call the API. Resolves with {status, ok, data, servedBy, requestId, replayed}
 * for any HTTP answer; rejects with NetworkError when no answer came back.
 * Network failures and 5xx answers also raise the error banner. `extraHeaders`
 * go with the request as they are (e.g. an Idempotency-Key).
 */
async function api(method, path, body, extraHeaders) {
  const headers = { Accept: "application/json", ...extraHeaders };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const started = performance.now();
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    logCall({ method, path, status: "ERR", servedBy: null, ms, requestId: null });
    showBanner("the server could not be reached (network error).", `${method} ${path}`);
    throw new NetworkError(String(err));
  }
  const text = res.status === 204 ? "" : await res.text();
  const ms = Math.round(performance.now() - started);
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  const response = {
    status: res.status,
    ok: res.ok,
    data,
    servedBy: res.headers.get("X-Served-By"),
    requestId: res.headers.get("X-Request-ID"),
    replayed: res.headers.get("Idempotent-Replayed") === "true",
  };
  logCall({
    method,
    path,
    status: res.status,
    servedBy: response.servedBy,
    ms,
    requestId: response.requestId,
    replayed: response.replayed,
  });
  if (res.status >= 500) {
    const detail = detailOf(data) || `the server answered ${res.status}${text && !data ? " (not JSON)" : ""}.`;
    const meta = `${method} ${path} · ${res.status} · served by ${response.servedBy || "?"}${
      response.requestId ? ` · request ${response.requestId}` : ""
    }`;
    showBanner(detail, meta);
  }
  return response;
}

function detailOf(data) {
  if (data && typeof data === "object" && !Array.isArray(data) && typeof data.detail === "string") {
    return data.detail;
  }
  return null;
}

function messagesOf(value) {
  if (Array.isArray(value)) return value.map(messagesOf).join(" ");
  if (value && typeof value === "object") return Object.values(value).map(messagesOf).join(" ");
  return String(value);
}

function pageFromUrl(url, fallback) {
  if (!url) return null;
  try {
    const page = Number.parseInt(new URL(url, window.location.href).searchParams.get("page") || "1", 10);
    return Number.isFinite(page) && page > 0 ? page : fallback;
  } catch {
    return fallback;
  }
}

const postPath = (id) => `/api/posts/${encodeURIComponent(id)}/`;

// ---------------------------------------------------------------------------
// Idempotency keys: a create that got no answer (network error, 503, 504) may
// still have happened. Its retry sends the same Idempotency-Key, so the server
// answers with the first result instead of storing the post or comment twice.

/** A random UUID v4; crypto.randomUUID exists only in secure contexts (https, localhost). */
function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The keys of one form's submissions. `keyFor(payload)` keeps the key while
 * the same content is submitted again (a retry) and makes a new one when the
 * content changed, so a key never goes with two bodies (the server would
 * refuse that with a 422). `settled()` after a success: sending the same
 * content again is then a new submission.
 */
function submissionKeys() {
  let key = null;
  let content = null;
  return {
    keyFor(payload) {
      const fingerprint = JSON.stringify(payload);
      if (key === null || fingerprint !== content) {
        key = newIdempotencyKey();
        content = fingerprint;
      }
      return key;
    },
    settled() {
      key = null;
      content = null;
    },
  };
}

const idempotencyHeader = (key) => ({ "Idempotency-Key": key });

/**
 * A create without a clear outcome (no answer, or a 5xx such as the gateway's
 * 504): it may have happened. Say so, and that a retry is safe.
 */
function showUnsettled(form, what, res) {
  const detail = res ? detailOf(res.data) : null;
  const reason = res ? `HTTP ${res.status}${detail ? `: ${detail}` : ""}` : "no answer from the server";
  showFormErrors(
    form,
    null,
    `The ${what} may not have been saved (${reason}). Submitting again is safe: it will not be saved twice.`,
  );
}

// ---------------------------------------------------------------------------
// Forms: fields with error slots next to them

function field({ id, name, label, control, hint }) {
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  control.id = id;
  control.name = name;
  control.dataset.testid = id;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  control.dataset.field = name;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    h("p", { class: "field-error", id: errorId, testid: errorId, dataset: { errorFor: name }, hidden: true }),
  );
}

function formErrorSlot(testid) {
  return h("p", { class: "form-error", testid, role: "alert", hidden: true });
}

function clearFormErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** Show an API error answer on the form: per-field messages next to the fields, the rest form-level. */
function showFormErrors(form, response, fallback) {
  clearFormErrors(form);
  const formLevel = [];
  const data = response && response.data;
  let firstInvalid = null;
  if (data && typeof data === "object" && !Array.isArray(data)) {
    for (const [key, value] of Object.entries(data)) {
      const control = form.querySelector(`[data-field="${CSS.escape(key)}"]`);
      const slot = form.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
      if (control && slot) {
        slot.textContent = messagesOf(value);
        slot.hidden = false;
        control.setAttribute("aria-invalid", "true");
        firstInvalid = firstInvalid || control;
      } else {
        formLevel.push(key === "detail" || key === "non_field_errors" ? messagesOf(value) : `${key}: ${messagesOf(value)}`);
      }
    }
  }
  if (!firstInvalid && formLevel.length === 0) formLevel.push(fallback);
  if (formLevel.length) {
    const slot = form.querySelector(".form-error");
    slot.textContent = formLevel.join(" ");
    slot.hidden = false;
  }
  if (firstInvalid) firstInvalid.focus();
}

function setBusy(button, busy, busyText) {
  if (busy) {
    button.dataset.idleText = button.textContent;
    button.textContent = busyText;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  } else {
    button.textContent = button.dataset.idleText || button.textContent;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------------------
// Routing (hash based: #/, #/?page=N, #/posts/<id>)

let renderSeq = 0;
let flashMessage = null;

function parseRoute() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const match = path.match(/^\/posts\/([^/]+)\/?$/);
  if (match) return { name: "post", id: decodeURIComponent(match[1]) };
  if (path === "/" || path === "") {
    const page = Number.parseInt(params.get("page") || "1", 10);
    return { name: "list", page: Number.isFinite(page) && page > 0 ? page : 1 };
  }
  return { name: "notfound" };
}

function navigate(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function render() {
  const seq = ++renderSeq;
  const isCurrent = () => seq === renderSeq;
  clearBanner();
  document.title = DEFAULT_TITLE;
  const route = parseRoute();
  if (route.name === "list") renderList(route.page, isCurrent);
  else if (route.name === "post") renderPost(route.id, isCurrent);
  else renderNotFound();
}

function focusHeading() {
  const heading = $main().querySelector("h1");
  if (heading) heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function renderNotFound() {
  $main().replaceChildren(
    h(
      "section",
      { class: "card notice" },
      h("h1", { tabindex: -1 }, "Page not found"),
      h("p", {}, h("a", { href: "#/" }, "Back to all posts")),
    ),
  );
  focusHeading();
}

// ---------------------------------------------------------------------------
// Post list

function excerpt(text, max = 180) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max).trimEnd()}…` : flat;
}

function postItem(post) {
  return h(
    "li",
    { class: "post-item", testid: "post-item", dataset: { postId: post.id } },
    h(
      "h2",
      { class: "post-item-title" },
      h("a", { href: `#/posts/${encodeURIComponent(post.id)}`, class: "post-link", testid: "post-link" }, post.title),
    ),
    h("p", { class: "excerpt", testid: "post-excerpt" }, excerpt(post.body)),
    h(
      "p",
      { class: "meta" },
      timeEl(post.created_at, "post-created"),
      h("span", { class: "dot", "aria-hidden": "true" }, "·"),
      h(
        "span",
        { class: "comment-count", testid: "comment-count", dataset: { count: post.comment_count } },
        plural(post.comment_count, "comment", "comments"),
      ),
    ),
  );
}

function pagination(page, data) {
  const totalPages = Math.max(1, Math.ceil(data.count / PAGE_SIZE));
  const prevPage = data.previous ? pageFromUrl(data.previous, page - 1) || page - 1 : null;
  const nextPage = data.next ? pageFromUrl(data.next, page + 1) || page + 1 : null;
  const link = (target, label, testid, rel) =>
    target
      ? h("a", { class: "btn", href: `#/?page=${target}`, rel, testid }, label)
      : h("span", { class: "btn", "aria-disabled": "true", testid }, label);
  return h(
    "nav",
    { class: "pagination", "aria-label": "Pages", testid: "pagination" },
    link(prevPage, "← Previous", "page-prev", "prev"),
    h("span", { class: "page-status", testid: "page-status", "aria-current": "page" }, `Page ${page} of ${totalPages}`),
    link(nextPage, "Next →", "page-next", "next"),
  );
}

async function renderList(page, isCurrent) {
  const listBadge = badge("list");
  const count = h("span", { class: "count", testid: "post-total" });
  const body = h("div", { class: "list-body", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading posts…"));
  const flash = flashMessage
    ? h("p", { class: "flash", role: "status", testid: "flash" }, flashMessage)
    : null;
  flashMessage = null;

  $main().replaceChildren(
    h(
      "div",
      { class: "layout" },
      newPostForm(),
      h(
        "section",
        { class: "card posts", "aria-labelledby": "posts-heading", testid: "post-list-section" },
        h(
          "div",
          { class: "section-head" },
          h("h1", { id: "posts-heading", tabindex: -1 }, "Posts ", count),
          listBadge,
        ),
        flash,
        body,
      ),
    ),
  );
  focusHeading();

  let res;
  try {
    res = await api("GET", `/api/posts/?page=${page}&page_size=${PAGE_SIZE}`);
  } catch {
    if (isCurrent()) body.replaceChildren(h("p", { class: "empty" }, "Posts could not be loaded."));
    return;
  }
  if (!isCurrent()) return;
  setBadge(listBadge, res);
  body.removeAttribute("aria-busy");

  if (res.status === 404 && page > 1) {
    body.replaceChildren(
      h(
        "div",
        { class: "empty", testid: "page-missing" },
        h("p", {}, `There is no page ${page}.`),
        h("p", {}, h("a", { href: "#/" }, "Go to the first page")),
      ),
    );
    return;
  }
  if (!res.ok || !res.data || !Array.isArray(res.data.results)) {
    body.replaceChildren(
      h("p", { class: "empty" }, `Posts could not be loaded: ${detailOf(res.data) || `HTTP ${res.status}`}`),
    );
    return;
  }
  const data = res.data;
  count.textContent = `(${data.count})`;
  if (data.results.length === 0) {
    body.replaceChildren(h("p", { class: "empty", testid: "post-list-empty" }, "No posts yet. Write the first one!"));
    return;
  }
  body.replaceChildren(
    h("ol", { class: "post-list", testid: "post-list" }, data.results.map(postItem)),
    pagination(page, data),
  );
}

function newPostForm() {
  const formBadge = badge("create");
  formBadge.hidden = true;
  const submit = h("button", { type: "submit", class: "btn btn-primary", testid: "new-post-submit" }, "Publish");
  const form = h(
    "form",
    { class: "card post-form", novalidate: true, "aria-labelledby": "new-post-heading", testid: "new-post-form" },
    h("div", { class: "section-head" }, h("h2", { id: "new-post-heading" }, "New post"), formBadge),
    field({
      id: "new-post-title",
      name: "title",
      label: "Title",
      control: h("input", { type: "text", autocomplete: "off", required: true }),
    }),
    field({
      id: "new-post-body",
      name: "body",
      label: "Body",
      control: h("textarea", { rows: 5, required: true }),
    }),
    formErrorSlot("new-post-form-error"),
    h("div", { class: "actions" }, submit),
  );

  const keys = submissionKeys();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const payload = { title: form.elements.title.value, body: form.elements.body.value };
    const key = keys.keyFor(payload);
    setBusy(submit, true, "Publishing…");
    let res;
    try {
      res = await api("POST", "/api/posts/", payload, idempotencyHeader(key));
    } catch {
      setBusy(submit, false);
      showUnsettled(form, "post", null);
      return;
    }
    setBusy(submit, false);
    formBadge.hidden = false;
    setBadge(formBadge, res);
    if (res.status === 201 && res.data && res.data.id) {
      keys.settled();
      form.reset();
      navigate(`#/posts/${encodeURIComponent(res.data.id)}`);
      return;
    }
    if (res.status >= 500) showUnsettled(form, "post", res);
    else showFormErrors(form, res, `The post was not saved (HTTP ${res.status}).`);
  });
  return form;
}

// ---------------------------------------------------------------------------
// Single post with its comments

function commentItem(comment) {
  return h(
    "li",
    { class: "comment-item", testid: "comment-item", dataset: { commentId: comment.id } },
    h("p", { class: "comment-body", testid: "comment-body" }, comment.body),
    h("p", { class: "meta" }, timeEl(comment.created_at, "comment-created")),
  );
}

async function renderPost(id, isCurrent) {
  const postBadge = badge("post");
  const article = h(
    "article",
    { class: "card post-detail", testid: "post-detail", "aria-busy": "true" },
    h("h1", { tabindex: -1, class: "loading" }, "Loading post…"),
  );
  const back = h("a", { class: "back-link", href: "#/", testid: "back-link" }, "← All posts");
  $main().replaceChildren(h("div", { class: "stack" }, back, article));
  focusHeading();

  let postRes;
  let commentsRes;
  try {
    [postRes, commentsRes] = await Promise.all([
      api("GET", postPath(id)),
      api("GET", `${postPath(id)}comments/?page=1&page_size=${COMMENT_PAGE_SIZE}`).catch(() => null),
    ]);
  } catch {
    if (isCurrent()) {
      article.removeAttribute("aria-busy");
      article.replaceChildren(h("h1", { tabindex: -1 }, "The post could not be loaded"));
    }
    return;
  }
  if (!isCurrent()) return;
  article.removeAttribute("aria-busy");
  setBadge(postBadge, postRes);

  if (postRes.status === 404) {
    article.replaceChildren(
      h("div", { class: "section-head" }, h("h1", { tabindex: -1, testid: "post-missing" }, "Post not found"), postBadge),
      h("p", {}, detailOf(postRes.data) || "This post does not exist (any more)."),
      h("p", {}, h("a", { href: "#/" }, "Back to all posts")),
    );
    focusHeading();
    return;
  }
  if (!postRes.ok || !postRes.data) {
    article.replaceChildren(
      h("div", { class: "section-head" }, h("h1", { tabindex: -1 }, "The post could not be loaded"), postBadge),
      h("p", {}, detailOf(postRes.data) || `HTTP ${postRes.status}`),
    );
    return;
  }

  const post = postRes.data;
  const state = { commentCount: Number(post.comment_count) || 0 };
  const postCount = h(
    "span",
    { class: "comment-count", testid: "post-comment-count", dataset: { count: state.commentCount } },
    plural(state.commentCount, "comment", "comments"),
  );
  const updateCount = () => {
    postCount.dataset.count = state.commentCount;
    postCount.textContent = plural(state.commentCount, "comment", "comments");
  };

  article.replaceChildren(
    h("div", { class: "section-head" }, h("h1", { tabindex: -1, testid: "post-title" }, post.title), postBadge),
    h(
      "p",
      { class: "meta" },
      timeEl(post.created_at, "post-created"),
      h("span", { class: "dot", "aria-hidden": "true" }, "·"),
      postCount,
    ),
    h("div", { class: "post-body", testid: "post-body" }, post.body),
    deleteZone(post, postBadge),
  );
  document.title = `${post.title} · Blog`;
  const section = commentsSection(post, commentsRes, state, updateCount, isCurrent);
  article.after(section);
  focusHeading();
}

function deleteZone(post, postBadge) {
  const zone = h("div", { class: "danger-zone", testid: "delete-zone" });
  const error = h("p", { class: "form-error", role: "alert", testid: "delete-error", hidden: true });

  const showInitial = (focus) => {
    const button = h(
      "button",
      { type: "button", class: "btn btn-danger-outline", testid: "delete-post", onclick: showConfirm },
      "Delete post",
    );
    zone.replaceChildren(button, error);
    if (focus) button.focus();
  };

  function showConfirm() {
    error.hidden = true;
    const confirmButton = h(
      "button",
      { type: "button", class: "btn btn-danger", testid: "confirm-delete", onclick: () => doDelete(confirmButton) },
      "Really delete?",
    );
    const cancel = h(
      "button",
      { type: "button", class: "btn", testid: "cancel-delete", onclick: () => showInitial(true) },
      "Cancel",
    );
    const prompt = h(
      "div",
      {
        class: "confirm",
        role: "group",
        "aria-label": "Confirm deletion",
        onkeydown: (e) => e.key === "Escape" && showInitial(true),
      },
      h("p", { class: "confirm-text" }, "This deletes the post and all its comments."),
      h("div", { class: "actions" }, confirmButton, cancel),
    );
    zone.replaceChildren(prompt, error);
    confirmButton.focus();
  }

  async function doDelete(button) {
    setBusy(button, true, "Deleting…");
    let res;
    try {
      res = await api("DELETE", postPath(post.id));
    } catch {
      setBusy(button, false);
      error.textContent = "The post was not deleted: the server could not be reached.";
      error.hidden = false;
      return;
    }
    setBadge(postBadge, res);
    if (res.status === 204 || res.status === 404) {
      flashMessage =
        res.status === 204 ? `Deleted “${post.title}”.` : `“${post.title}” had already been deleted.`;
      navigate("#/");
      return;
    }
    setBusy(button, false);
    error.textContent = `The post was not deleted: ${detailOf(res.data) || `HTTP ${res.status}`}`;
    error.hidden = false;
  }

  showInitial(false);
  return zone;
}

function commentsSection(post, firstRes, state, updatePostCount, isCurrent) {
  const commentsBadge = badge("comments");
  const listCount = h("span", { class: "count", testid: "comments-total" });
  const list = h("ol", { class: "comment-list", testid: "comment-list" });
  const empty = h("p", { class: "empty", testid: "comments-empty", hidden: true }, "No comments yet. Be the first!");
  const status = h("p", { class: "empty", testid: "comments-status", hidden: true });
  const more = h("button", { type: "button", class: "btn", testid: "load-more-comments", hidden: true }, "Load more comments");
  const paging = { nextPage: null, total: 0 };

  const refreshCounts = () => {
    listCount.textContent = `(${paging.total})`;
    listCount.dataset.count = paging.total;
    empty.hidden = list.children.length > 0;
    more.hidden = !paging.nextPage;
  };

  const absorb = (res, append) => {
    setBadge(commentsBadge, res);
    if (!res.ok || !res.data || !Array.isArray(res.data.results)) {
      status.textContent = `Comments could not be loaded: ${detailOf(res.data) || `HTTP ${res.status}`}`;
      status.hidden = false;
      return;
    }
    status.hidden = true;
    const items = res.data.results.map(commentItem);
    if (append) list.append(...items);
    else list.replaceChildren(...items);
    paging.total = Number(res.data.count) || 0;
    paging.nextPage = res.data.next ? pageFromUrl(res.data.next, null) : null;
    refreshCounts();
  };

  more.addEventListener("click", async () => {
    if (!paging.nextPage) return;
    setBusy(more, true, "Loading…");
    try {
      const res = await api("GET", `${postPath(post.id)}comments/?page=${paging.nextPage}&page_size=${COMMENT_PAGE_SIZE}`);
      if (isCurrent()) absorb(res, true);
    } catch {
      /* banner already shown */
    } finally {
      setBusy(more, false);
      more.hidden = !paging.nextPage;
    }
  });

  const submit = h("button", { type: "submit", class: "btn btn-primary", testid: "new-comment-submit" }, "Add comment");
  const form = h(
    "form",
    { class: "comment-form", novalidate: true, testid: "new-comment-form", "aria-label": "Add a comment" },
    field({
      id: "new-comment-body",
      name: "body",
      label: "Add a comment",
      control: h("textarea", { rows: 3, required: true }),
    }),
    formErrorSlot("new-comment-form-error"),
    h("div", { class: "actions" }, submit),
  );

  const keys = submissionKeys();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const payload = { body: form.elements.body.value };
    const key = keys.keyFor(payload);
    setBusy(submit, true, "Adding…");
    let res;
    try {
      res = await api("POST", `${postPath(post.id)}comments/`, payload, idempotencyHeader(key));
    } catch {
      setBusy(submit, false);
      showUnsettled(form, "comment", null);
      return;
    }
    setBusy(submit, false);
    setBadge(commentsBadge, res);
    if (res.status === 201 && res.data) {
      keys.settled();
      form.reset();
      // Oldest first: the new comment belongs at the end, which is on screen
      // only when every page is already loaded.
      if (!paging.nextPage) list.append(commentItem(res.data));
      paging.total += 1;
      state.commentCount += 1;
      updatePostCount();
      refreshCounts();
      return;
    }
    if (res.status >= 500) showUnsettled(form, "comment", res);
    else showFormErrors(form, res, `The comment was not saved (HTTP ${res.status}).`);
  });

  const section = h(
    "section",
    { class: "card comments", "aria-labelledby": "comments-heading", testid: "comments-section" },
    h("div", { class: "section-head" }, h("h2", { id: "comments-heading" }, "Comments ", listCount), commentsBadge),
    status,
    list,
    empty,
    h("div", { class: "load-more" }, more),
    form,
  );

  if (firstRes) absorb(firstRes, false);
  else {
    status.textContent = "Comments could not be loaded.";
    status.hidden = false;
  }
  return section;
}

// ---------------------------------------------------------------------------
// Boot

function boot() {
  window.addEventListener("hashchange", render);
  // The skip link must not turn into a route.
  const skip = document.querySelector("[data-skip-link]");
  if (skip) {
    skip.addEventListener("click", (event) => {
      event.preventDefault();
      $main().focus();
    });
  }
  if (!window.location.hash) history.replaceState(null, "", "#/");
  render();
}

boot();
