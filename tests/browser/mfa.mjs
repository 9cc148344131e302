// Drives a real (Debian) chromium through Tessera's multi-factor sign-in with Chromium's virtual
// WebAuthn authenticator (DevTools protocol): a passkey set up as a second factor, the same
// passkey alone (passwordless) and after a password, TOTP set up and then verified with codes
// computed here (RFC 6238), a recovery code, and step-up from a password-only application by
// acr_values.
// Usage: node mfa.mjs '<json>'  (contract in README.md). Prints exactly one line of JSON on
// stdout; exit status 0 on success, 1 on any failure.
import { chromium } from 'playwright-core';
import { createHmac } from 'node:crypto';

// The authorize URLs the caller gives, one per scenario, in the order they run.
const SCENARIOS = ['passkey_enrol', 'passwordless', 'passkey_verify', 'totp_enrol', 'totp_verify', 'recovery', 'plain', 'step_up'];

let browser = null;
let page = null; // the page of the running step, for the failure report
let step = null; // the running step's name, for the failure report
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
  if (step) message = `${step}: ${message}`;
  if (consoleErrors.length) message += `\nbrowser console errors:\n${consoleErrors.slice(-5).join('\n')}`;
  return { error: message, step, url, html, console_errors: consoleErrors };
}

function parseArgs() {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('usage: node mfa.mjs \'<json>\'');
  let a;
  try { a = JSON.parse(raw); } catch (e) { throw new Error(`argument is not JSON: ${e.message}`); }
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('argument must be a JSON object');
  const str = (o, k, where = '') => {
    if (typeof o[k] !== 'string' || o[k] === '') throw new Error(`"${where}${k}" must be a non-empty string`);
    return o[k];
  };
  if (a.authorize === null || typeof a.authorize !== 'object') throw new Error('"authorize" must be an object of URLs');
  const authorize = Object.fromEntries(SCENARIOS.map((s) => [s, str(a.authorize, s, 'authorize.')]));
  const timeout = a.timeout_ms === undefined ? 15000 : a.timeout_ms;
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error('"timeout_ms" must be a positive number');
  return {
    authorize,
    redirectPrefix: str(a, 'redirect_prefix'),
    passkeyUser: str(a, 'passkey_user'),
    totpUser: str(a, 'totp_user'),
    password: str(a, 'password'),
    passkeyName: a.passkey_name === undefined ? 'Virtual authenticator' : str(a, 'passkey_name'),
    screenshots: a.screenshots === undefined || a.screenshots === null ? null : str(a, 'screenshots'),
    timeout,
  };
}

// RFC 4648 §6 base32 (the key as shown: upper case, groups of four, no padding).
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out = [];
  let buffer = 0;
  let bits = 0;
  for (const c of clean) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`the key ${JSON.stringify(text)} is not base32`);
    buffer = (buffer << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

// RFC 4226 §5.3 HOTP of counter `counter`, as RFC 6238 uses it: HMAC-SHA-1, six digits.
function hotp(key, counter) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const h = createHmac('sha1', key).update(msg).digest();
  const offset = h[h.length - 1] & 0x0f;
  const bin = ((h[offset] & 0x7f) << 24) | (h[offset + 1] << 16) | (h[offset + 2] << 8) | h[offset + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

const STEP_SECONDS = 30;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The step a code is typed for. An authenticator app shows the code of the current step; the
// server takes one step either side (RFC 6238 §5.2) but never a step at or before the last one
// it accepted. To keep the run short we type the code of the earliest step that is unused and
// still inside that window when the form arrives (a step that slides out of it within `margin`
// seconds is skipped), and wait for the next step only when the window holds no unused step.
// Returns the step, its offset from the current one (-1, 0, 1) and the milliseconds waited.
async function totpStep(lastStep, margin = 5) {
  const start = Date.now();
  for (;;) {
    const t = Date.now() / 1000;
    const now = Math.floor(t / STEP_SECONDS);
    const left = STEP_SECONDS - (t % STEP_SECONDS);
    const step = Math.max(lastStep + 1, left < margin ? now : now - 1);
    if (step <= now + 1) return { step, offset: step - now, waited_ms: Date.now() - start };
    await sleep(left * 1000 + 250);
  }
}

// Chromium refuses "unsafe" ports before any request is made; allow the ports of our URLs.
function explicitlyAllowedPorts(args) {
  const ports = [...Object.values(args.authorize), args.redirectPrefix].flatMap((s) => {
    try { return [new URL(s).port].filter((p) => p !== ''); } catch { return []; }
  });
  return ports.length ? [`--explicitly-allowed-ports=${[...new Set(ports)].join(',')}`] : [];
}

// Resolves with the URL of the first main-frame navigation to redirect_prefix. page.route does
// not see server redirects, so a 303 to an unreachable RP ends on chrome-error://chromewebdata/;
// the navigation request itself is what proves the redirect (as in signin.mjs).
function watchRedirect(p, prefix) {
  const seen = { url: null };
  seen.promise = new Promise((resolve) => {
    p.on('request', (req) => {
      let main = false;
      try { main = req.isNavigationRequest() && req.frame() === p.mainFrame(); } catch { /* worker */ }
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

// A fresh browser context (no cookies) and its page, with console errors collected under the
// scenario's name and every main-frame document response logged for the output.
async function freshPage(args, name) {
  const context = await browser.newContext();
  context.setDefaultTimeout(args.timeout);
  context.setDefaultNavigationTimeout(args.timeout);
  await context.route((u) => u.href.startsWith(args.redirectPrefix),
    (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'ok' }));
  const p = await context.newPage();
  instrument(p, name);
  return { context, page: p };
}

function instrument(p, name) {
  // Chromium fetches /favicon.ico on its own, racing the next navigation; Tessera has none.
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    let where = '';
    try { where = new URL(msg.location().url).pathname; } catch { /* no location */ }
    if (where !== '/favicon.ico') consoleErrors.push(`${name}: ${msg.text()}`);
  });
  p.on('pageerror', (e) => consoleErrors.push(`${name}: ${String(e)}`));
  p.responses = [];
  p.on('response', (r) => {
    let main = false;
    try { main = r.request().isNavigationRequest() && r.frame() === p.mainFrame(); } catch { /* worker */ }
    if (!main) return;
    const u = new URL(r.url());
    p.responses.push({ method: r.request().method(), path: u.pathname, status: r.status(), response: r });
  });
}

// Main-frame navigations of a scenario, as "METHOD /path status".
const navLog = (p) => p.responses.map((r) => `${r.method} ${r.path} ${r.status}`);

// Waits for the page whose <h1> is `title`; returns the text seen.
async function expectHeading(p, title, record) {
  const h = p.getByRole('heading', { level: 1, name: title, exact: true });
  try {
    await h.waitFor({ state: 'visible' });
  } catch (e) {
    let seen = null;
    let alert = null;
    try { seen = (await p.locator('h1').first().innerText({ timeout: 500 })).trim(); } catch { /* none */ }
    try { alert = (await p.getByRole('alert').first().innerText({ timeout: 500 })).trim(); } catch { /* none */ }
    const said = alert ? ` saying ${JSON.stringify(alert)}` : '';
    throw new Error(`expected the page "${title}", saw ${JSON.stringify(seen)}${said} (${e.message.split('\n')[0]})`);
  }
  const text = (await h.innerText()).trim();
  record.push(text);
  return text;
}

async function shot(args, p, name) {
  if (!args.screenshots) return;
  await p.screenshot({ path: `${args.screenshots}/mfa-${name}.png`, fullPage: true });
}

// The login page with the keyboard only: focus the username, type, Tab, type the password, Enter.
async function signInWithPassword(p, username, password) {
  const user = p.getByLabel('Username');
  await user.waitFor({ state: 'visible' });
  await user.focus();
  await p.keyboard.type(username);
  await p.keyboard.press('Tab');
  const onPassword = await p.getByLabel('Password').evaluate((el) => el === document.activeElement);
  if (!onPassword) throw new Error('login page: Tab from the username input did not reach the password input');
  await p.keyboard.type(password);
  await p.keyboard.press('Enter');
}

// Chromium's virtual authenticator on this page's target: a platform authenticator holding
// discoverable credentials that verifies its user and simulates their touch.
async function virtualAuthenticator(p) {
  const cdp = await p.context().newCDPSession(p);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function credentials(auth) {
  return (await auth.cdp.send('WebAuthn.getCredentials', { authenticatorId: auth.authenticatorId })).credentials;
}

const describeCredentials = (list) => list.map((c) => ({
  rp_id: c.rpId,
  is_resident_key: c.isResidentCredential,
  has_user_handle: typeof c.userHandle === 'string' && c.userHandle !== '',
  sign_count: c.signCount,
}));

// Leaves the recovery-codes page after reading its codes.
async function saveRecoveryCodes(p, out) {
  await expectHeading(p, 'Save your recovery codes', out.pages);
  const codes = (await p.locator('#recovery-codes code').allInnerTexts()).map((c) => c.trim());
  await p.getByRole('button', { name: 'I saved them, continue' }).click();
  return codes;
}

// Scenario A: a password, then a passkey as the second factor, the recovery codes, the RP.
async function passkeyEnrol(args, p, auth) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.passkey_enrol);
  await expectHeading(p, /^Sign in to /, out.pages);
  out.login_passkey_button = await p.locator('#passkey-sign-in').count() === 1;
  await signInWithPassword(p, args.passkeyUser, args.password);
  await expectHeading(p, 'Set up a second factor', out.pages);
  const enrol = p.responses[p.responses.length - 1];
  out.enrol = {
    status: enrol?.status ?? null,
    csp: (await enrol?.response.allHeaders())?.['content-security-policy'] ?? null,
    qr_svg: await p.locator('figure.qr svg').count() === 1,
    totp_secret_shown: /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/.test((await p.locator('#totp-secret').innerText()).trim()),
    passkey_form: await p.locator('form[data-webauthn="create"]').count() === 1,
  };
  await shot(args, p, 'enrol');
  await p.locator('#passkey-name').fill(args.passkeyName);
  await p.locator('#passkey-add').click();
  out.recovery_codes = await saveRecoveryCodes(p, out);
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after the recovery codes');
  out.credentials = describeCredentials(await credentials(auth));
  out.navigations = navLog(p);
  return out;
}

// Scenario B: no cookies, only the passkey: "Sign in with a passkey", nothing typed. The
// authenticator starts empty, so the first press fails and the form says so; then the passkey
// is put on it (`credentials`, exported from scenario A's authenticator) and pressed again.
async function passwordless(args, p, auth, credentialsToAdd) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.passwordless);
  await expectHeading(p, /^Sign in to /, out.pages);
  out.passkey_button = (await p.locator('#passkey-sign-in').innerText()).trim();
  await p.locator('#passkey-sign-in').click();
  const status = p.locator('#passkey-sign-in ~ [data-webauthn-status]');
  await status.filter({ hasText: 'not used' }).waitFor({ state: 'visible' });
  out.without_passkey = { status: (await status.innerText()).trim(), url_path: new URL(p.url()).pathname };
  for (const c of credentialsToAdd) {
    await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.authenticatorId, credential: c });
  }
  await shot(args, p, 'login-passkey');
  await p.locator('#passkey-sign-in').click();
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after "Sign in with a passkey"');
  out.credentials = describeCredentials(await credentials(auth));
  out.navigations = navLog(p);
  return out;
}

// Scenario B': no cookies, the password, then the passkey as the second factor ("Use a passkey",
// the ceremony restricted to the user's credentials).
async function passkeyVerify(args, p, auth) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.passkey_verify);
  await expectHeading(p, /^Sign in to /, out.pages);
  await signInWithPassword(p, args.passkeyUser, args.password);
  await expectHeading(p, 'Verify it is you', out.pages);
  out.factor_page = await factorPage(p);
  await p.locator('#passkey-verify').click();
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after "Use a passkey"');
  out.credentials = describeCredentials(await credentials(auth));
  out.navigations = navLog(p);
  return out;
}

// Which ways the "Verify it is you" page offers.
async function factorPage(p) {
  return {
    totp: await p.locator('#code').count() === 1,
    passkey: await p.locator('#passkey-verify').count() === 1,
    // The credentials the passkey form restricts the ceremony to (data-allow, comma-separated).
    allow_credentials: await p.locator('form[data-webauthn="get"]').evaluateAll((forms) =>
      forms.flatMap((f) => (f.dataset.allow || '').split(',').filter(Boolean)).length),
    recovery: await p.locator('details #recovery-code').count() === 1,
  };
}

// Scenario C, first half: a password, then TOTP set up from the key on the page.
async function totpEnrol(args, p, totp) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.totp_enrol);
  await expectHeading(p, /^Sign in to /, out.pages);
  await signInWithPassword(p, args.totpUser, args.password);
  await expectHeading(p, 'Set up a second factor', out.pages);
  const shown = (await p.locator('#totp-secret').innerText()).trim();
  totp.key = base32Decode(shown);
  out.key_bytes = totp.key.length;
  out.otpauth_uri = await p.locator('#totp-uri').getAttribute('href');
  const { step: s, offset, waited_ms: waited } = await totpStep(totp.lastStep);
  totp.enrolCode = hotp(totp.key, s);
  await p.locator('#code').fill(totp.enrolCode);
  await p.getByRole('button', { name: 'Confirm' }).click();
  totp.lastStep = s;
  out.totp = { step_offset: offset, waited_ms: waited };
  out.recovery_codes = await saveRecoveryCodes(p, out);
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after the recovery codes');
  out.navigations = navLog(p);
  return out;
}

// The "Verify it is you" page answered with a TOTP code, typed; records its step in `out`.
async function answerWithTotp(args, p, totp, out) {
  const { step: s, offset, waited_ms: waited } = await totpStep(totp.lastStep);
  await p.locator('#code').focus();
  await p.keyboard.type(hotp(totp.key, s));
  await p.keyboard.press('Enter');
  totp.lastStep = s;
  out.totp = { step_offset: offset, waited_ms: waited };
}

// Scenario C, second half: a new context, the password, then a fresh code. The code used at
// enrolment is typed first: its step is spent, so the page comes back with the error.
async function totpVerify(args, p, totp) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.totp_verify);
  await expectHeading(p, /^Sign in to /, out.pages);
  await signInWithPassword(p, args.totpUser, args.password);
  await expectHeading(p, 'Verify it is you', out.pages);
  out.factor_page = await factorPage(p);
  await shot(args, p, 'verify');
  // A replayed code: 401, the same page, the message.
  const before = p.responses.length;
  await p.locator('#code').fill(totp.enrolCode);
  await p.getByRole('button', { name: 'Verify' }).click();
  const error = p.locator('#factor-error');
  const accepted = await Promise.race([
    error.waitFor({ state: 'visible' }).then(() => false),
    redirect.promise.then(() => true),
  ]);
  if (accepted) throw new Error('the code used at enrolment was accepted again (its step is spent)');
  const replay = p.responses.slice(before).pop();
  out.replayed_code = { status: replay?.status ?? null, error: (await error.innerText()).trim() };
  await expectHeading(p, 'Verify it is you', out.pages);
  await answerWithTotp(args, p, totp, out);
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after a fresh TOTP code');
  out.navigations = navLog(p);
  return out;
}

// Scenario D: a new context, the password, "Use a recovery code".
async function recovery(args, p, code) {
  const out = { pages: [], code };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.recovery);
  await expectHeading(p, /^Sign in to /, out.pages);
  await signInWithPassword(p, args.totpUser, args.password);
  await expectHeading(p, 'Verify it is you', out.pages);
  await p.getByText('Use a recovery code').click();
  await p.locator('#recovery-code').fill(code);
  await p.getByRole('button', { name: 'Use recovery code' }).click();
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after a recovery code');
  out.navigations = navLog(p);
  return out;
}

// Scenario E: the password-only application, then the same one again with acr_values in the
// same browser: only the second factor is asked.
async function plain(args, p) {
  const out = { pages: [] };
  const redirect = watchRedirect(p, args.redirectPrefix);
  await p.goto(args.authorize.plain);
  await expectHeading(p, /^Sign in to /, out.pages);
  await signInWithPassword(p, args.totpUser, args.password);
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after the password');
  out.navigations = navLog(p);
  return out;
}

// Scenario E, second half: the same page, the application asked for the stronger acr.
async function stepUp(args, p, totp) {
  const out = { pages: [] };
  p.responses.length = 0;
  const redirect = watchRedirect(p, args.redirectPrefix);
  try {
    await p.goto(args.authorize.step_up);
  } catch (e) {
    if (redirect.url === null) throw e;
  }
  if (redirect.url !== null) throw new Error(`no second factor asked: went straight to ${redirect.url}`);
  await expectHeading(p, 'Verify it is you', out.pages);
  out.password_field = await p.locator('#password').count() > 0;
  out.username_field = await p.locator('#username').count() > 0;
  await answerWithTotp(args, p, totp, out);
  out.final_url = await waitForRedirect(redirect, args.timeout, 'after the step-up code');
  out.navigations = navLog(p);
  return out;
}

async function run(args) {
  const started = Date.now();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...explicitlyAllowedPorts(args)],
    headless: true,
    timeout: Math.max(args.timeout, 60000),
  });
  const out = {};
  const totp = { key: null, lastStep: -Infinity, enrolCode: null };
  // Runs one scenario in `context` (a fresh one unless given), timing it.
  const scenario = async (name, f, { context = null, keep = false } = {}) => {
    step = name;
    const t0 = Date.now();
    const c = context ?? await freshPage(args, name);
    page = c.page;
    out[name] = await f(page);
    if (!keep) await c.context.close();
    out[name].elapsed_ms = Date.now() - t0;
    return c;
  };

  // A: the passkey is created on this page's virtual authenticator, B and B' get a copy of it
  // (the private key as the DevTools protocol exports it) on a new authenticator in a fresh
  // context, as a passkey synced to another browser would be; B starts with an empty one.
  let auth = null;
  const withAuthenticator = (f, credentialsToAdd = []) => async (p) => {
    auth = await virtualAuthenticator(p);
    for (const credential of credentialsToAdd) {
      await auth.cdp.send('WebAuthn.addCredential', { authenticatorId: auth.authenticatorId, credential });
    }
    const result = await f(p, auth);
    // Read before the context closes: the signature counter moved on.
    auth.credentials = await credentials(auth);
    return result;
  };
  await scenario('passkey_enrol', withAuthenticator((p, a) => passkeyEnrol(args, p, a)));
  const created = auth.credentials;
  if (created.length !== 1) throw new Error(`expected one credential on the authenticator, found ${created.length}`);
  await scenario('passwordless', withAuthenticator((p, a) => passwordless(args, p, a, created)));
  await scenario('passkey_verify', withAuthenticator((p, a) => passkeyVerify(args, p, a), auth.credentials));

  // C, D: TOTP set up, verified, and a recovery code, each in a fresh context.
  await scenario('totp_enrol', (p) => totpEnrol(args, p, totp));
  await scenario('totp_verify', (p) => totpVerify(args, p, totp));
  await scenario('recovery', (p) => recovery(args, p, out.totp_enrol.recovery_codes[0]));

  // E: the password-only application, then step-up in the same context.
  const e = await scenario('plain', (p) => plain(args, p), { keep: true });
  // The step-up runs in a new tab of the same browser context (the same cookies): the first
  // half's tab may still be landing on the unreachable RP's error page (chrome-error://) on a
  // loaded machine, which would cut a navigation in that tab short.
  const tab = await e.context.newPage();
  instrument(tab, 'step_up');
  await scenario('step_up', (p) => stepUp(args, p, totp), { context: { context: e.context, page: tab } });

  step = null;
  out.elapsed_ms = Date.now() - started;
  out.console_errors = consoleErrors;
  return out;
}

let code = 0;
try {
  const args = parseArgs();
  // Backstop against a wedged browser: the Rust test must never hang on us.
  setTimeout(() => {
    if (!emitted) code = 1;
    emit({ error: `watchdog: mfa.mjs took too long (in ${step})`, step, url: null, html: null, console_errors: consoleErrors });
    process.exit(code);
  }, Math.max(8 * args.timeout, 120000)).unref();
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
