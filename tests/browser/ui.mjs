// End-to-end test of the lvs-director admin UI in Debian's headless Chromium, driven
// by playwright-core. Run by tests/browser.rs against a fresh `lvs-director up`:
//
//   node tests/browser/ui.mjs --base http://127.0.0.1:PORT --user admin \
//        --password-env LVS_DIRECTOR_PASSWORD --lvs-cf DATA/lvs.cf --screenshots DIR
//
// (`--password PW` works too.) It logs in, creates the virtual server `web` with two
// real servers and a send/expect check through the forms, checks a validation error,
// applies, reads lvs.cf back from disk, and looks at the monitoring and history pages,
// saving a full-page PNG of each main page into DIR. Any failed expectation exits 1
// with a message saying what was expected, on which page.

import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    base: { type: "string" },
    user: { type: "string", default: "admin" },
    password: { type: "string" },
    "password-env": { type: "string" },
    "lvs-cf": { type: "string" },
    screenshots: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
  },
});
const password =
  opts.password ?? (opts["password-env"] ? process.env[opts["password-env"]] : undefined);
for (const [name, v] of [
  ["--base", opts.base],
  ["--password or --password-env", password],
  ["--lvs-cf", opts["lvs-cf"]],
  ["--screenshots", opts.screenshots],
]) {
  if (!v) {
    console.error(`ui.mjs: ${name} is required`);
    process.exit(2);
  }
}
const base = opts.base.replace(/\/+$/, "");
const shots = opts.screenshots;
mkdirSync(shots, { recursive: true });

let playwright;
try {
  playwright = await import("playwright-core");
} catch (e) {
  console.error(
    `ui.mjs: cannot load playwright-core (${e.message}); run scripts/test.sh, or npm ci --prefix tests/browser`,
  );
  process.exit(2);
}

class Failure extends Error {}
function expect(cond, what) {
  if (!cond) {
    throw new Failure(what);
  }
}
const step = (what) => console.log(`ok - ${what}`);

const userDataDir = mkdtempSync(join(tmpdir(), "lvs-director-chromium-"));
// As root Chromium needs --no-sandbox; the rest keep it off the (closed) network.
const context = await playwright.chromium.launchPersistentContext(userDataDir, {
  executablePath: opts.chromium,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(15000);

// Script errors and failed asset loads are failures too (a CSP that blocks app.js,
// say); collected here and checked at the end.
const problems = [];
page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
page.on("console", (m) => {
  // A refused form answers 422 on purpose: failed loads are checked by status below.
  if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
    problems.push(`console error on ${page.url()}: ${m.text()}`);
  }
});
page.on("response", (r) => {
  const expected = r.status() === 422 && r.request().method() === "POST";
  if (r.status() >= 400 && !expected) {
    problems.push(`${r.url()} answered ${r.status()}`);
  }
});
// Confirmation dialogs (data-confirm) are accepted.
page.on("dialog", (d) => d.accept());

const path = () => new URL(page.url()).pathname;

async function shot(name) {
  // No focus ring of the last field typed in.
  await page.evaluate(() => document.activeElement?.blur());
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  step(`screenshot ${name}.png`);
}

// The text of the flash message the last redirect carried.
async function flash() {
  const f = page.locator("main p.flash[role=status]");
  return (await f.count()) ? (await f.first().innerText()).trim() : "";
}

async function expectFlash(kind, fragment, where) {
  const f = page.locator(`main p.flash.${kind}[role=status]`);
  expect(
    (await f.count()) > 0,
    `${where}: expected a "${kind}" flash message containing "${fragment}", got ${JSON.stringify(await flash())} (errors on the page: ${JSON.stringify(await formErrors())})`,
  );
  const text = await f.first().innerText();
  expect(
    text.includes(fragment),
    `${where}: expected the flash message to contain "${fragment}", got "${text.trim()}"`,
  );
  return text.trim();
}

async function formErrors() {
  const e = page.locator("#form-errors li, .field .error");
  return (await e.allInnerTexts()).map((t) => t.trim());
}

async function nav(label, expectPath) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: label }).click();
  await page.waitForLoadState("load");
  expect(
    path() === expectPath,
    `clicking "${label}" in the main navigation: expected ${expectPath}, landed on ${page.url()}`,
  );
}

async function tab(label, pathPattern) {
  await page.getByRole("navigation", { name: "Virtual server panels" }).getByRole("link", { name: label, exact: true }).click();
  await page.waitForLoadState("load");
  expect(
    pathPattern.test(path()),
    `clicking the "${label}" panel: expected a page matching ${pathPattern}, landed on ${page.url()}`,
  );
}

async function accept(where) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.locator("form.card.form").getByRole("button", { name: "Accept", exact: true }).click(),
  ]);
  const errors = await formErrors();
  expect(errors.length === 0, `${where}: the form was refused: ${errors.join("; ")}`);
}

async function addRealServer({ name, address, weight, port }) {
  await page.getByRole("link", { name: "Add real server" }).click();
  await page.waitForLoadState("load");
  expect(/^\/virtual\/\d+\/real\/new$/.test(path()), `"Add real server" led to ${page.url()}`);
  await page.locator("#f-name").fill(name);
  await page.locator("#f-active").selectOption("1");
  await page.locator("#f-address").fill(address);
  if (port !== undefined) {
    await page.locator("#f-port").fill(port);
  }
  await page.locator("#f-weight").fill(weight);
}

let failed = false;
try {
  // ---- login ----
  await page.goto(`${base}/control`);
  expect(path() === "/login", `an anonymous visit to /control should land on /login, got ${page.url()}`);
  await shot("login");
  await page.getByLabel("User name").fill(opts.user);
  await page.getByLabel("Password").fill(password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.getByRole("button", { name: "Log in" }).click(),
  ]);
  expect(
    path() === "/control",
    `logging in as ${opts.user} should lead to /control, got ${page.url()}: ${await page.locator("#login-error").allInnerTexts()}`,
  );
  expect(
    (await page.locator("header .who").innerText()).includes(opts.user),
    "the header should name the logged-in user",
  );
  step(`logged in as ${opts.user}`);

  // ---- VIRTUAL SERVER ----
  await nav("Virtual servers", "/virtual");
  await page.getByRole("link", { name: "Add virtual server" }).click();
  await page.waitForLoadState("load");
  expect(path() === "/virtual/new", `"Add virtual server" led to ${page.url()}`);
  await page.locator("#f-name").fill("web");
  await page.locator("#f-active").selectOption("1");
  await page.locator("#f-address").fill("192.0.2.80");
  await page.locator("#f-address__device").fill("eth0:1");
  await page.locator("#f-port").fill("80");
  await page.locator("#f-protocol").selectOption("tcp");
  await page.locator("#f-scheduler").selectOption("wlc");
  await shot("virtual-server-form");
  await accept("VIRTUAL SERVER form");
  await expectFlash("ok", "Virtual server web created", "after accepting the VIRTUAL SERVER form");
  const realList = path();
  expect(/^\/virtual\/\d+\/real$/.test(realList), `creating a virtual server should lead to its REAL SERVER panel, got ${page.url()}`);
  const vsPath = realList.replace(/\/real$/, "");
  step(`virtual server web created (${vsPath})`);

  // ---- REAL SERVER ----
  for (const rs of [
    { name: "rs1", address: "10.0.0.11", weight: "1" },
    { name: "rs2", address: "10.0.0.12", weight: "2" },
  ]) {
    await addRealServer(rs);
    await accept(`REAL SERVER form (${rs.name})`);
    await expectFlash("ok", `Real server ${rs.name} added to web`, `after adding ${rs.name}`);
    expect(path() === realList, `adding ${rs.name} should lead back to ${realList}, got ${page.url()}`);
    const row = page.locator("table.list tbody tr", { hasText: rs.name });
    expect((await row.count()) === 1, `the real server list should show ${rs.name}`);
    const cells = (await row.locator("td").allInnerTexts()).map((t) => t.trim());
    expect(
      cells.includes(rs.address) && cells[4] === rs.weight,
      `the row of ${rs.name} should show ${rs.address} and weight ${rs.weight}, shows ${JSON.stringify(cells)}`,
    );
    step(`real server ${rs.name} added`);
  }

  // A refused form: the error sits next to the field and what was typed stays.
  await addRealServer({ name: "rs3", address: "10.0.0.13", weight: "1", port: "99999999" });
  await page.locator("form.card.form").getByRole("button", { name: "Accept", exact: true }).click();
  await page.waitForLoadState("load");
  const portField = page.locator(".field", { has: page.locator("#f-port") });
  expect(
    (await portField.getAttribute("class")).split(/\s+/).includes("invalid"),
    `a real server with port 99999999 should mark the Port field invalid; errors shown: ${JSON.stringify(await formErrors())}`,
  );
  const portError = page.locator("#e-port");
  expect((await portError.count()) === 1 && (await portError.isVisible()), "the Port field should show its error message");
  expect(
    (await page.locator("#f-port").getAttribute("aria-invalid")) === "true" &&
      ((await page.locator("#f-port").getAttribute("aria-describedby")) || "").includes("e-port"),
    "the Port input should be aria-invalid and described by its error",
  );
  const portValue = await page.locator("#f-port").inputValue();
  expect(portValue === "99999999", `the refused form should keep the typed port, shows "${portValue}"`);
  for (const [id, typed] of [["#f-name", "rs3"], ["#f-address", "10.0.0.13"], ["#f-weight", "1"]]) {
    const v = await page.locator(id).inputValue();
    expect(v === typed, `the refused form should keep ${id} = "${typed}", shows "${v}"`);
  }
  step(`port 99999999 refused: "${(await portError.innerText()).trim()}"`);
  await shot("validation-error");
  await page.locator("form.card.form").getByRole("link", { name: "Cancel" }).click();
  await page.waitForLoadState("load");
  expect(path() === realList, `Cancel should lead back to ${realList}, got ${page.url()}`);
  expect(
    (await page.locator("table.list tbody tr", { hasText: "rs3" }).count()) === 0,
    "the refused real server rs3 must not be stored",
  );
  await shot("real-servers");

  // ---- MONITORING SCRIPTS ----
  await tab("Monitoring scripts", /^\/virtual\/\d+\/scripts$/);
  await page.locator("#f-send").fill("GET / HTTP/1.0\\r\\n\\r\\n");
  await page.locator("#f-expect").fill("HTTP");
  await accept("MONITORING SCRIPTS form");
  await expectFlash("ok", "Monitoring scripts of web saved", "after saving the monitoring scripts");
  expect(
    (await page.locator("#f-expect").inputValue()) === "HTTP",
    "the MONITORING SCRIPTS panel should show the saved expect string",
  );
  await shot("monitoring-scripts");
  step("send/expect saved");

  // The VIRTUAL SERVER panel shows what was stored.
  await tab("Virtual server", /^\/virtual\/\d+$/);
  for (const [id, want] of [
    ["#f-name", "web"],
    ["#f-address", "192.0.2.80"],
    ["#f-address__device", "eth0:1"],
    ["#f-port", "80"],
    ["#f-scheduler", "wlc"],
    ["#f-protocol", "tcp"],
    ["#f-active", "1"],
  ]) {
    const v = await page.locator(id).inputValue();
    expect(v === want, `the VIRTUAL SERVER panel of web should show ${id} = "${want}", shows "${v}"`);
  }

  await nav("Virtual servers", "/virtual");
  const vsRow = page.locator("table.list tbody tr", { hasText: "web" });
  expect((await vsRow.count()) === 1, "the virtual server list should show web");
  const vsCells = (await vsRow.locator("td").allInnerTexts()).map((t) => t.trim());
  for (const want of ["192.0.2.80", "80", "wlc", "2 of 2 active"]) {
    expect(vsCells.includes(want), `the list row of web should show "${want}", shows ${JSON.stringify(vsCells)}`);
  }
  await shot("virtual-servers");

  // ---- Apply ----
  expect(
    (await page.locator("header nav .badge", { hasText: "pending" }).count()) === 1,
    "the Apply link should be marked pending before Apply",
  );
  await nav("Apply", "/apply");
  const added = (await page.locator("pre.diff span.add").allInnerTexts()).join("\n");
  for (const want of ["virtual web", "10.0.0.11", "10.0.0.12"]) {
    expect(added.includes(want), `the Apply diff should add "${want}"; added lines:\n${added}`);
  }
  await shot("apply");
  step("the diff shows the new virtual block");
  await page.getByLabel("Comment (for the history)").fill("browser test: web with rs1, rs2");
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load", timeout: 30000 }),
    page.locator("#apply-button").click(),
  ]);
  const applied = await expectFlash("ok", "written to", "after Apply");
  expect(/Revision \d+/.test(applied), `the Apply message should name the revision: "${applied}"`);
  step(`applied: "${applied}"`);
  expect(
    (await page.locator("header nav .badge", { hasText: "pending" }).count()) === 0,
    "after Apply nothing should be pending",
  );

  const file = readFileSync(opts["lvs-cf"], "utf8");
  for (const want of ["virtual web", "10.0.0.11", "10.0.0.12", "192.0.2.80", "weight = 2", "scheduler = wlc", 'expect = "HTTP"']) {
    expect(file.includes(want), `${opts["lvs-cf"]} should contain "${want}"; it reads:\n${file}`);
  }
  step(`${opts["lvs-cf"]} holds virtual web, both servers and weight = 2`);

  // ---- monitoring ----
  await nav("Control / monitoring", "/control");
  const live = await page.locator("#live").innerText();
  const running = (await page.locator("#director-h", { hasText: "Directors" }).count()) === 1;
  if (running) {
    expect(live.includes("Current LVS routing table"), `the monitoring page of a running supervisor should show the routing table:\n${live}`);
  } else {
    expect(
      live.includes("The supervisor is not running or cannot be reached"),
      `the monitoring page should show the supervisor or say it is unavailable:\n${live}`,
    );
    expect(live.includes("Stored virtual servers"), "without a supervisor the monitoring page should show the stored configuration");
  }
  for (const want of ["web", "10.0.0.11", "10.0.0.12"]) {
    expect(live.includes(want), `the monitoring page should list "${want}":\n${live}`);
  }
  await shot("control");
  step(`monitoring page renders (supervisor ${running ? "running" : "unavailable, and the page says so"})`);

  // ---- history ----
  await nav("History", "/history");
  const revision = applied.match(/Revision (\d+)/)[1];
  const histRow = page.locator("table.list tbody tr", { hasText: "browser test: web with rs1, rs2" });
  expect((await histRow.count()) === 1, "History should list the applied revision with its comment");
  const histCells = (await histRow.locator("td").allInnerTexts()).map((t) => t.trim());
  expect(histCells[0] === revision && histCells[3] === opts.user, `the History row should be revision ${revision} by ${opts.user}: ${JSON.stringify(histCells)}`);
  await shot("history");
  step(`History lists revision ${revision}`);

  // ---- cluster (a single director: nothing to sync, and it says so without alarm) ----
  await nav("Cluster", "/cluster");
  // Sync looks at the file in force every second: the Apply above may be newer.
  let cluster = await page.locator("main").innerText();
  for (let i = 0; i < 30 && !cluster.includes("no peer"); i++) {
    await page.waitForTimeout(200);
    await page.reload();
    cluster = await page.locator("main").innerText();
  }
  for (const want of ["configuration sync is off", "no peer", "No peer."]) {
    expect(cluster.includes(want), `the Cluster page of a single director should say "${want}":\n${cluster}`);
  }
  expect(
    (await page.locator("p.banner[role=alert]").count()) === 0,
    "a director without peers should carry no sync warning on its pages",
  );
  await shot("cluster");
  step("Cluster page: a single director, sync off without a warning");

  // ---- the other main pages ----
  await nav("Global settings", "/global");
  expect((await page.locator("form.card.form .field").count()) > 0, "Global settings should show its form");
  await shot("global-settings");
  await nav("Redundancy", "/redundancy");
  expect((await page.locator("form.card.form .field").count()) > 0, "Redundancy should show its form");
  await shot("redundancy");

  expect(problems.length === 0, `the pages reported problems:\n  ${problems.join("\n  ")}`);
  console.log("ui.mjs: all checks passed");
} catch (e) {
  failed = true;
  const where = page.url();
  console.error(`ui.mjs: FAILED on ${where}`);
  console.error(e instanceof Failure ? `  ${e.message}` : e.stack || String(e));
  if (problems.length) {
    console.error(`  page problems seen:\n    ${problems.join("\n    ")}`);
  }
  try {
    await page.screenshot({ path: join(shots, "failure.png"), fullPage: true });
    console.error(`  screenshot of the failing page: ${join(shots, "failure.png")}`);
  } catch {
    // The browser may be gone.
  }
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
