// GraphQL over HTTP conformance: graphql-http's own server audit (the one the spec's
// implementations are listed by) against `/graphql`, signed in. Every audit must pass:
// errors are the spec's MUSTs, warnings its SHOULDs. Notices (MAYs) are printed only.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { auditServer } from 'graphql-http';

import { login, startServer } from '../support/server.mjs';

let server;
let token;

before(async () => {
  server = await startServer();
  token = await login(server.http);
});

after(async () => {
  await server?.stop();
});

test('graphql-http audit: no errors and no warnings', async () => {
  const results = await auditServer({
    url: server.http,
    fetchFn: (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      return fetch(input, { ...init, headers });
    },
  });
  const failed = results.filter((result) => result.status !== 'ok');
  const describe = async (result) => {
    const body = await result.response.text().catch(() => '');
    return `${result.status} ${result.id} ${result.name}: ${result.reason}\n    HTTP ${result.response.status} ${body.slice(0, 300)}`;
  };
  const lines = await Promise.all(failed.map(describe));
  for (const line of lines.filter((line) => line.startsWith('notice'))) console.log(line);
  const count = (status) => results.filter((result) => result.status === status).length;
  console.log(`audit: ${results.length} audits, ${count('ok')} ok, ${count('notice')} notices, `
    + `${count('warn')} warnings, ${count('error')} errors`);
  assert.deepEqual(lines.filter((line) => !line.startsWith('notice')), []);
});
