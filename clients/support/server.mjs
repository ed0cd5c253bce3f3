// Starts the real agentdesk binary on a free port with a fresh SQLite database, for the
// client tests. AGENTDESK_BIN names the binary (.ci/run passes the one cargo just built).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ADMIN_PASSWORD = 'client-tests-password';

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** `extraArgs` go to `agentdesk serve` after the listen address and the database. */
export async function startServer({ extraArgs = [] } = {}) {
  const binary = process.env.AGENTDESK_BIN;
  if (!binary) throw new Error('set AGENTDESK_BIN to the agentdesk binary');
  const dir = mkdtempSync(join(tmpdir(), 'agentdesk-clients-'));
  const port = await freePort();
  const databaseUrl = `sqlite://${join(dir, 'agentdesk.db')}?mode=rwc`;
  const child = spawn(binary, ['serve', '--listen', `127.0.0.1:${port}`,
    '--database-url', databaseUrl, ...extraArgs], {
    env: { ...process.env, AGENTDESK_BOOTSTRAP_PASSWORD: ADMIN_PASSWORD, RUST_LOG: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (attempt > 200) throw new Error('agentdesk did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    http: `${base}/graphql`,
    ws: `ws://127.0.0.1:${port}/graphql/ws`,
    base,
    /** Runs the operator CLI on this server's database, e.g. `['org', 'update', '--slug',
     *  'demo', '--seats', '5']`; resolves with its standard output. */
    cli(args) {
      return new Promise((resolve, reject) => {
        execFile(binary, [...args, '--database-url', databaseUrl], { env: { ...process.env, RUST_LOG: 'warn' } },
          (error, stdout, stderr) => (error ? reject(new Error(`${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)));
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POSTs a GraphQL request; returns `data`, failing on errors. */
export async function graphql(url, query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

export async function login(url, username = 'admin', password = ADMIN_PASSWORD) {
  const data = await graphql(url,
    'mutation($input: LoginInput!) { login(input: $input) { token userErrors { code } } }',
    { input: { organization: 'demo', username, password } });
  if (!data.login.token) throw new Error(JSON.stringify(data.login.userErrors));
  return data.login.token;
}
