// The front door in a real browser: Debian's headless Chromium, driven by Playwright's
// playwright-core, through the cluster example's nginx.
//
// Loads `/` signed out (health shown, the cluster view hidden, a link to /login), refuses a
// wrong password on `/login`, logs in as the admin and lands on `/`, waits for the page to
// list every instance, SIGKILLs one of them and waits for the page to stop listing it, with
// no refresh failing on the way (nginx moves the page's requests to the survivors). Any
// error the page raises, and any Content-Security-Policy violation, fails the check.
//
// Prints one line per check and `N passed, 0 failed`; on the first failure, prints it and
// `N passed, 1 failed` and exits 1.
//
// Usage: node front_door.mjs URL ADMIN_PASSWORD INSTANCES KILL_PID KILL_INSTANCE_ID
// (run by scripts/cluster/check.sh; CHROMIUM names the browser, default /usr/bin/chromium).

import { chromium } from "playwright-core";

const [url, password, instancesArg, killPidArg, killId] = process.argv.slice(2);
if (!killId) {
  console.error("usage: node front_door.mjs URL ADMIN_PASSWORD INSTANCES KILL_PID KILL_INSTANCE_ID");
  process.exit(2);
}
const instances = Number(instancesArg);
// The example's peer timeout is 5 s and the page refreshes every 2 s.
const GONE_WITHIN_MS = 20_000;
const STEP_TIMEOUT_MS = 15_000;

let passed = 0;
const problems = [];
let browser;

async function check(description, fn) {
  try {
    const detail = await fn();
    if (problems.length) throw new Error(`the page reported: ${problems.join(" | ")}`);
    passed += 1;
    console.log(`ok   ${description}${detail ? ` (${detail})` : ""}`);
  } catch (error) {
    console.log(`FAIL ${description}: ${error.message}`);
    console.log(`${passed} passed, 1 failed`);
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}

async function rowIds(page) {
  return page.$$eval("#peers tr", (rows) => rows.map((row) => row.dataset.instance));
}

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  timeout: 30_000,
});
const context = await browser.newContext();
const page = await context.newPage();
page.setDefaultTimeout(STEP_TIMEOUT_MS);
page.on("pageerror", (error) => problems.push(`uncaught ${error.message}`));
page.on("console", (message) => {
  const text = message.text();
  if (/Content Security Policy|Refused to/i.test(text)) problems.push(text);
});

await check("/ signed out shows the health, hides the cluster and links to /login", async () => {
  const response = await page.goto(`${url}/`);
  if (response.status() !== 200) throw new Error(`GET / answered ${response.status()}`);
  await page.waitForFunction(() => document.getElementById("checked").textContent !== "when this page was served");
  const database = await page.textContent("#database");
  if (database !== "ok") throw new Error(`database shows ${database}`);
  const live = await page.textContent("#live");
  if (live !== "ok") throw new Error(`live shows ${live}`);
  if (await page.isVisible("#cluster")) throw new Error("the cluster view is shown to an anonymous visitor");
  if (!(await page.isVisible("#signed-out a[href='/login']"))) throw new Error("no visible link to /login");
  return `database ${database}, live ${live}`;
});

await check("/login refuses a wrong password with Grafana's message", async () => {
  await page.goto(`${url}/login`);
  await page.fill("#user", "admin");
  await page.fill("#password", `${password}-wrong`);
  await page.click("#submit");
  await page.waitForFunction(() => document.getElementById("message").textContent !== "");
  const message = await page.textContent("#message");
  if (message !== "Invalid username or password") throw new Error(`the form says ${JSON.stringify(message)}`);
  if (new URL(page.url()).pathname !== "/login") throw new Error(`moved to ${page.url()}`);
  return message;
});

await check("/login with the admin's password lands on /, signed in", async () => {
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${url}/`), page.click("#submit")]);
  const cookies = await context.cookies(url);
  if (!cookies.some((cookie) => cookie.name === "grafana_session" && cookie.httpOnly)) {
    throw new Error(`no HttpOnly grafana_session cookie: ${cookies.map((c) => c.name).join(", ")}`);
  }
  await page.waitForSelector("#who a[href='/logout']");
  return (await page.textContent("#who")).trim();
});

let ids = [];
await check(`/ lists the ${instances} instances of the cluster`, async () => {
  await page.waitForFunction((n) => document.querySelectorAll("#peers tr").length === n, instances);
  ids = await rowIds(page);
  if (!ids.includes(killId)) throw new Error(`${killId} is not among ${ids.join(", ")}`);
  if (await page.isVisible("#signed-out")) throw new Error("the signed-out notice is still shown");
  return ids.join(", ");
});

await check(`after a SIGKILL of ${killId}, / stops listing it within ${GONE_WITHIN_MS / 1000} s`, async () => {
  process.kill(Number(killPidArg), "SIGKILL");
  const started = Date.now();
  await page.waitForFunction(
    ([gone, n]) => {
      const rows = [...document.querySelectorAll("#peers tr")].map((row) => row.dataset.instance);
      return rows.length === n && !rows.includes(gone);
    },
    [killId, instances - 1],
    { timeout: GONE_WITHIN_MS, polling: 200 },
  );
  const left = await rowIds(page);
  if (!ids.filter((id) => id !== killId).every((id) => left.includes(id))) {
    throw new Error(`left ${left.join(", ")} of ${ids.join(", ")}`);
  }
  return `gone after ${((Date.now() - started) / 1000).toFixed(1)} s; listed ${left.join(", ")}`;
});

await check("no refresh failed meanwhile, and the page keeps refreshing", async () => {
  const before = await page.textContent("#checked");
  await page.waitForFunction((previous) => document.getElementById("checked").textContent !== previous, before);
  if (await page.isVisible("#error")) throw new Error(await page.textContent("#error"));
  const database = await page.textContent("#database");
  if (database !== "ok") throw new Error(`database shows ${database}`);
  return `database ${database}`;
});

await browser.close();
console.log(`${passed} passed, 0 failed`);
