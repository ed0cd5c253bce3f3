// GraphiQL in a real browser: headless Chromium opens `/`, signs in through the headers
// editor, runs a query and a subscription. The machine has no internet, so GraphiQL's CDN
// assets are served from the npm-installed packages. A screenshot is kept in artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { graphql, login, startServer } from '../support/server.mjs';

const modules = new URL('../node_modules/', import.meta.url);
/** unpkg paths GraphiQL's page asks for, and the installed files that answer them. */
const ASSETS = [
  [/^\/react@18\/umd\/(.+)$/, 'react/umd/'],
  [/^\/react-dom@18\/umd\/(.+)$/, 'react-dom/umd/'],
  [/^\/graphiql@[^/]+\/(.+)$/, 'graphiql/'],
  [/^\/graphql-ws@[^/]+\/(.+)$/, 'graphql-ws/'],
];
const BROWSER = process.env.CHROMIUM ?? '/usr/bin/chromium';

let server;
let token;
let browser;

before(async () => {
  server = await startServer();
  token = await login(server.http);
  browser = await chromium.launch({
    executablePath: BROWSER,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Replaces the text of the shown CodeMirror editor inside `selector` (GraphiQL keeps the
 *  editors of other tabs in the page with the class `hidden`). */
async function type(page, selector, text) {
  const shown = `${selector} .graphiql-editor:not(.hidden) .CodeMirror`;
  await page.waitForSelector(shown);
  await page.evaluate(([s, t]) => document.querySelector(s).CodeMirror.setValue(t), [shown, text]);
}

async function response(page) {
  return page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '');
}

test('GraphiQL signs in with the headers editor, runs a query and shows a live presence event', async () => {
  const page = await browser.newPage();
  await page.route('https://unpkg.com/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    for (const [pattern, directory] of ASSETS) {
      const match = path.match(pattern);
      if (match) {
        const body = readFileSync(new URL(directory + match[1], modules));
        const contentType = path.endsWith('.css') ? 'text/css' : 'application/javascript';
        return route.fulfill({ status: 200, body, contentType });
      }
    }
    return route.abort();
  });
  await page.route('https://graphql.org/**', (route) => route.abort());
  await page.goto(server.http.replace('/graphql', '/'));

  // Sign in: the Headers tab of the editor tools.
  await page.getByRole('button', { name: /headers/i }).click();
  await type(page, '.graphiql-editor-tool', JSON.stringify({ Authorization: `Bearer ${token}` }));
  await type(page, '.graphiql-query-editor', '{ viewer { username role } organization { name seatLimit } }');
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(() =>
    document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue().includes('seatLimit'));
  const answer = JSON.parse(await response(page));
  assert.deepEqual(answer.data, { viewer: { username: 'admin', role: 'ADMIN' }, organization: { name: 'Demo', seatLimit: 25 } });

  // A subscription over the page's WebSocket, with the same headers in connection_init.
  await type(page, '.graphiql-query-editor', 'subscription { presenceChanged { status agent { username } } }');
  await page.click('.graphiql-execute-button');
  for (let attempt = 0; attempt < 20 && !(await response(page)).includes('ONLINE'); attempt++) {
    await graphql(server.http, 'mutation { reportPresence(status: ONLINE) { presence } }', {}, token);
    await page.waitForTimeout(300);
    if (!(await response(page)).includes('ONLINE')) {
      await graphql(server.http, 'mutation { reportPresence(status: OFFLINE) { presence } }', {}, token);
    }
  }
  const event = await response(page);
  assert.match(event, /"status": "ONLINE"/);
  assert.match(event, /"username": "admin"/);

  mkdirSync(new URL('../artifacts/', import.meta.url), { recursive: true });
  await page.screenshot({ path: new URL('../artifacts/graphiql.png', import.meta.url).pathname, fullPage: true });
});
