// GraphiQL in a real browser: headless Chromium opens `/`, signs in through the headers
// editor, runs a query and a subscription. Every request to anything but the server is
// aborted: the page must work offline, with the assets the binary serves itself, and those
// must be the npm packages' own builds at the versions package-lock.json pins. A screenshot
// is kept in artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { launchBrowser } from '../support/browser.mjs';
import { graphql, login, startServer } from '../support/server.mjs';

const modules = new URL('../node_modules/', import.meta.url);
/** The assets the page loads from the server, and the installed files they must equal. */
const ASSETS = {
  [`react-${version('react')}.production.min.js`]: 'react/umd/react.production.min.js',
  [`react-dom-${version('react-dom')}.production.min.js`]: 'react-dom/umd/react-dom.production.min.js',
  [`graphiql-${version('graphiql')}.min.js`]: 'graphiql/graphiql.min.js',
  [`graphiql-${version('graphiql')}.min.css`]: 'graphiql/graphiql.min.css',
  [`graphql-ws-${version('graphql-ws')}.min.js`]: 'graphql-ws/umd/graphql-ws.min.js',
};

let server;
let token;
let browser;

before(async () => {
  server = await startServer();
  token = await login(server.http);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** The installed version of the package `name`. */
function version(name) {
  return JSON.parse(readFileSync(new URL(`${name}/package.json`, modules), 'utf8')).version;
}

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
  const loaded = new Map();
  const refused = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname !== '127.0.0.1') {
      refused.push(url.href);
      return route.abort();
    }
    return route.continue();
  });
  page.on('response', async (answer) => {
    const url = new URL(answer.url());
    if (url.pathname.startsWith('/graphiql/assets/')) loaded.set(url.pathname.slice('/graphiql/assets/'.length), answer);
  });
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

  // Every asset came from the server, as the packages ship it, with long-lived caching.
  assert.deepEqual([...loaded.keys()].sort(), Object.keys(ASSETS).sort());
  for (const [name, answer] of loaded) {
    assert.equal(answer.status(), 200, name);
    assert.match(answer.headers()['cache-control'], /max-age=31536000/, name);
    assert.match(answer.headers()['content-type'], name.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, name);
    assert.ok((await answer.body()).equals(readFileSync(new URL(ASSETS[name], modules))), `${name} differs from the package`);
  }
  assert.deepEqual(refused.filter((url) => !url.startsWith('data:')), [], 'requests beyond the server');

  mkdirSync(new URL('../artifacts/', import.meta.url), { recursive: true });
  await page.screenshot({ path: new URL('../artifacts/graphiql.png', import.meta.url).pathname, fullPage: true });
});
