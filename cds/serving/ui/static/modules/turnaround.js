// Remote-reading turnaround for a hub lead or a member site: per referring site → reading site and priority, how
// many referrals were signed and how many are open, with the median and 90th-percentile hours from referral to
// signature (GET /v1/referrals/turnaround); then the open referrals to and from the caller's site with their age
// (GET /v1/referrals?direction=in|out), each with a link to open the read when the caller may see it.

import { api, loadSession } from "./api.js";
import { clock, h, replace, when } from "./dom.js";
import { t } from "./i18n.js";

const PRIORITIES = ["stat", "urgent", "routine"]; // named by turnaround.priority.<priority>
const RANK = Object.fromEntries(PRIORITIES.map((priority, index) => [priority, index]));

function priorityText(priority) {
  return priority in RANK ? t(`turnaround.priority.${priority}`) : priority;
}
const LIST_LIMIT = 200;
const path = (...parts) => parts.map(encodeURIComponent).join("/");
// Where a read opens, per kind of read: asked only of the lists the caller's roles may read (a read in none of them
// is not the caller's to open, and gets no link).
const OPENERS = [
  { roles: ["radiologist", "admin"], list: `/v1/worklist?state=done&limit=${LIST_LIMIT}`, label: "turnaround.openStudy",
    links: (page) => page.items.filter((item) => item.outcomes.length)
      .map((item) => [item.job_id, `#/viewer/${path(item.job_id, item.outcomes[0].uid)}`]) },
  { roles: ["pathologist", "admin"], list: `/v1/pathology/jobs?limit=${LIST_LIMIT}`, label: "turnaround.openSlide",
    links: (page) => page.items.map((job) => [job.id, `#/pathology/${path(job.id)}`]) },
  { roles: ["cardiologist", "admin"], list: `/v1/ecg/jobs?limit=${LIST_LIMIT}`, label: "turnaround.openEcg",
    links: (page) => page.items.map((job) => [job.id, `#/ecg/${path(job.id)}`]) },
];

/** Hours as the view writes them: "—" for none, "<0.1" for minutes, one decimal below 10, whole hours above. */
export function hoursText(hours) {
  if (hours === null || hours === undefined) return "—";
  if (hours < 0.1) return "<0.1";
  return hours < 10 ? hours.toFixed(1) : String(Math.round(hours));
}

function ageHours(iso, now) {
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : `${iso}Z`; // a time without a zone is UTC
  return Math.max(0, (now - Date.parse(zoned)) / 3_600_000);
}

const route = (item) => `${item.from_site} → ${item.to_site}`;

/** One table body per referring site → reading site: a row per priority, stat first. */
function routeGroup(key, rows) {
  const [from, to] = key.split("\n");
  const byPriority = new Map(rows.map((row) => [row.priority, row]));
  return h("tbody", { dataset: { from, to } },
    h("tr", { class: "route" }, h("th", { scope: "rowgroup", colspan: 5 }, `${from} → ${to}`)),
    PRIORITIES.map((priority) => {
      const row = byPriority.get(priority) ?? { signed: 0, open: 0, median_hours: null, p90_hours: null };
      const none = !row.signed && !row.open;
      return h("tr", { class: none ? "none" : "", dataset: { priority } },
        h("th", { scope: "row" }, priorityText(priority)),
        h("td", { class: "numbers" }, String(row.signed)),
        h("td", { class: "numbers" }, String(row.open)),
        h("td", { class: "numbers" }, hoursText(row.median_hours)),
        h("td", { class: "numbers" }, hoursText(row.p90_hours)));
    }));
}

function turnaroundTable(rows, site) {
  const groups = new Map();
  for (const row of rows) {
    const key = `${row.from_site}\n${row.to_site}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  if (!groups.size) return h("p", { class: "empty", id: "turnaround-empty" }, t("turnaround.noneYet", { site }));
  return h("div", { class: "table-wrap" }, h("table", { id: "turnaround-table", class: "turnaround" },
    h("caption", {}, t("turnaround.caption")),
    h("thead", {}, h("tr", {}, ["priority", "signed", "open", "median", "p90"]
      .map((column) => h("th", { scope: "col" }, t(`turnaround.col.${column}`))))),
    [...groups.keys()].sort().map((key) => routeGroup(key, groups.get(key)))));
}

function referralItem(referral, now, opener) {
  const age = hoursText(ageHours(referral.created_at, now));
  return h("li", { class: "referral-item", dataset: { referral: referral.id, job: referral.job_id,
    priority: referral.priority } },
  h("p", { class: "referral-line" },
    h("span", { class: `badge referral-${referral.priority}` }, priorityText(referral.priority)),
    h("span", { class: "route" }, route(referral)),
    h("span", { class: "age" }, t("turnaround.openFor"),
      h("time", { datetime: referral.created_at,
        title: t("turnaround.referredAt", { time: when(referral.created_at) }) },
        t("turnaround.hours", { hours: age })))),
  referral.question ? h("p", { class: "referral-question" }, referral.question)
    : h("p", { class: "referral-question muted" }, t("turnaround.noQuestion")),
  opener ? h("p", { class: "referral-open" }, h("a", { href: opener.href,
    "aria-label": t("turnaround.openLabel", { open: t(opener.label), route: route(referral) }) }, t(opener.label)))
    : null);
}

function referralList(id, title, referrals, emptyText, now, openers) {
  const open = referrals.filter((r) => r.status === "open")
    .sort((a, b) => (RANK[a.priority] ?? 9) - (RANK[b.priority] ?? 9) || a.created_at.localeCompare(b.created_at));
  return h("section", { class: "referral-list", "aria-labelledby": `${id}-heading` },
    h("h2", { id: `${id}-heading` }, title, " ", h("span", { class: "muted count" }, `(${open.length})`)),
    open.length ? h("ol", { id }, open.map((r) => referralItem(r, now, openers.get(r.job_id))))
      : h("p", { class: "empty", id: `${id}-empty` }, emptyText));
}

/** Job id → {href, label} for the reads the caller's roles may open (lists that fail give no links). */
async function openersFor(session) {
  const found = new Map();
  const wanted = OPENERS.filter((opener) => opener.roles.some((role) => session.roles.includes(role)));
  const pages = await Promise.all(wanted.map((opener) => api(opener.list).catch(() => null)));
  wanted.forEach((opener, index) => {
    if (pages[index] === null) return;
    for (const [job, href] of opener.links(pages[index])) {
      if (!found.has(job)) found.set(job, { href, label: opener.label });
    }
  });
  return found;
}

/** Render the turnaround view into `main`; returns its cleanup. */
export function renderTurnaround(main) {
  let stopped = false;
  const session = loadSession();
  const site = session?.site || t("turnaround.yourSite");
  const status = h("p", { id: "turnaround-status", role: "status", class: "muted" }, t("turnaround.loading"));
  const body = h("div", { class: "turnaround-body" });
  const refresh = h("button", { type: "button", id: "turnaround-refresh", onClick: () => load() },
    t("turnaround.refresh"));

  async function load() {
    refresh.disabled = true;
    try {
      const [times, incoming, outgoing] = await Promise.all([api("/v1/referrals/turnaround"),
        api("/v1/referrals?direction=in"), api("/v1/referrals?direction=out")]);
      const anyOpen = [...incoming, ...outgoing].some((r) => r.status === "open");
      const openers = anyOpen ? await openersFor(session) : new Map();
      if (stopped) return;
      const now = Date.now();
      replace(body,
        h("section", { class: "turnaround-times", "aria-labelledby": "turnaround-times-heading" },
          h("h2", { id: "turnaround-times-heading" }, t("turnaround.perSite")),
          turnaroundTable(times, site)),
        h("div", { class: "referral-lists" },
          referralList("referrals-in", t("turnaround.openTo", { site }), incoming,
            t("turnaround.noneTo", { site }), now, openers),
          referralList("referrals-out", t("turnaround.openFrom", { site }), outgoing,
            t("turnaround.noneFrom", { site }), now, openers)));
      status.className = "muted";
      status.textContent = t("turnaround.updated", { time: clock(new Date()) });
    } catch (error) {
      if (stopped) return;
      status.className = "error";
      status.textContent = t("turnaround.failed", { error: error.message });
    } finally {
      refresh.disabled = false;
    }
  }

  replace(main, h("section", { class: "turnaround-view", "aria-labelledby": "turnaround-heading" },
    h("div", { class: "view-head" },
      h("h1", { id: "turnaround-heading" }, t("turnaround.title")),
      h("div", { class: "toolbar" }, refresh)),
    h("p", { class: "muted intro" }, t("turnaround.intro", { site })),
    status, body));
  load();
  return () => { stopped = true; };
}
