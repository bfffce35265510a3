// Drives the web console in Debian's chromium against a live stack (started
// by integration-tests/tests/console.rs) and checks that what each page shows
// equals what the API reports, that a task's cancel button cancels it, and
// that the console logs no errors. Screenshots go to $SCREENSHOTS.
//
// Env: INVENTORY_URL (the API's base url), INVENTORY_TOKEN (the bearer token
// the API asks for, entered in the console's token field), PENDING_TASK (a queued task to
// cancel), SCREENSHOTS (a directory), CHROMIUM (the browser, default
// /usr/bin/chromium).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.INVENTORY_URL;
const pending = process.env.PENDING_TASK;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps",
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
page.on("pageerror", (e) => errors.push(`page error: ${e}`));
page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
page.on("response", (r) => { if (r.status() >= 400) errors.push(`http ${r.status()}: ${r.url()}`); });

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
}
const token = process.env.INVENTORY_TOKEN;
async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({ Authorization: `Bearer ${token}` }, opts.headers || {});
  const r = await fetch(base + path, opts);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}
async function value(selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ timeout: 15000 });
  return el.getAttribute("data-value");
}
async function cell(selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ timeout: 15000 });
  return (await el.textContent()).trim().replace(/,/g, "");
}
// Until `fn` holds (the console refreshes every few seconds).
async function eventually(fn, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return true; } catch (_) { /* not yet */ }
    if (Date.now() > end) return false;
    await page.waitForTimeout(250);
  }
}
async function open(hash, ready) {
  await page.goto(`${base}/${hash}`);
  await page.locator(ready).first().waitFor({ timeout: 15000 });
}
async function shot(name) {
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

try {
  // Without the token the API refuses (401) and the console says so; with it
  // entered, every page works (the token stays in session storage).
  await page.goto(`${base}/#/overview`);
  check(await eventually(async () => (await page.textContent("body")).includes("unauthorized")), "no token: the console shows the 401");
  check(errors.length > 0 && errors.every((e) => e.includes("401")), `no token: only 401 answers (${errors.join("; ")})`);
  errors.length = 0;
  await page.fill("#token", token);
  await page.click("#token-form button");
  await page.locator('[data-stat="stream-messages"]').first().waitFor({ timeout: 15000 });
  check(await page.evaluate(() => sessionStorage.getItem("inventory.token")) === token, "token kept in session storage");

  // Overview: the stream and the projection as /api/v1/stats has them.
  await open("#/overview", '[data-stat="stream-messages"]');
  const stats = await api("/api/v1/stats");
  const events = stats.streams.find((s) => s.stream.endsWith("_EVENTS"));
  const tables = stats.projections.find((p) => p.projection === "tables");
  check(Number(await value('[data-stat="stream-messages"]')) === events.messages, `overview: ${events.messages} events in the stream`);
  check(Number(await value('[data-stat="stream-last-seq"]')) === events.last_seq, "overview: last sequence");
  check(Number(await value('[data-stat="checkpoint:tables"]')) === tables.checkpoint, `overview: checkpoint ${tables.checkpoint}`);
  check(Number(await value('[data-stat="lag-messages:tables"]')) === tables.lag_messages, "overview: lag in events");
  check(Number(await value('[data-stat="dead-letters:tables"]')) === tables.dead_letters, "overview: dead letters");
  const consumers = stats.streams.reduce((a, s) => a + s.consumers.length, 0);
  check(await page.locator("[data-consumer]").count() === consumers, `overview: ${consumers} consumers`);
  check(Number(await value('[data-count="failing-scans"]')) === stats.failing_scans.length, "overview: failing scans");
  // Live: a sparkline appears once there are two samples.
  check(await eventually(async () => (await page.locator('[data-spark="lag-messages:tables"] canvas').count()) > 0), "overview: lag sparkline drawn");
  await shot("overview");

  // Tasks: counts by state as /api/v1/tasks lists them; the queued task.
  await open("#/tasks", '[data-task-count="completed"]');
  for (const s of ["pending", "active", "completed", "failed", "dead", "cancelled"]) {
    const listed = (await api(`/api/v1/tasks?state=${s}&limit=1000`)).items.length;
    check(await eventually(async () => Number(await cell(`[data-task-count="${s}"]`)) === listed), `tasks: ${listed} ${s}`);
  }
  check(await page.locator(`[data-task="${pending}"]`).count() === 1, "tasks: the queued task is listed");
  await shot("tasks");

  // A task's page: cancel it with its button.
  await open(`#/tasks/${pending}`, '[data-action="cancel"]');
  check((await page.locator("h1 [data-state]").getAttribute("data-state")) === "pending", "task: pending before");
  await page.click('[data-action="cancel"]');
  check(await eventually(async () => (await page.locator("h1 [data-state]").getAttribute("data-state")) === "cancelled"), "task: the page shows it cancelled");
  check((await api(`/api/v1/tasks/${pending}`)).state === "cancelled", "task: the api says cancelled");
  await shot("task");

  // Schedules.
  await open("#/schedules", "h1");
  const schedules = (await api("/api/v1/schedules")).items;
  await page.waitForTimeout(200);
  check(await page.locator("[data-schedule]").count() === schedules.length, `schedules: ${schedules.length}`);
  await shot("schedules");

  // Inventory: counts by kind equal the lists.
  await open("#/inventory", '[data-kind="aws/vpc"]');
  const vpcs = (await api("/api/v1/aws/vpcs?limit=1000")).items;
  const subnets = (await api("/api/v1/aws/subnets?limit=1000")).items;
  check(Number(await page.locator('[data-kind="aws/vpc"] [data-live]').getAttribute("data-live")) === vpcs.length, `inventory: ${vpcs.length} vpcs`);
  check(Number(await page.locator('[data-kind="aws/subnet"] [data-live]').getAttribute("data-live")) === subnets.length, `inventory: ${subnets.length} subnets`);
  const total = stats.resources.reduce((a, r) => a + r.live, 0);
  check(Number(await value('[data-stat="resources-total"]')) === total, `inventory: ${total} resources`);
  await shot("inventory");

  // A kind's list, then a resource with its fields, raw payload, links and history.
  await page.click('[data-kind="aws/vpc"] a');
  check(Number(await value('[data-count="resources"]')) === vpcs.length, "inventory: the vpc list has every vpc");
  const tagged = process.env.UPDATED_VPC;
  await open(`#/resource/aws/vpcs/${tagged}`, "[data-raw]");
  const raw = JSON.parse(await page.locator("[data-raw]").textContent());
  check(raw.vpcId === tagged, "resource: raw payload");
  const history = (await api(`/api/v1/aws/vpcs/${tagged}/history`)).items;
  check(Number(await value('[data-count="versions"]')) === history.length && history.length >= 2, `resource: ${history.length} versions`);
  check(await eventually(async () => (await page.locator('[data-link="subnets"] a').count()) >= 1), "resource: its subnets linked");
  await page.locator("[data-version] button").first().click();
  check(await eventually(async () => (await page.locator("[data-diff] table tbody tr").count()) >= 1), "resource: the last change's diff");
  await shot("resource");

  // The change feed.
  await open("#/changes?since=0", '[data-count="changes"]');
  let feed = 0;
  for (let since = "0"; ;) {
    const page = await api(`/api/v1/changes?since=${since}&limit=1000`);
    feed += page.items.length;
    since = page.next;
    if (page.items.length < 1000) break;
  }
  check(await eventually(async () => Number(await value('[data-count="changes"]')) === feed), `changes: all ${feed} changes`);
  await shot("changes");
} catch (e) {
  failures.push(`error: ${e.stack || e}`);
  console.log(`FAIL ${e.stack || e}`);
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
}

check(errors.length === 0, `no console errors${errors.length ? ": " + errors.join("; ") : ""}`);
await browser.close();
if (failures.length) {
  console.log(`\n${failures.length} failed:\n${failures.join("\n")}`);
  process.exit(1);
}
console.log("console ok");
