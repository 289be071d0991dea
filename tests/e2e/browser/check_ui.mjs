// Logs into Home Assistant's UI the way a user does (its normal login page), opens pages
// and waits until the given texts are visible, then saves a screenshot of each page.
//
// Input, as JSON in the first argument:
//   {"url", "username", "password", "outDir", "chromium"?, "timeoutMs"?,
//    "pages": [{"name", "path", "expect": [{"text": "..."} | {"regex": "...", "flags"?: "..."}]}]}
// Output on stdout: {"pages": [{"name", "url", "found": [...], "screenshot"}]}.
// Exits 1 with a screenshot of the page it was on when a check fails.
//
// Uses Debian's chromium through playwright-core: no browser download of Playwright's own.
// Playwright's text locators pierce the open shadow roots the frontend is built from.
import { chromium } from "playwright-core";
import path from "node:path";

const spec = JSON.parse(process.argv[2]);
const timeout = spec.timeoutMs ?? 30000;
const browser = await chromium.launch({
  executablePath: spec.chromium ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--headless",
  ],
});

let page;
let step = "login";
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 1400 },  // tall enough for a whole device page
    locale: "en-US",
    timezoneId: "UTC",
  });
  page = await context.newPage();
  page.setDefaultTimeout(timeout);

  // The frontend sends a browser without a session to the login page.
  await page.goto(`${spec.url}/`);
  await page.waitForURL((u) => u.pathname.startsWith("/auth/authorize"));
  await page.locator('input[name="username"]').fill(spec.username);
  const password = page.locator('input[name="password"]');
  await password.fill(spec.password);
  await password.press("Enter");
  // Back in the frontend once it has exchanged the code for its tokens.
  await page.waitForURL(
    (u) => !u.pathname.startsWith("/auth/") && !u.searchParams.has("auth_callback"),
  );

  const results = [];
  for (const check of spec.pages) {
    step = check.name;
    await page.goto(`${spec.url}${check.path}`);
    const found = [];
    for (const want of check.expect) {
      const pattern = want.text ?? new RegExp(want.regex, want.flags ?? "");
      const match = page.getByText(pattern).filter({ visible: true }).first();
      await match.waitFor({ state: "visible" });
      found.push((await match.innerText()).trim());
    }
    // Let the cards finish loading (history graphs) before the picture.
    await page.waitForLoadState("networkidle");
    const screenshot = path.join(spec.outDir, `${check.name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    results.push({ name: check.name, url: page.url(), found, screenshot });
  }
  console.log(JSON.stringify({ pages: results }));
} catch (err) {
  console.error(`check_ui: ${step} failed at ${page?.url()}: ${err.message}`);
  if (page) {
    await page.screenshot({ path: path.join(spec.outDir, `${step}-failed.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
