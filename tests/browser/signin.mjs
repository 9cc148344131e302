// Drives a real (Debian) chromium through Tessera's browser sign-in: login page filled with the
// keyboard only, optional consent page, then the redirect back to the relying party.
// Usage: node signin.mjs '<json>'  (contract in README.md). Prints exactly one line of JSON on
// stdout; exit status 0 on success, 1 on any failure.
import { chromium } from 'playwright-core';

const MAX_TABS = 10;

let browser = null;
let page = null;
let emitted = false;
const consoleErrors = []; // e.g. CSP violations, which otherwise fail silently

// Exactly one line of JSON, ever.
function emit(obj) {
  if (emitted) return;
  emitted = true;
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function failureReport(err) {
  let url = null;
  let html = null;
  if (page) {
    try { url = page.url(); } catch { /* page gone */ }
    try { html = (await page.content()).slice(0, 2000); } catch { /* navigating or closed */ }
  }
  // Playwright messages carry ANSI colour codes in their call logs.
  let message = (err instanceof Error ? err.message : String(err)).replace(/\u001b\[[0-9;]*m/g, '');
  if (consoleErrors.length) message += `\nbrowser console errors:\n${consoleErrors.slice(-5).join('\n')}`;
  return { error: message, url, html };
}

function parseArgs() {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: node signin.mjs \'<json>\'');
  let a;
  try { a = JSON.parse(raw); } catch (e) { throw new Error(`argument is not JSON: ${e.message}`); }
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('argument must be a JSON object');
  const str = (k) => {
    if (typeof a[k] !== 'string' || a[k] === '') throw new Error(`"${k}" must be a non-empty string`);
    return a[k];
  };
  const optPath = (k) => {
    if (a[k] === undefined || a[k] === null) return null;
    return str(k);
  };
  const expectNoLogin = a.expect_no_login === true;
  const consent = a.consent === undefined && expectNoLogin ? 'none' : a.consent;
  if (!['allow', 'deny', 'none'].includes(consent)) throw new Error('"consent" must be "allow", "deny" or "none"');
  const timeout = a.timeout_ms === undefined ? 15000 : a.timeout_ms;
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error('"timeout_ms" must be a positive number');
  return {
    authorizeUrl: str('authorize_url'),
    redirectPrefix: str('redirect_prefix'),
    username: expectNoLogin ? null : str('username'),
    password: expectNoLogin ? null : (typeof a.password === 'string' ? a.password : str('password')),
    consent,
    timeout,
    expectNoLogin,
    device: a.device === true,
    storageStateIn: optPath('storage_state_in'),
    storageStateOut: optPath('storage_state_out'),
  };
}

const isFocused = (locator) => locator.evaluate((el) => el === document.activeElement);

async function fillLogin(page, response, args) {
  if (!response) throw new Error('no main response for the login page');
  const headers = await response.allHeaders();
  const csp = headers['content-security-policy'] ?? null;

  const h1 = page.locator('h1');
  if ((await h1.count()) === 0) throw new Error('login page: no <h1>');
  const title = (await h1.first().innerText()).trim();

  const username = page.getByLabel('Username');
  const password = page.getByLabel('Password');
  const submit = page.getByRole('button', { name: 'Sign in', exact: true });
  await username.waitFor({ state: 'visible' });
  await password.waitFor({ state: 'visible' });
  await submit.waitFor({ state: 'visible' });
  const usernameAutocomplete = await username.getAttribute('autocomplete');
  const passwordAutocomplete = await password.getAttribute('autocomplete');

  // Keyboard only from here on.
  let tabs = 0;
  while (!(await isFocused(username))) {
    if (tabs === MAX_TABS) throw new Error(`login page: username input not focused after ${MAX_TABS} Tab presses`);
    await page.keyboard.press('Tab');
    tabs += 1;
  }
  await page.keyboard.type(args.username);
  await page.keyboard.press('Tab');
  if (!(await isFocused(password))) throw new Error('login page: Tab from the username input did not reach the password input');
  await page.keyboard.type(args.password);
  await page.keyboard.press('Enter');

  return {
    title,
    username_autocomplete: usernameAutocomplete,
    password_autocomplete: passwordAutocomplete,
    csp,
  };
}

async function answerConsent(page, args) {
  const items = page.locator('#scopes li');
  try {
    await items.first().waitFor({ state: 'visible' });
  } catch (e) {
    throw new Error(`consent page: no <li> inside #scopes (${e.message.split('\n')[0]})`);
  }
  const scopes = (await items.allInnerTexts()).map((s) => s.trim());
  const name = args.consent === 'allow' ? 'Allow' : 'Deny';
  await page.getByRole('button', { name }).click();
  return scopes;
}

// Chromium refuses "unsafe" ports (e.g. 9, a handy never-listening RP port) with ERR_UNSAFE_PORT
// before any request is made; allow the ports of the two URLs we were given.
function explicitlyAllowedPorts(args) {
  const ports = [args.authorizeUrl, args.redirectPrefix].flatMap((s) => {
    try { return [new URL(s).port].filter((p) => p !== ''); } catch { return []; }
  });
  return ports.length ? [`--explicitly-allowed-ports=${[...new Set(ports)].join(',')}`] : [];
}

// Resolves with the URL of the first main-frame navigation to redirect_prefix. page.route does
// not see server redirects (documented Playwright limitation), so a 302/303 to an unreachable RP
// ends on chrome-error://chromewebdata/ and page.waitForURL would never match; the navigation
// request itself is what proves the redirect.
function watchRedirect(page, prefix) {
  const seen = { url: null };
  seen.promise = new Promise((resolve) => {
    page.on('request', (req) => {
      let main = false;
      try { main = req.isNavigationRequest() && req.frame() === page.mainFrame(); } catch { /* worker */ }
      if (main && seen.url === null && req.url().startsWith(prefix)) {
        seen.url = req.url();
        resolve(seen.url);
      }
    });
  });
  return seen;
}

async function waitForRedirect(redirect, timeout, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no navigation to redirect_prefix within ${timeout} ms`)), timeout);
  });
  try {
    return await Promise.race([redirect.promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function run(args) {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', ...explicitlyAllowedPorts(args)],
    headless: true,
    timeout: Math.max(args.timeout, 60000),
  });
  const context = await browser.newContext(args.storageStateIn ? { storageState: args.storageStateIn } : {});
  context.setDefaultTimeout(args.timeout);
  context.setDefaultNavigationTimeout(args.timeout);
  // Stand in for the relying party where Playwright can intercept (a direct navigation there);
  // a predicate rather than the glob `prefix + '**'` so `?`, `{`, `[` in the prefix are literal.
  await context.route((u) => u.href.startsWith(args.redirectPrefix),
    (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' }));
  page = await context.newPage();
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const redirect = watchRedirect(page, args.redirectPrefix);

  let response = null;
  try {
    response = await page.goto(args.authorizeUrl);
  } catch (e) {
    // Going straight to an unreachable RP fails the navigation; that is fine if we saw it.
    if (redirect.url === null) throw e;
  }
  // RFC 8628: the device page comes first, its code filled in from verification_uri_complete;
  // the user confirms it.
  if (args.device) {
    const code = page.getByLabel('Code');
    await code.waitFor({ state: 'visible' });
    if (!(await code.inputValue())) throw new Error('device page: the code is not filled in');
    [response] = await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Continue', exact: true }).click(),
    ]);
  }
  let login = null;
  if (!args.expectNoLogin) {
    if (redirect.url !== null) {
      throw new Error(`expected a login page but the browser went straight to ${redirect.url}`);
    }
    login = await fillLogin(page, response, args);
  }
  const consentScopes = args.consent === 'none' ? [] : await answerConsent(page, args);
  const finalUrl = await waitForRedirect(redirect, args.timeout,
    args.expectNoLogin ? 'expected to go straight to the redirect (SSO)' : 'did not reach the redirect');
  if (args.storageStateOut) await context.storageState({ path: args.storageStateOut });
  return { final_url: finalUrl, login, consent_scopes: consentScopes };
}

let code = 0;
try {
  const args = parseArgs();
  // Backstop against a wedged browser: the Rust test must never hang on us.
  setTimeout(() => {
    if (!emitted) code = 1;
    emit({ error: 'watchdog: signin.mjs took too long', url: null, html: null });
    process.exit(code);
  }, Math.max(4 * args.timeout, 90000)).unref();
  emit(await run(args));
} catch (err) {
  emit(await failureReport(err));
  code = 1;
} finally {
  if (browser) {
    try { await browser.close(); } catch { /* already gone */ }
  }
}
process.exit(code);
