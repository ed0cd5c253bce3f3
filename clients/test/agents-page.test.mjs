// The Agents page (/agents) in headless Chromium against a real server: sign-in (also by
// keyboard alone), the directory with its badges' colours and live presence and directory
// updates, the dialogs (checked through the API afterwards), row and bulk actions, the usage
// panel (Monthly Sessions; amber, full, service off), an AGENT's read-only live view, the
// narrow layout, keyboard menus and Tab order, and reconnecting. Every request that does not
// go to 127.0.0.1 is aborted: the page needs nothing from elsewhere. Screenshots land in
// clients/artifacts/. The tests run in order and build on each other's agents.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { launchBrowser } from '../support/browser.mjs';
import { ADMIN_PASSWORD, graphql, login, startServer } from '../support/server.mjs';

const ARTIFACTS = new URL('../artifacts/', import.meta.url);
const PASSWORD = 'agent-password-1';
const CAI_PASSWORD = 'cai-password-2';   // Cai's since the Edit Agent test

let server;
let adminToken;
let browser;
const ids = {};
const queueIds = {};
const blocked = [];

before(async () => {
  server = await startServer();
  adminToken = await login(server.http);
  for (const name of ['Billing', 'VIP', 'Returns']) {
    const data = await graphql(server.http, `mutation($input: CreateQueueInput!) {
      createQueue(input: $input) { queue { id } userErrors { code } } }`, { input: { name } }, adminToken);
    queueIds[name] = data.createQueue.queue.id;
  }
  for (const [displayName, username, queues, email] of [
    ['Ana Lima', 'ana', ['Billing', 'VIP'], 'ana.lima@example.com'],
    ['Ben Ross', 'ben', []],
    ['Cai Wu', 'cai', ['Returns']],
  ]) {
    ids[username] = await createAgent({ displayName, username, email, queueIds: queues.map((q) => queueIds[q]) });
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(blocked, [], 'the page asked for nothing outside 127.0.0.1');
});

async function createAgent(input) {
  const data = await graphql(server.http, `mutation($input: CreateAgentInput!) {
    createAgent(input: $input) { agent { id } userErrors { field code } } }`,
  { input: { password: PASSWORD, ...input } }, adminToken);
  assert.deepEqual(data.createAgent.userErrors, []);
  return data.createAgent.agent.id;
}

/** An agent's `fields` as the admin reads them through the API (null once deleted). */
async function readAgent(id, fields) {
  return (await graphql(server.http, `query($id: ID!) { agent(id: $id) { ${fields} } }`, { id }, adminToken)).agent;
}

/** What signing in as `username` with `password` through the API gives: 'signed in' or the
 *  userError's code (so a refused password is told apart from RATE_LIMITED). */
async function signInResult(username, password) {
  const { login: result } = await graphql(server.http, `mutation($input: LoginInput!) {
    login(input: $input) { token userErrors { code } } }`, { input: { organization: 'demo', username, password } });
  return result.token ? 'signed in' : result.userErrors.map(({ code }) => code).join(' ');
}

/** Polls `check` until it is truthy; fails with `what` after the deadline. */
async function until(check, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A page of a fresh context that can reach 127.0.0.1 only; `token` signs it in. */
async function newPage({ width = 1280, height = 900, token } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  await context.route('**', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    blocked.push(url.href);
    return route.abort();
  });
  if (token) await context.addInitScript((t) => sessionStorage.setItem('agentdesk.token', t), token);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.errors = errors;
  await page.goto(`${server.base}/agents`);
  if (token) await page.getByRole('heading', { name: 'Agent Directory' }).waitFor();
  return page;
}

/** Signs in by keyboard only: the form starts on Organization, Tab moves to the next
 *  field, Enter submits. */
async function signInByKeyboard(page, username, password) {
  const form = page.getByRole('region', { name: 'Sign in' });
  for (const [index, [label, value]] of [['Organization', 'demo'], ['Username', username], ['Password', password]].entries()) {
    if (index) await page.keyboard.press('Tab');
    assert.ok(await focused(form.getByLabel(label, { exact: true })), `${label} has the focus`);
    await page.keyboard.type(value);
  }
  await page.keyboard.press('Enter');
}

async function signIn(page, username, password) {
  await page.getByRole('textbox', { name: 'Organization' }).fill('demo');
  await page.getByRole('textbox', { name: 'Username' }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

const row = (page, name) => page.getByRole('row').filter({ hasText: name });
const shot = (page, name) => page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
const attribute = (locator, name) => locator.getAttribute(name);
const visible = (locator) => locator.isVisible();
const focused = (locator) => locator.evaluate((element) => element === document.activeElement);
const focusedText = (page) => page.evaluate(() => document.activeElement.textContent);
/** The number under "Monthly Sessions" in the Usage Overview. */
const monthlySessions = (page) => page.getByRole('complementary', { name: 'Usage Overview' })
  .getByRole('heading', { name: 'Monthly Sessions' }).locator('xpath=following-sibling::p[1]/span[1]');

/** Hue (0–360°) and HSL saturation (0–1) of a computed colour such as `rgb(23, 128, 61)`. */
function hsl(css) {
  const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((value) => Number(value) / 255);
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const chroma = max - min;
  const saturation = chroma === 0 ? 0 : chroma / (1 - Math.abs(max + min - 1));
  let hue = 0;
  if (chroma) hue = max === r ? ((g - b) / chroma) % 6 : max === g ? (b - r) / chroma + 2 : (r - g) / chroma + 4;
  return { css, hue: (hue * 60 + 360) % 360, saturation };
}
/**
 * A computed style of what `locator` finds. Playwright finds the element and reads it in two
 * steps, and a live update re-rendering the list between them leaves a detached element, whose
 * styles read as '': so it reads again until the element was in the page.
 */
const styleOf = (locator, property) => until(
  () => locator.evaluate((element, name) => element.isConnected && getComputedStyle(element)[name], property),
  `the ${property} of ${locator}`);
const colourOf = (locator, property = 'color') => styleOf(locator, property).then(hsl);
// What the guide's colour words mean here, loosely enough to survive a palette tweak but not
// a swap (grey for green, the accent blue or the red of "full" for amber).
const green = ({ hue, saturation }) => saturation > 0.3 && hue >= 90 && hue <= 170;
const amber = ({ hue, saturation }) => saturation > 0.5 && hue >= 25 && hue <= 50;
const grey = ({ saturation }) => saturation < 0.2;

/** Presses Tab (Shift+Tab with `back`) until `target` has the focus, failing after `limit`. */
async function tabTo(page, target, what, { back = false, limit = 60 } = {}) {
  for (let presses = 0; presses < limit; presses++) {
    await page.keyboard.press(back ? 'Shift+Tab' : 'Tab');
    if (await focused(target)) return;
  }
  assert.fail(`${what} not reached in ${limit} presses of ${back ? 'Shift+Tab' : 'Tab'}`);
}

/** The WAI-ARIA menu-button pattern on `button` by keyboard: ArrowDown opens the menu on its
 *  first item, the arrows move the focus (wrapping), Escape closes it and gives the focus back
 *  to the button. Leaves the menu closed and the button focused. */
async function checkMenuByKeyboard(page, button, items) {
  await button.focus();
  await page.keyboard.press('ArrowDown');
  const menu = page.getByRole('menu');
  await menu.waitFor();
  assert.equal(await attribute(button, 'aria-expanded'), 'true');
  assert.equal(await attribute(button, 'aria-haspopup'), 'menu');
  assert.deepEqual(await menu.getByRole('menuitem').allTextContents(), items);
  assert.equal(await focusedText(page), items[0]);
  await page.keyboard.press('ArrowDown');
  assert.equal(await focusedText(page), items[1]);
  await page.keyboard.press('ArrowUp');
  await page.keyboard.press('ArrowUp');
  assert.equal(await focusedText(page), items.at(-1), 'wraps around');
  await page.keyboard.press('Escape');
  await menu.waitFor({ state: 'hidden' });
  assert.equal(await attribute(button, 'aria-expanded'), 'false');
  assert.ok(await focused(button), 'Escape returns focus to the button');
}

async function isLive(page) {
  return (await page.getByRole('status').filter({ hasText: 'Live' }).count()) > 0;
}

test('the page and its assets are served by the binary with a strict CSP; other paths 404', async () => {
  const page = await fetch(`${server.base}/agents`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  const csp = page.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await page.text();
  assert.doesNotMatch(html, /<script>(?!<)/, 'no inline script');
  assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
  for (const [path, type] of [['/agents/main.js', /javascript/], ['/agents/app.css', /text\/css/],
    ['/agents/vendor/graphql-ws/client.js', /javascript/], ['/agents/vendor/graphql-ws/LICENSE.md', /text/]]) {
    const asset = await fetch(server.base + path);
    assert.equal(asset.status, 200, path);
    assert.match(asset.headers.get('content-type'), type, path);
    assert.ok(asset.headers.get('cache-control'), path);
  }
  for (const path of ['/agents/nope.js', '/agents/../Cargo.toml', '/agents/vendor/graphql-ws/package.json']) {
    assert.equal((await fetch(server.base + path)).status, 404, path);
  }
});

test('signing in: a wrong password is an alert; the admin sees the directory, badges and usage', async () => {
  const page = await newPage();
  await signIn(page, 'admin', 'wrong-password');
  const alert = page.getByRole('alert').filter({ hasText: /./ }).first();
  await alert.waitFor();
  assert.match(await alert.textContent(), /password|credentials|invalid/i);
  await shot(page, 'agents-sign-in');

  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.getByRole('heading', { name: 'Agent Directory' }).waitFor();
  await row(page, 'Ana Lima').waitFor();
  const headers = await page.getByRole('columnheader').allTextContents();
  for (const name of ['Agent', 'User Name', 'Queues', 'Status']) assert.ok(headers.some((h) => h.includes(name)), name);
  const ana = row(page, 'Ana Lima');
  assert.ok(await visible(ana.getByRole('listitem').filter({ hasText: 'Billing' })));
  assert.ok(await visible(ana.getByRole('listitem').filter({ hasText: 'VIP' })));
  assert.ok(await visible(ana.getByText('Offline', { exact: true })));
  assert.ok(await visible(ana.getByRole('cell', { name: 'ana', exact: true })));
  assert.ok(await visible(row(page, 'Ben Ross').getByText('No queue')));
  assert.ok(await visible(page.getByRole('checkbox', { name: 'Select Ana Lima' })));
  assert.ok(await visible(page.getByRole('heading', { name: 'Usage Overview' })));
  assert.ok(await visible(page.getByText('4 / 25')));
  // Each row's avatar is the agent's own initial (decorative: the name follows it).
  assert.equal(await ana.locator('.avatar').textContent(), 'A');
  assert.equal(await row(page, 'Ben Ross').locator('.avatar').textContent(), 'B');
  // No conversation yet: Monthly Sessions counts none (the bulk test sees it count one).
  assert.equal(await monthlySessions(page).textContent(), '0');
  await until(() => isLive(page), 'the live indicator');
  await page.evaluate(() => sessionStorage.getItem('agentdesk.token')).then((t) => assert.ok(t, 'token in sessionStorage'));
  await shot(page, 'agents-directory');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('Status turns Online and rows change live, without a reload', async () => {
  const page = await newPage({ token: adminToken });
  await until(() => isLive(page), 'the live indicator');
  await page.evaluate(() => { window.notReloaded = true; });
  const anaToken = await login(server.http, 'ana', PASSWORD);
  await graphql(server.http, 'mutation { reportPresence(status: ONLINE) { presence } }', {}, anaToken);
  await row(page, 'Ana Lima').getByText('Online', { exact: true }).waitFor();
  const online = await colourOf(row(page, 'Ana Lima').getByText('Online', { exact: true }));
  const offline = await colourOf(row(page, 'Ben Ross').getByText('Offline', { exact: true }));
  assert.ok(green(online), `Online is green: ${online.css}`);
  assert.ok(grey(offline), `Offline is grey: ${offline.css}`);

  // agentDirectoryChanged: an edit made elsewhere shows in place; a new agent appears.
  await graphql(server.http, 'mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { userErrors { code } } }',
    { input: { id: ids.ben, queueIds: [queueIds.VIP] } }, adminToken);
  await row(page, 'Ben Ross').getByRole('listitem').filter({ hasText: 'VIP' }).waitFor();
  ids.eve = await createAgent({ displayName: 'Eve Stone', username: 'eve' });
  await row(page, 'Eve Stone').waitFor();
  await page.getByText('5 / 25').waitFor();

  await graphql(server.http, 'mutation { reportPresence(status: OFFLINE) { presence } }', {}, anaToken);
  await row(page, 'Ana Lima').getByText('Offline', { exact: true }).waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('Add New Agent: success closes the dialog, a taken username stays open with the error at the field', async () => {
  const page = await newPage({ token: adminToken });
  const add = page.getByRole('button', { name: 'Add New Agent' });
  await add.click();
  const dialog = page.getByRole('dialog', { name: 'Add New Agent' });
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'create-displayName', 'focus moves in');
  await dialog.getByLabel('Display Name').fill('Dana Park');
  await dialog.getByLabel('Username').fill('dana');
  await dialog.getByLabel('Initial Password').fill('dana-password');
  await dialog.getByLabel('Email Address').fill('dana@example.com');
  await dialog.getByRole('checkbox', { name: 'Billing' }).check();
  await shot(page, 'agents-dialog-add');
  await dialog.getByRole('button', { name: 'Create Agent' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await row(page, 'Dana Park').getByRole('listitem').filter({ hasText: 'Billing' }).waitFor();
  assert.ok(await add.evaluate((button) => button === document.activeElement), 'focus back on the trigger');

  // A taken username: the dialog stays, the message is under Username, in an alert.
  await add.click();
  await dialog.getByLabel('Display Name').fill('Another Ana');
  await dialog.getByLabel('Username').fill('ana');
  await dialog.getByLabel('Initial Password').fill('short');
  await dialog.getByRole('button', { name: 'Create Agent' }).click();
  const passwordError = dialog.locator('[data-error="password"]');
  await until(async () => /6 characters/.test(await passwordError.textContent()), 'the password error under its field');
  assert.equal(await attribute(dialog.getByLabel('Initial Password'), 'aria-invalid'), 'true');
  await dialog.getByLabel('Initial Password').fill('long-enough');
  await dialog.getByRole('button', { name: 'Create Agent' }).click();
  const username = dialog.getByLabel('Username');
  await until(async () => (await attribute(username, 'aria-invalid')) === 'true', 'Username marked invalid');
  const usernameError = await username.evaluate((input) => input.getAttribute('aria-describedby').split(' ')
    .map((id) => document.getElementById(id)).find((el) => el?.getAttribute('role') === 'alert').textContent);
  assert.match(usernameError, /already taken/);
  assert.equal(await passwordError.textContent(), '', 'the fixed field no longer shows an error');
  assert.ok(await visible(dialog), 'the dialog stays open');
  assert.equal(await styleOf(dialog.locator('[data-error="username"]'), 'color'),
    await styleOf(dialog.locator('[data-error="general"]'), 'color'), 'field errors in the error colour');
  await shot(page, 'agents-dialog-add-errors');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.ok(await add.evaluate((button) => button === document.activeElement), 'Escape closes, focus back');
  assert.equal(await row(page, 'Another Ana').count(), 0);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('Edit Agent is prefilled and saves name, password, e-mail (add, change, clear), phone numbers, limit and queues', async () => {
  const page = await newPage({ token: adminToken });
  const actions = page.getByRole('button', { name: 'Actions for Cai Wu' });
  const dialog = page.getByRole('dialog', { name: 'Edit Agent' });
  const phoneNumbers = dialog.getByRole('switch', { name: 'Show real customer phone numbers' });
  const openEdit = async () => {
    await actions.click();
    await page.getByRole('menuitem', { name: 'Edit Agent' }).click();
    await dialog.waitFor();
  };
  const save = async () => {
    await dialog.getByRole('button', { name: 'Save Changes' }).click();
    await dialog.waitFor({ state: 'hidden' });
  };
  await openEdit();
  assert.equal(await dialog.getByLabel('Display Name').inputValue(), 'Cai Wu');
  assert.equal(await dialog.getByLabel('New Password').inputValue(), '');
  assert.equal(await dialog.getByLabel('Email Address').inputValue(), '');
  assert.equal(await phoneNumbers.isChecked(), false);
  assert.equal(await dialog.getByLabel('Max Concurrent Sessions').inputValue(), '');
  assert.ok(await dialog.getByRole('checkbox', { name: 'Returns' }).isChecked());
  await dialog.getByLabel('Display Name').fill('Cai Wu Chen');
  await dialog.getByLabel('Email Address').fill('cai@example.com');
  await phoneNumbers.check();
  await dialog.getByLabel('Max Concurrent Sessions').fill('3');
  await dialog.getByRole('checkbox', { name: 'VIP' }).check();
  await shot(page, 'agents-dialog-edit');
  await save();
  await row(page, 'Cai Wu Chen').getByRole('listitem').filter({ hasText: 'VIP' }).waitFor();
  assert.deepEqual(await readAgent(ids.cai, 'displayName email showRealPhoneNumbers maxConcurrentSessions queues { name }'), {
    displayName: 'Cai Wu Chen', email: 'cai@example.com', showRealPhoneNumbers: true,
    maxConcurrentSessions: 3, queues: [{ name: 'Returns' }, { name: 'VIP' }] });
  assert.equal(await signInResult('cai', PASSWORD), 'signed in', 'a blank New Password keeps the password');
  assert.ok(await focused(page.getByRole('button', { name: 'Actions for Cai Wu Chen' })), 'focus back on the row\'s Actions button');

  // Opened again, it shows what was saved. An invalid limit is a field error; then the
  // e-mail changes, the password changes, the phone numbers go, the limit becomes unlimited
  // and VIP is left.
  await openEdit();
  assert.equal(await dialog.getByLabel('Display Name').inputValue(), 'Cai Wu Chen');
  assert.equal(await dialog.getByLabel('Email Address').inputValue(), 'cai@example.com');
  assert.equal(await phoneNumbers.isChecked(), true);
  assert.equal(await dialog.getByLabel('Max Concurrent Sessions').inputValue(), '3');
  assert.ok(await dialog.getByRole('checkbox', { name: 'VIP' }).isChecked());
  await dialog.getByLabel('Max Concurrent Sessions').fill('0');
  await dialog.getByRole('button', { name: 'Save Changes' }).click();
  await until(async () => (await attribute(dialog.getByLabel('Max Concurrent Sessions'), 'aria-invalid')) === 'true',
    'the limit marked invalid');
  await dialog.getByLabel('Max Concurrent Sessions').fill('');
  await dialog.getByLabel('Email Address').fill('cai.chen@example.com');
  await dialog.getByLabel('New Password').fill(CAI_PASSWORD);
  await phoneNumbers.uncheck();
  await dialog.getByRole('checkbox', { name: 'VIP' }).uncheck();
  await save();
  await row(page, 'Cai Wu Chen').getByRole('listitem').filter({ hasText: 'VIP' }).waitFor({ state: 'detached' });
  assert.deepEqual(await readAgent(ids.cai, 'email showRealPhoneNumbers maxConcurrentSessions queues { name }'), {
    email: 'cai.chen@example.com', showRealPhoneNumbers: false, maxConcurrentSessions: null, queues: [{ name: 'Returns' }] });
  assert.equal(await signInResult('cai', CAI_PASSWORD), 'signed in', 'the new password works');
  assert.equal(await signInResult('cai', PASSWORD), 'INVALID_CREDENTIALS', 'the old one no longer does');

  // Cleared: no e-mail.
  await openEdit();
  assert.equal(await dialog.getByLabel('Email Address').inputValue(), 'cai.chen@example.com');
  await dialog.getByLabel('Email Address').fill('');
  await save();
  assert.deepEqual(await readAgent(ids.cai, 'email'), { email: null });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('row menu: Disable strikes the name with a grey Disabled badge, Enable restores it, Delete Agent confirms; keyboard works the menu', async () => {
  ids.tia = await createAgent({ displayName: 'Tia Temp', username: 'tia' });   // deleted below
  const page = await newPage({ token: adminToken });
  const ben = row(page, 'Ben Ross');
  await page.getByRole('button', { name: 'Actions for Ben Ross' }).click();
  await page.getByRole('menuitem', { name: 'Disable' }).click();
  await ben.getByText('Disabled', { exact: true }).waitFor();
  assert.equal(await styleOf(ben.getByText('Ben Ross', { exact: true }), 'textDecorationLine'), 'line-through');
  const disabled = await colourOf(ben.getByText('Disabled', { exact: true }));
  assert.ok(grey(disabled), `the Disabled badge is grey: ${disabled.css}`);

  // Keyboard only: the menu-button pattern, then Enter opens on the first item, ArrowDown, Enter chooses.
  const actions = page.getByRole('button', { name: 'Actions for Ben Ross' });
  await checkMenuByKeyboard(page, actions, ['Edit Agent', 'Enable', 'Delete Agent']);
  await shot(page, 'agents-disabled-row');
  await page.keyboard.press('Enter');
  await page.getByRole('menu').waitFor();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await until(async () => (await ben.getByText('Disabled', { exact: true }).count()) === 0, 'Ben enabled again');
  assert.deepEqual(await readAgent(ids.ben, 'enabled'), { enabled: true });

  // Delete Agent: an alertdialog named after the agent says 1 agent will be deleted; confirmed,
  // the row goes and so does the agent.
  await page.getByRole('button', { name: 'Actions for Tia Temp' }).click();
  await page.getByRole('menuitem', { name: 'Delete Agent' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete Tia Temp?' });
  await confirm.waitFor();
  assert.match(await confirm.textContent(), /1 agent will be deleted: Tia Temp\./);
  await confirm.getByRole('button', { name: 'Delete 1 agent' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await row(page, 'Tia Temp').waitFor({ state: 'detached' });
  assert.equal(await readAgent(ids.tia, 'id'), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('search, filters and pages over the connection, all reachable by keyboard', async () => {
  for (let i = 1; i <= 7; i++) ids[`zed${i}`] = await createAgent({ displayName: `Zed ${String(i).padStart(2, '0')}`, username: `zed${i}` });
  // One disabled agent for the State filter (enabled again at the end).
  const setEnabled = (id, enabled) => graphql(server.http, `mutation($ids: [ID!]!, $enabled: Boolean!) {
    setAgentsEnabled(ids: $ids, enabled: $enabled) { userErrors { code } } }`, { ids: [id], enabled }, adminToken);
  await setEnabled(ids.zed7, false);
  const page = await newPage({ token: adminToken });
  await page.getByText('1–10 of 13').waitFor();

  // Keyboard only, from the top of the page: Tab reaches the search, every filter, Add New
  // Agent, the select-all checkbox, a row's checkbox and Actions, and Next; Enter pages on;
  // Shift+Tab from there reaches Previous, and Enter pages back.
  await page.evaluate(() => {
    window.tabbed = new Set();
    document.addEventListener('focusin', (event) => window.tabbed.add(event.target));
  });
  const next = page.getByRole('button', { name: 'Next' });
  await tabTo(page, next, 'Next');
  for (const [what, target] of [
    ['Search', page.getByRole('searchbox', { name: 'Search' })],
    ['Status', page.getByRole('combobox', { name: 'Status' })],
    ['Queue', page.getByRole('combobox', { name: 'Queue' })],
    ['State', page.getByRole('combobox', { name: 'State' })],
    ['Add New Agent', page.getByRole('button', { name: 'Add New Agent' })],
    ['the select-all checkbox', page.getByRole('checkbox', { name: 'Select all agents on this page' })],
    ['Select Ana Lima', page.getByRole('checkbox', { name: 'Select Ana Lima' })],
    ['Actions for Ana Lima', page.getByRole('button', { name: 'Actions for Ana Lima' })],
  ]) {
    assert.ok(await target.evaluate((element) => window.tabbed.has(element)), `${what} reached by Tab`);
  }
  await page.keyboard.press('Enter');
  await page.getByText('11–13 of 13').waitFor();
  await row(page, 'Zed 07').waitFor();
  assert.ok(await next.isDisabled());
  await tabTo(page, page.getByRole('button', { name: 'Previous' }), 'Previous', { back: true, limit: 5 });
  await page.keyboard.press('Enter');
  await page.getByText('1–10 of 13').waitFor();
  await row(page, 'Ana Lima').waitFor();

  const search = page.getByRole('searchbox', { name: 'Search' });
  const state = page.getByRole('combobox', { name: 'State' });
  await search.fill('zed');
  await page.getByText('1–7 of 7').waitFor();
  await state.selectOption({ label: 'Disabled' });
  await page.getByText('1–1 of 1').waitFor();
  assert.ok(await visible(row(page, 'Zed 07').getByText('Disabled', { exact: true })));
  await state.selectOption({ label: 'Enabled' });
  await page.getByText('1–6 of 6').waitFor();
  assert.equal(await row(page, 'Zed 07').count(), 0);
  await state.selectOption({ label: 'Any' });
  await page.getByText('1–7 of 7').waitFor();
  await search.fill('lima');
  await page.getByText('1–1 of 1').waitFor();
  assert.ok(await visible(row(page, 'Ana Lima')));
  await search.fill('');
  await page.getByRole('combobox', { name: 'Queue' }).selectOption({ label: 'Billing' });
  await page.getByText('1–2 of 2').waitFor();
  assert.ok(await visible(row(page, 'Dana Park')));
  await page.getByRole('combobox', { name: 'Queue' }).selectOption({ label: 'Any' });
  await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Online' });
  await page.getByText('No agent matches.').waitFor();
  await page.getByRole('combobox', { name: 'Status' }).selectOption({ label: 'Any' });
  await page.getByText('1–10 of 13').waitFor();
  await setEnabled(ids.zed7, true);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('bulk: header checkbox selects the page; Action > Delete confirms with the count and the preview', async () => {
  // Cai is ONLINE and holds a conversation of Returns, where nobody else could take it.
  const caiToken = await login(server.http, 'cai', CAI_PASSWORD);
  await graphql(server.http, 'mutation { reportPresence(status: ONLINE) { presence } }', {}, caiToken);
  const created = await graphql(server.http, `mutation($input: CreateConversationInput!) {
    createConversation(input: $input) { conversation { status assignedAgent { username } } userErrors { code } } }`,
  { input: { queueId: queueIds.Returns, customerName: 'Pat' } }, adminToken);
  assert.equal(created.createConversation.conversation.assignedAgent?.username, 'cai');

  const page = await newPage({ token: adminToken });
  // Monthly Sessions counts conversations assigned in the last 30 days (API.md): this one.
  const { usage } = await graphql(server.http, 'query { usage { monthlySessions } }', {}, adminToken);
  assert.equal(usage.monthlySessions, 1);
  await until(async () => (await monthlySessions(page).textContent()) === '1', 'Monthly Sessions 1');
  const all = page.getByRole('checkbox', { name: 'Select all agents on this page' });
  await all.check();
  await page.getByText('9 selected').waitFor();   // the page's 10 rows less the admin itself
  assert.equal(await page.getByRole('checkbox', { name: 'Select Administrator' }).count(), 0);
  await all.uncheck();
  await page.getByText('0 selected').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Action', exact: true }).isDisabled());

  await page.getByRole('checkbox', { name: 'Select Cai Wu Chen' }).check();
  await page.getByRole('checkbox', { name: 'Select Eve Stone' }).check();
  await page.getByText('2 selected').waitFor();
  const action = page.getByRole('button', { name: 'Action', exact: true });
  await action.click();
  assert.deepEqual(await page.getByRole('menu').getByRole('menuitem').allTextContents(), ['Enable', 'Disable', 'Delete']);
  await page.getByRole('menuitem', { name: 'Delete' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'Delete 2 agents?' });
  await confirm.waitFor();
  const text = await confirm.textContent();
  assert.match(text, /2 agents will be deleted: Cai Wu Chen, Eve Stone/);
  assert.match(text, /1 assigned conversation goes back/);
  assert.match(text, /Left without an agent who can take a conversation now: Returns/);
  assert.match(text, /2 seats are freed/);
  assert.ok(await confirm.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === document.activeElement),
    'the alertdialog starts on Cancel');
  await shot(page, 'agents-dialog-delete');
  await confirm.getByRole('button', { name: 'Delete 2 agents' }).click();
  await confirm.waitFor({ state: 'hidden' });
  await until(async () => (await row(page, 'Eve Stone').count()) === 0 && (await row(page, 'Cai Wu').count()) === 0,
    'the deleted rows gone');
  await page.getByText('0 selected').waitFor();
  await page.getByText('11 / 25').waitFor();

  // Bulk Disable by keyboard (the menu-button pattern; Enter opens on the first item), then Enable.
  await page.getByRole('checkbox', { name: 'Select Zed 01' }).check();
  await page.getByRole('checkbox', { name: 'Select Zed 02' }).check();
  await checkMenuByKeyboard(page, action, ['Enable', 'Disable', 'Delete']);
  await page.keyboard.press('Enter');
  await page.getByRole('menu').waitFor();
  assert.equal(await focusedText(page), 'Enable');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  await row(page, 'Zed 02').getByText('Disabled', { exact: true }).waitFor();
  await row(page, 'Zed 01').getByText('Disabled', { exact: true }).waitFor();
  await action.click();
  await page.getByRole('menuitem', { name: 'Enable' }).click();
  await until(async () => (await row(page, 'Zed 01').getByText('Disabled', { exact: true }).count()) === 0
    && (await row(page, 'Zed 02').getByText('Disabled', { exact: true }).count()) === 0, 'both enabled');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('Usage Overview: amber near the limit, full disables Add New Agent with a reason, service off', async () => {
  const { usage } = await graphql(server.http, 'query { usage { agentQuota { used } } }', {}, adminToken);
  const used = usage.agentQuota.used;
  let page = await newPage({ token: adminToken });
  const bar = page.getByRole('meter', { name: 'Agent Quota' });
  const fill = () => colourOf(bar.locator('.fill'), 'backgroundColor');
  await page.getByText(`${used} / 25`).waitFor();
  const normal = await fill();
  assert.ok(!amber(normal), `far from the limit the bar is not amber: ${normal.css}`);

  await server.cli(['org', 'update', '--slug', 'demo', '--seats', String(used + 1)]);
  await page.reload();
  await page.getByText(`${used} / ${used + 1}`).waitFor();
  await page.getByText('Near the limit').waitFor();
  assert.match(await attribute(bar, 'class'), /\bnear\b/);
  const near = await fill();
  assert.ok(amber(near), `near the limit the bar is amber: ${near.css}`);
  assert.notEqual(near.css, normal.css);
  assert.ok(await page.getByRole('button', { name: 'Add New Agent' }).isEnabled());
  await shot(page, 'agents-quota-near');

  await server.cli(['org', 'update', '--slug', 'demo', '--seats', String(used)]);
  await page.reload();
  await page.getByText('No seat left', { exact: true }).waitFor();
  assert.match(await attribute(bar, 'class'), /\bfull\b/);
  const full = await fill();
  assert.ok(!amber(full), `full, the bar is no longer amber: ${full.css}`);
  const add = page.getByRole('button', { name: 'Add New Agent' });
  assert.ok(await add.isDisabled());
  assert.match(await add.evaluate((b) => document.getElementById(b.getAttribute('aria-describedby')).textContent),
    new RegExp(`No seat left: all ${used} seats are in use`));
  await page.context().close();

  await server.cli(['org', 'update', '--slug', 'demo', '--seats', '25', '--human-agent-service', 'disabled']);
  page = await newPage({ token: adminToken });
  await page.getByText('The human-agent service is not enabled for your organization. Contact your administrator.').waitFor();
  assert.ok(await page.getByRole('button', { name: 'Add New Agent' }).isDisabled());
  assert.ok(await page.getByRole('button', { name: 'Actions for Ana Lima' }).isDisabled());
  assert.ok(await page.getByRole('checkbox', { name: 'Select Ana Lima' }).isDisabled());
  await shot(page, 'agents-service-off');
  await server.cli(['org', 'update', '--slug', 'demo', '--human-agent-service', 'enabled']);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('an AGENT signs in by keyboard, sees the directory read-only and live, and edits only its own name, password and e-mail', async () => {
  const page = await newPage();
  await signInByKeyboard(page, 'ana', PASSWORD);
  await page.getByRole('heading', { name: 'Agent Directory' }).waitFor();
  await row(page, 'Ben Ross').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Add New Agent' }).count(), 0, 'no Add New Agent');
  assert.equal(await page.getByRole('button', { name: 'Action', exact: true }).count(), 0, 'no bulk Action menu');
  assert.equal(await page.getByRole('checkbox', { name: /^Select / }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Actions for Ben Ross' }).count(), 0);
  await until(() => isLive(page), 'the live indicator');
  // Presence is live for an AGENT too: another agent comes online, the row says so.
  await page.evaluate(() => { window.notReloaded = true; });
  const benToken = await login(server.http, 'ben', PASSWORD);
  await graphql(server.http, 'mutation { reportPresence(status: ONLINE) { presence } }', {}, benToken);
  await row(page, 'Ben Ross').getByText('Online', { exact: true }).waitFor();
  assert.equal(await page.evaluate(() => window.notReloaded), true);

  await page.getByRole('button', { name: 'Actions for Ana Lima' }).click();
  assert.deepEqual(await page.getByRole('menu').getByRole('menuitem').allTextContents(), ['Edit Agent']);
  await page.getByRole('menuitem', { name: 'Edit Agent' }).click();
  const dialog = page.getByRole('dialog', { name: 'Edit Agent' });
  await dialog.waitFor();
  for (const label of ['Display Name', 'New Password', 'Email Address']) assert.ok(await visible(dialog.getByLabel(label)), label);
  assert.equal(await dialog.getByRole('spinbutton', { name: 'Max Concurrent Sessions' }).count(), 0);
  assert.equal(await dialog.getByRole('switch').count(), 0);
  assert.equal(await dialog.getByLabel('Email Address').inputValue(), 'ana.lima@example.com');
  await dialog.getByLabel('Display Name').fill('Ana L.');
  await dialog.getByLabel('Email Address').fill('ana@example.com');
  await dialog.getByLabel('New Password').fill('ana-password-2');
  await shot(page, 'agents-agent-view-edit');
  await dialog.getByRole('button', { name: 'Save Changes' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await row(page, 'Ana L.').waitFor();   // still signed in: changing one's password keeps one's own session
  assert.deepEqual(await readAgent(ids.ana, 'displayName email'), { displayName: 'Ana L.', email: 'ana@example.com' });
  assert.equal(await signInResult('ana', 'ana-password-2'), 'signed in', 'the new password works');
  assert.equal(await signInResult('ana', PASSWORD), 'INVALID_CREDENTIALS', 'the old one no longer does');
  await shot(page, 'agents-agent-view');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('agentdesk.token')), null);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('at 390 px: one card per agent, Usage Overview above the list, nothing wider than the screen', async () => {
  const page = await newPage({ width: 390, height: 844, token: adminToken });
  await row(page, 'Ana L.').waitFor();
  const usage = await page.getByRole('complementary', { name: 'Usage Overview' }).boundingBox();
  const list = await page.getByRole('region', { name: 'Agent Directory' }).boundingBox();
  assert.ok(usage.y + usage.height <= list.y, 'Usage Overview above the list');
  assert.equal(await row(page, 'Ana L.').evaluate((tr) => getComputedStyle(tr).display), 'grid');
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  assert.ok(await visible(page.getByRole('button', { name: 'Actions for Ana L.' })));
  await shot(page, 'agents-narrow');
  await page.getByRole('button', { name: 'Add New Agent' }).click();
  await page.getByRole('dialog', { name: 'Add New Agent' }).waitFor();
  await shot(page, 'agents-narrow-dialog');
  await page.keyboard.press('Escape');

  // Dark: the palette follows prefers-color-scheme.
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'dark' });
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), light);
  await shot(page, 'agents-narrow-dark');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test('a lost socket shows Reconnecting… and the page catches up when it is back', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route('**', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  await context.addInitScript((t) => sessionStorage.setItem('agentdesk.token', t), adminToken);
  const page = await context.newPage();
  let hold = false;
  const sockets = [];
  await page.routeWebSocket(/\/graphql\/ws$/, (ws) => {
    sockets.push(ws);
    if (!hold) ws.connectToServer();   // held: the page's socket opens but nothing answers
  });
  await page.goto(`${server.base}/agents`);
  await until(() => isLive(page), 'the live indicator');
  hold = true;
  await sockets.at(-1).close({ code: 1012, reason: 'restart' });
  await page.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
  await shot(page, 'agents-reconnecting');
  // Missed while away: a new agent. Back online, the page reads the directory again.
  await createAgent({ displayName: 'Abe Missed', username: 'abe' });
  await until(() => sockets.length >= 2, 'a reconnect attempt', 20_000);
  hold = false;
  await sockets.at(-1).close({ code: 1012, reason: 'restart' });
  await until(() => isLive(page), 'live again', 20_000);
  await row(page, 'Abe Missed').waitFor();
  await context.close();
});

test('a RATE_LIMITED sign-in says when to try again', async () => {
  // ben's allowance refills while argon2 hashes each guess, so how many guesses it takes
  // to be refused depends on the machine's pace: the API spends most of it, then the page
  // guesses until the server refuses one (a few at most), and must say so.
  for (let i = 0; i < 10; i++) await signInResult('ben', 'wrong-password');
  const page = await newPage();
  const signInAnswer = (response) => response.url().endsWith('/graphql')
    && response.request().postData()?.includes('mutation SignIn');
  let refused = false;
  for (let guess = 0; guess < 10 && !refused; guess++) {
    const [answer] = await Promise.all([page.waitForResponse(signInAnswer), signIn(page, 'ben', 'wrong-password')]);
    const { data } = await answer.json();
    refused = data.login.userErrors.some(({ code }) => code === 'RATE_LIMITED');
  }
  assert.ok(refused, 'the server refused a guess within ten');
  const alert = page.getByRole('alert').filter({ hasText: /Try again in \d+ seconds/ });
  await alert.waitFor();
  await shot(page, 'agents-rate-limited');
  await page.context().close();
});
