// Drives a real (Debian) chromium through a federated sign-in: Tessera's sign-in page, the
// button of an upstream identity provider, that provider's own login page (node-oidc-provider's
// interaction form, or the pysaml2 IdP's, whose Response form posts itself back to Tessera's
// ACS cross-site), and back through Tessera to the relying party.
// Usage: node federation.mjs '{"authorize_url", "button", "login_field", "username", "password",
//   "redirect_prefix", "timeout_ms"?}'. Prints exactly one line of JSON on stdout
//   ({"final_url", "pages"} or {"error", "url", "html"}); exit status 0 on success, 1 on failure.
import { chromium } from 'playwright-core';

let browser = null;
let page = null;
const consoleErrors = [];

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function parseArgs() {
  const a = JSON.parse(process.argv[2] ?? 'null');
  if (a === null || typeof a !== 'object') throw new Error('usage: node federation.mjs \'<json>\'');
  for (const k of ['authorize_url', 'button', 'login_field', 'username', 'password', 'redirect_prefix']) {
    if (typeof a[k] !== 'string' || a[k] === '') throw new Error(`"${k}" must be a non-empty string`);
  }
  return { ...a, timeout: a.timeout_ms ?? 20000 };
}

async function run(args) {
  const ports = [args.authorize_url].map((u) => new URL(u).port).filter((p) => p !== '');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(ports.length ? [`--explicitly-allowed-ports=${ports.join(',')}`] : [])],
    headless: true,
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(args.timeout);
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  // The relying party's redirect is the end: seen as a main-frame navigation request (the RP
  // itself is not reachable; the code is in the URL).
  let finalUrl = null;
  const reached = new Promise((resolve) => {
    page.on('request', (req) => {
      let main = false;
      try { main = req.isNavigationRequest() && req.frame() === page.mainFrame(); } catch { /* worker */ }
      if (main && finalUrl === null && req.url().startsWith(args.redirect_prefix)) {
        finalUrl = req.url();
        resolve(finalUrl);
      }
    });
  });
  const pages = [];
  await page.goto(args.authorize_url);
  pages.push(await page.title());
  await page.getByRole('button', { name: args.button }).click();
  // The upstream's own login form.
  const field = page.locator(`input[name="${args.login_field}"]`);
  await field.waitFor({ state: 'visible' });
  pages.push(new URL(page.url()).host);
  await field.fill(args.username);
  await page.locator('input[name="password"]').fill(args.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const url = await Promise.race([
    reached,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no redirect to the relying party')), args.timeout)),
  ]);
  return { final_url: url, pages, console_errors: consoleErrors };
}

let args;
try {
  args = parseArgs();
  const out = await run(args);
  emit(out);
  await browser?.close();
  process.exit(0);
} catch (err) {
  let url = null;
  let html = null;
  try { url = page?.url() ?? null; html = page ? (await page.content()).slice(0, 2000) : null; } catch { /* gone */ }
  emit({ error: String(err?.message ?? err).replace(/\u001b\[[0-9;]*m/g, ''), url, html, console_errors: consoleErrors });
  await browser?.close().catch(() => {});
  process.exit(1);
}
